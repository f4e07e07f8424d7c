// Command etcdmember runs one member of a sim chaos etcd cluster in its own
// process: the real etcd server (go.etcd.io/etcd/server/v3/embed, through
// runtime/etcdembed), so that a fault schedule can kill -9, SIGSTOP or
// partition it alone.
//
//	etcdmember --name e1 --dir D --client http://127.0.0.1:P --peer http://127.0.0.1:Q \
//	  --advertise-peer http://e1.chaos:Q --cluster e1=http://e1.chaos:Q,... \
//	  --resolve e2.chaos=127.0.0.12,e3.chaos=127.0.0.13 [--tick-ms 100 --election-ms 1000] [--log FILE]
//
// Peers are named by host names that this process alone resolves, from
// --resolve, through a DNS server inside it: each member sees the others at
// its own loopback addresses, where sim chaos runs one toxiproxy proxy per
// ordered pair of members. Cutting the pairs of one member partitions it from
// the others in both directions, whichever side dialled a connection.
//
// It prints "listening on CLIENT_URL" on stdout once the member serves.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"territory/runtime/etcdembed"
)

func main() {
	var m etcdembed.Member
	var resolve string
	flag.StringVar(&m.Name, "name", "", "member name")
	flag.StringVar(&m.Dir, "dir", "", "data directory")
	flag.StringVar(&m.Client, "client", "", "client URL (listened on and advertised)")
	flag.StringVar(&m.Peer, "peer", "", "peer URL listened on")
	flag.StringVar(&m.AdvertisePeer, "advertise-peer", "", "peer URL advertised (default --peer)")
	flag.StringVar(&m.Cluster, "cluster", "", "initial cluster: name=peerURL,...")
	flag.StringVar(&resolve, "resolve", "", "host=ip,... this process resolves (peers' names)")
	flag.UintVar(&m.TickMs, "tick-ms", 100, "heartbeat period")
	flag.UintVar(&m.ElectionMs, "election-ms", 1000, "election timeout")
	flag.StringVar(&m.LogFile, "log", "", "etcd's own log file")
	flag.Parse()
	if err := run(m, resolve); err != nil {
		fmt.Fprintln(os.Stderr, "etcdmember:", err)
		os.Exit(1)
	}
}

func run(m etcdembed.Member, resolve string) error {
	if m.Name == "" || m.Dir == "" || m.Client == "" || m.Peer == "" || m.Cluster == "" {
		return fmt.Errorf("--name, --dir, --client, --peer and --cluster are required")
	}
	names, err := parseResolve(resolve)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		addr, err := serveDNS(names)
		if err != nil {
			return err
		}
		// Every lookup of this process (etcd's URL checks and its peer
		// dials) asks the server above; names it does not know fail.
		net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		}}
	}
	e, err := etcdembed.Start(m, 60*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("etcdmember %s: listening on %s\n", m.Name, m.Client)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-e.Err():
		return fmt.Errorf("member %s: %w", m.Name, err)
	case <-sigs:
		e.Close()
		return nil
	}
}

func parseResolve(s string) (map[string]net.IP, error) {
	out := map[string]net.IP{}
	if s == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		host, ip, ok := strings.Cut(kv, "=")
		parsed := net.ParseIP(ip).To4()
		if !ok || host == "" || parsed == nil {
			return nil, fmt.Errorf("--resolve %q: want host=ipv4", kv)
		}
		out[strings.TrimSuffix(strings.ToLower(host), ".")] = parsed
	}
	return out, nil
}

// serveDNS answers A queries for names from a UDP socket on loopback, and
// every other query with no answer (AAAA) or NXDOMAIN (unknown names).
func serveDNS(names map[string]net.IP) (string, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp, err := answer(names, buf[:n]); err == nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	return pc.LocalAddr().String(), nil
}

func answer(names map[string]net.IP, req []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	ip, known := names[strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if known && q.Type == dnsmessage.TypeA {
		var a [4]byte
		copy(a[:], ip)
		if err := b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}, dnsmessage.AResource{A: a}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
