package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"territory/runtime/etcdembed"
)

// EtcdMembers is the size of a chaos run's etcd cluster.
const EtcdMembers = 3

// EtcdLeader names, in a fault schedule, whichever member leads etcd when
// the fault starts (the record says which it was).
const EtcdLeader = "etcd-leader"

// MemberName is the i-th etcd member's name in a fault schedule (1-based).
func MemberName(i int) string { return fmt.Sprintf("e%d", i) }

// memberIndex is e2's index 1 (-1 if h names no member).
func memberIndex(h string) int {
	var i int
	if n, _ := fmt.Sscanf(h, "e%d", &i); n == 1 && i >= 1 && i <= EtcdMembers && h == MemberName(i) {
		return i - 1
	}
	return -1
}

// IsMember reports whether h names an etcd member (or the leader).
func IsMember(h string) bool { return h == EtcdLeader || memberIndex(h) >= 0 }

// BuildEtcdMember builds chaos/etcdmember into dir.
func BuildEtcdMember(dir string) (string, error) {
	bin := filepath.Join(dir, "etcdmember")
	build := exec.Command("go", "build", "-o", bin, "territory/chaos/etcdmember")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build etcdmember: %w", err)
	}
	return bin, nil
}

// pairIP is where member i (0-based) reaches member j: a loopback address of
// its own for each peer, on which the pair's proxy listens.
func pairIP(i, j int) string { return fmt.Sprintf("127.0.0.%d", 10*(i+1)+j+1) }

// etcdCluster is EtcdMembers etcd processes. Each member's peers are host
// names (e1.chaos, ...) that the member resolves to its own pair proxies, so
// every ordered pair of members talks through its own toxiproxy proxy.
type etcdCluster struct {
	bin, dir string
	clients  []string // client host:port, direct
	peers    []int    // peer ports (each member listens on 127.0.0.1:port)
	pair     map[[2]int]*Proxy
	mu       sync.Mutex
	procs    []*Proc
	paused   []bool
}

func (e *etcdCluster) args(i int) []string {
	var cluster, resolve []string
	for j := range e.peers {
		cluster = append(cluster, fmt.Sprintf("%s=http://%s.chaos:%d", MemberName(j+1), MemberName(j+1), e.peers[j]))
		ip := "127.0.0.1"
		if j != i {
			ip = pairIP(i, j)
		}
		resolve = append(resolve, fmt.Sprintf("%s.chaos=%s", MemberName(j+1), ip))
	}
	n := MemberName(i + 1)
	return []string{"--name", n, "--dir", filepath.Join(e.dir, "etcd-"+n),
		"--client", "http://" + e.clients[i], "--peer", fmt.Sprintf("http://127.0.0.1:%d", e.peers[i]),
		"--advertise-peer", fmt.Sprintf("http://%s.chaos:%d", n, e.peers[i]),
		"--cluster", strings.Join(cluster, ","), "--resolve", strings.Join(resolve, ","),
		"--tick-ms", "50", "--election-ms", "500", "--log", filepath.Join(e.dir, "etcd-"+n+".etcd.log")}
}

// startEtcd starts the pair proxies and the members, and waits until every
// member serves.
func startEtcd(bin, dir, name string) (*etcdCluster, error) {
	e := &etcdCluster{bin: bin, dir: dir, pair: map[[2]int]*Proxy{}, procs: make([]*Proc, EtcdMembers), paused: make([]bool, EtcdMembers)}
	ps, err := etcdembed.FreePorts(2 * EtcdMembers)
	if err != nil {
		return nil, err
	}
	for i := range EtcdMembers {
		e.clients = append(e.clients, fmt.Sprintf("127.0.0.1:%d", ps[2*i]))
		e.peers = append(e.peers, ps[2*i+1])
	}
	for i := range EtcdMembers {
		for j := range EtcdMembers {
			if i == j {
				continue
			}
			p, err := NewProxyAt(fmt.Sprintf("%s-%s-%s", name, MemberName(i+1), MemberName(j+1)),
				fmt.Sprintf("%s:%d", pairIP(i, j), e.peers[j]), fmt.Sprintf("127.0.0.1:%d", e.peers[j]))
			if err != nil {
				e.close()
				return nil, err
			}
			e.pair[[2]int{i, j}] = p
		}
	}
	errs := make(chan error, EtcdMembers)
	for i := range EtcdMembers {
		go func() { errs <- e.start(i) }()
	}
	for range EtcdMembers {
		if err := <-errs; err != nil {
			e.close()
			return nil, err
		}
	}
	return e, nil
}

func (e *etcdCluster) start(i int) error {
	p, err := StartProc(e.bin, e.dir, MemberName(i+1), e.args(i)...)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.procs[i], e.paused[i] = p, false
	e.mu.Unlock()
	_, err = p.WaitListening(60 * time.Second)
	return err
}

func (e *etcdCluster) proc(i int) *Proc {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.procs[i]
}

func (e *etcdCluster) kill(i int) error    { return e.proc(i).Kill() }
func (e *etcdCluster) restart(i int) error { return e.start(i) }

func (e *etcdCluster) pause(i int) error {
	if err := e.proc(i).Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	e.mu.Lock()
	e.paused[i] = true
	e.mu.Unlock()
	return nil
}

func (e *etcdCluster) resume(i int) error {
	e.mu.Lock()
	e.paused[i] = false
	e.mu.Unlock()
	return e.proc(i).Signal(syscall.SIGCONT)
}

// partition black-holes both directions between member i and each of peers.
func (e *etcdCluster) partition(i int, peers []int) error {
	for _, j := range peers {
		if err := e.pair[[2]int{i, j}].Partition(); err != nil {
			return err
		}
		if err := e.pair[[2]int{j, i}].Partition(); err != nil {
			return err
		}
	}
	return nil
}

func (e *etcdCluster) unpartition(i int, peers []int) error {
	for _, j := range peers {
		if err := e.pair[[2]int{i, j}].Unpartition(); err != nil {
			return err
		}
		if err := e.pair[[2]int{j, i}].Unpartition(); err != nil {
			return err
		}
	}
	return nil
}

// endpoints are the members' client URLs (direct, no proxy).
func (e *etcdCluster) endpoints() []string {
	out := make([]string, len(e.clients))
	for i, c := range e.clients {
		out[i] = "http://" + c
	}
	return out
}

// memberStatus is one member's view: its id and the leader it knows (0: none).
type memberStatus struct {
	ID, Leader uint64
	Err        error
}

// statuses asks every member for its status, each within 500 ms.
func (e *etcdCluster) statuses(cli *clientv3.Client) []memberStatus {
	out := make([]memberStatus, len(e.clients))
	var wg sync.WaitGroup
	for i, ep := range e.endpoints() {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			st, err := cli.Status(ctx, ep)
			if err != nil {
				out[i].Err = err
				return
			}
			out[i] = memberStatus{ID: st.Header.MemberId, Leader: st.Leader}
		})
	}
	wg.Wait()
	return out
}

// leader is the index of the member a majority names as leader (-1: none).
func (e *etcdCluster) leader(cli *clientv3.Client) int {
	sts := e.statuses(cli)
	votes := map[uint64]int{}
	for _, s := range sts {
		if s.Err == nil && s.Leader != 0 {
			votes[s.Leader]++
		}
	}
	for i, s := range sts {
		if s.Err == nil && votes[s.ID] > EtcdMembers/2 {
			return i
		}
	}
	return -1
}

// waitLeader polls until a majority (all: every member) names one leader
// that is not member `not` (-1: any member), and returns the time since
// since (-1 if not within d).
func (e *etcdCluster) waitLeader(cli *clientv3.Client, not int, all bool, since time.Time, d time.Duration) float64 {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		sts := e.statuses(cli)
		votes := map[uint64]int{}
		answered := 0
		for _, s := range sts {
			if s.Err == nil {
				answered++
				if s.Leader != 0 {
					votes[s.Leader]++
				}
			}
		}
		for i, s := range sts {
			if s.Err != nil || i == not {
				continue
			}
			need := EtcdMembers/2 + 1
			if all {
				need = EtcdMembers
			}
			if votes[s.ID] >= need && (!all || answered == EtcdMembers) {
				return ms(time.Since(since))
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return -1
}

func (e *etcdCluster) close() {
	e.mu.Lock()
	procs := append([]*Proc(nil), e.procs...)
	e.mu.Unlock()
	for _, p := range procs {
		if p != nil {
			_ = p.Kill()
		}
	}
	for _, p := range e.pair {
		p.Close()
	}
}
