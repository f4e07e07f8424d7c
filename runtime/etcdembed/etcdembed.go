// Package etcdembed starts etcd members inside this process: the coordination
// store of `territoryd dev` and of the runtime tests. Every URL is on loopback.
package etcdembed

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Member describes one member to start.
type Member struct {
	Name   string
	Dir    string // data directory
	Client string // client URL, http://127.0.0.1:PORT
	Peer   string // peer URL (listened on, and advertised unless AdvertisePeer is set)
	// AdvertisePeer, if set, is the peer URL the member advertises (and
	// Cluster names) instead of Peer: a proxy in front of it, or a host name.
	AdvertisePeer string
	Cluster       string // initial cluster: name=peerURL,...
	// LogFile receives etcd's own log; "" discards it.
	LogFile string
	// Fast shortens heartbeat and election (tests): leases as short as 1 s work.
	Fast bool
	// TickMs and ElectionMs, if set, are the heartbeat and election periods
	// (they override Fast).
	TickMs, ElectionMs uint
}

// Etcd is a running member.
type Etcd struct {
	e      *embed.Etcd
	Member Member
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1.
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Single returns a one-member cluster under dir on the given ports (0: pick).
func Single(dir string, clientPort, peerPort int) (Member, error) {
	if clientPort == 0 || peerPort == 0 {
		ps, err := FreePorts(2)
		if err != nil {
			return Member{}, err
		}
		if clientPort == 0 {
			clientPort = ps[0]
		}
		if peerPort == 0 {
			peerPort = ps[1]
		}
	}
	m := Member{Name: "territory-dev", Dir: dir,
		Client: fmt.Sprintf("http://127.0.0.1:%d", clientPort),
		Peer:   fmt.Sprintf("http://127.0.0.1:%d", peerPort)}
	m.Cluster = m.Name + "=" + m.Peer
	return m, nil
}

// Cluster returns n members under root with fresh loopback ports.
func Cluster(root string, n int) ([]Member, error) {
	ps, err := FreePorts(2 * n)
	if err != nil {
		return nil, err
	}
	ms := make([]Member, n)
	var cl []string
	for i := range ms {
		ms[i] = Member{Name: fmt.Sprintf("m%d", i), Dir: filepath.Join(root, fmt.Sprintf("m%d", i)),
			Client: fmt.Sprintf("http://127.0.0.1:%d", ps[2*i]),
			Peer:   fmt.Sprintf("http://127.0.0.1:%d", ps[2*i+1])}
		cl = append(cl, ms[i].Name+"="+ms[i].Peer)
	}
	for i := range ms {
		ms[i].Cluster = strings.Join(cl, ",")
	}
	return ms, nil
}

// Start starts a member and waits up to timeout for it to serve clients. In a
// multi-member cluster the members must be started concurrently (each waits
// for a quorum); see StartAll.
func Start(m Member, timeout time.Duration) (*Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = m.Name
	cfg.Dir = m.Dir
	cu, err := url.Parse(m.Client)
	if err != nil {
		return nil, fmt.Errorf("etcd member %s: client url: %w", m.Name, err)
	}
	pu, err := url.Parse(m.Peer)
	if err != nil {
		return nil, fmt.Errorf("etcd member %s: peer url: %w", m.Name, err)
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	apu := pu
	if m.AdvertisePeer != "" {
		if apu, err = url.Parse(m.AdvertisePeer); err != nil {
			return nil, fmt.Errorf("etcd member %s: advertised peer url: %w", m.Name, err)
		}
	}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*apu}
	cfg.InitialCluster = m.Cluster
	cfg.InitialClusterToken = "territory"
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{"/dev/null"}
	if m.LogFile != "" {
		cfg.LogLevel = "info"
		cfg.LogOutputs = []string{m.LogFile}
	}
	if m.Fast {
		cfg.TickMs, cfg.ElectionMs = 20, 200
	}
	if m.TickMs != 0 && m.ElectionMs != 0 {
		cfg.TickMs, cfg.ElectionMs = m.TickMs, m.ElectionMs
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd member %s: %w", m.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd member %s: %w", m.Name, err)
	case <-time.After(timeout):
		e.Close()
		return nil, fmt.Errorf("etcd member %s: not ready after %s", m.Name, timeout)
	}
	return &Etcd{e: e, Member: m}, nil
}

// StartAll starts the members of one cluster concurrently.
func StartAll(ms []Member, timeout time.Duration) ([]*Etcd, error) {
	type res struct {
		i   int
		e   *Etcd
		err error
	}
	ch := make(chan res, len(ms))
	for i, m := range ms {
		go func() {
			e, err := Start(m, timeout)
			ch <- res{i, e, err}
		}()
	}
	out := make([]*Etcd, len(ms))
	var errs []error
	for range ms {
		r := <-ch
		out[r.i] = r.e
		errs = append(errs, r.err)
	}
	if err := errors.Join(errs...); err != nil {
		for _, e := range out {
			if e != nil {
				e.Close()
			}
		}
		return nil, err
	}
	return out, nil
}

// Endpoints lists the members' client URLs.
func Endpoints(es []*Etcd) []string {
	var eps []string
	for _, e := range es {
		eps = append(eps, e.Member.Client)
	}
	return eps
}

// Close stops the member (its data stays on disk).
func (e *Etcd) Close() { e.e.Close() }

// Err reports a fatal error of the running member.
func (e *Etcd) Err() <-chan error { return e.e.Err() }

// TB is the part of testing.TB that StartTest uses.
type TB interface {
	Helper()
	TempDir() string
	Fatal(args ...any)
	Cleanup(func())
}

// StartTest starts a fast one-member etcd (real server code, in process) in
// a test's temporary directory, stopped when the test ends, and returns it.
func StartTest(t TB) Member {
	t.Helper()
	m, err := Single(t.TempDir(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	m.Fast = true
	e, err := Start(m, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return m
}
