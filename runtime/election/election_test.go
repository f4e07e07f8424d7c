package election

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"territory/runtime/etcdembed"
)

// One embedded etcd for the package; every test uses its own prefix.
var endpoint string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "election-etcd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mem, err := etcdembed.Single(dir, 0, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mem.Fast = true
	e, err := etcdembed.Start(mem, 20*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	endpoint = mem.Client
	code := m.Run()
	e.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

func client(t *testing.T, ep string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// term is one recorded lead interval.
type term struct {
	who        string
	rev        int64
	start, end time.Time
	cause      error
}

// recorder records lead intervals and the number of concurrent leaders.
type recorder struct {
	mu      sync.Mutex
	terms   []term
	leading atomic.Int32
	maxLead atomic.Int32
	started chan string // identity, on every lead start
}

func newRecorder() *recorder { return &recorder{started: make(chan string, 100)} }

// lead returns a lead function for who that holds leadership for hold (0:
// until its context ends), checking Leader and TermOf on the way.
func (r *recorder) lead(t *testing.T, cli *clientv3.Client, prefix, who string, hold time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		n := r.leading.Add(1)
		for {
			m := r.maxLead.Load()
			if n <= m || r.maxLead.CompareAndSwap(m, n) {
				break
			}
		}
		tm := term{who: who, start: time.Now()}
		info, ok := TermOf(ctx)
		if !ok || info.Identity != who {
			t.Errorf("%s: TermOf = %+v, %v", who, info, ok)
		}
		tm.rev = info.Revision
		if li, err := Leader(ctx, cli, prefix); err == nil && li.Identity != who {
			t.Errorf("%s leads but Leader() = %q", who, li.Identity)
		}
		r.started <- who
		if hold > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(hold):
			}
		} else {
			<-ctx.Done()
		}
		tm.cause = context.Cause(ctx)
		tm.end = time.Now()
		r.leading.Add(-1)
		r.mu.Lock()
		r.terms = append(r.terms, tm)
		r.mu.Unlock()
		return nil
	}
}

func (r *recorder) snapshot() []term {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := slices.Clone(r.terms)
	slices.SortFunc(ts, func(a, b term) int { return a.start.Compare(b.start) })
	return ts
}

func (r *recorder) waitStart(t *testing.T, within time.Duration) (string, time.Time) {
	t.Helper()
	select {
	case who := <-r.started:
		return who, time.Now()
	case <-time.After(within):
		t.Fatalf("no leader within %s", within)
	}
	return "", time.Time{}
}

// candidate runs Run in the background; stop cancels it and waits.
type runner struct {
	cancel context.CancelFunc
	done   chan error
}

func start(cli *clientv3.Client, cfg Config, lead func(context.Context) error) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, cli, cfg, lead) }()
	return r
}

func (r *runner) stop(t *testing.T, within time.Duration) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(within):
		t.Fatalf("Run did not return within %s of cancel", within)
	}
	return nil
}

func cfg(prefix, who string, ttl int) Config {
	return Config{Prefix: prefix, Identity: who, SessionTTLSeconds: ttl,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
}

// TestOneLeaderAtATime: two candidates whose terms end by themselves hand
// leadership back and forth; the recorded terms never overlap.
func TestOneLeaderAtATime(t *testing.T) {
	t.Parallel()
	const prefix = "test/one-at-a-time"
	rec := newRecorder()
	var rs []*runner
	for _, who := range []string{"a", "b"} {
		cli := client(t, endpoint)
		rs = append(rs, start(cli, cfg(prefix, who, 2), rec.lead(t, cli, prefix, who, 150*time.Millisecond)))
	}
	time.Sleep(2500 * time.Millisecond)
	for _, r := range rs {
		if err := r.stop(t, 5*time.Second); err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	ts := rec.snapshot()
	if len(ts) < 4 {
		t.Fatalf("%d terms in 2.5 s, want at least 4: %+v", len(ts), ts)
	}
	seen := map[string]int{}
	for i, tm := range ts {
		seen[tm.who]++
		if i > 0 {
			prev := ts[i-1]
			if !prev.end.Before(tm.start) {
				t.Errorf("terms overlap: %s [%v..%v] and %s starting %v", prev.who, prev.start, prev.end, tm.who, tm.start)
			}
			if tm.rev <= prev.rev {
				t.Errorf("term revisions not increasing: %d then %d", prev.rev, tm.rev)
			}
		}
	}
	if seen["a"] == 0 || seen["b"] == 0 {
		t.Errorf("both candidates should have led: %v", seen)
	}
	if m := rec.maxLead.Load(); m != 1 {
		t.Errorf("at most one leader at a time, saw %d", m)
	}
	if _, err := Leader(context.Background(), client(t, endpoint), prefix); !errors.Is(err, ErrNoLeader) {
		t.Errorf("after both stopped: Leader err = %v, want ErrNoLeader", err)
	}
	t.Logf("%d terms: %v", len(ts), seen)
}

// TestHandoverWhenLeaseRevoked: revoking the leader's lease (what an operator
// or etcd's expiry does) ends its term at once and the other candidate leads.
func TestHandoverWhenLeaseRevoked(t *testing.T) {
	t.Parallel()
	const prefix = "test/revoke"
	rec := newRecorder()
	admin := client(t, endpoint)
	var rs []*runner
	for _, who := range []string{"a", "b"} {
		cli := client(t, endpoint)
		rs = append(rs, start(cli, cfg(prefix, who, 2), rec.lead(t, cli, prefix, who, 0)))
	}
	defer func() {
		for _, r := range rs {
			r.stop(t, 5*time.Second)
		}
	}()
	first, _ := rec.waitStart(t, 5*time.Second)
	li, err := Leader(context.Background(), admin, prefix)
	if err != nil || li.Identity != first {
		t.Fatalf("Leader = %+v, %v; want %s", li, err, first)
	}
	revoked := time.Now()
	if _, err := admin.Revoke(context.Background(), li.Lease); err != nil {
		t.Fatal(err)
	}
	second, at := rec.waitStart(t, 3*time.Second)
	if second == first {
		t.Fatalf("%s led again before the other candidate", first)
	}
	t.Logf("handover %s -> %s in %s", first, second, at.Sub(revoked))
	deadline := time.Now().Add(2 * time.Second)
	for len(rec.snapshot()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ts := rec.snapshot()
	if len(ts) == 0 {
		t.Fatal("the revoked leader's term did not end")
	}
	if ts[0].who != first || !errors.Is(ts[0].cause, ErrLostLeadership) {
		t.Errorf("first term %+v: want %s ended with ErrLostLeadership", ts[0], first)
	}
	if d := ts[0].end.Sub(revoked); d > time.Second {
		t.Errorf("the revoked leader noticed after %s", d)
	}
}

// TestHandoverWhenLeaderDies: a leader that dies (its packets stop, then its
// client closes: nothing revokes its lease) hands over when etcd expires the
// lease: after most of the TTL, within the TTL plus etcd's expiry check.
func TestHandoverWhenLeaderDies(t *testing.T) {
	t.Parallel()
	const prefix = "test/dies"
	const ttl = 2
	bh := newBlackhole(t, strings.TrimPrefix(endpoint, "http://"))
	rec := newRecorder()
	viaProxy := client(t, "http://"+bh.ln.Addr().String())
	direct := client(t, endpoint)
	ra := start(viaProxy, cfg(prefix, "a", ttl), rec.lead(t, viaProxy, prefix, "a", 0))
	if who, _ := rec.waitStart(t, 5*time.Second); who != "a" {
		t.Fatalf("%s led first", who)
	}
	rb := start(direct, cfg(prefix, "b", ttl), rec.lead(t, direct, prefix, "b", 0))
	defer rb.stop(t, 5*time.Second)
	time.Sleep(300 * time.Millisecond) // b is campaigning
	killed := time.Now()
	bh.drop.Store(true)
	viaProxy.Close()
	second, at := rec.waitStart(t, ttl*time.Second+3*time.Second)
	if second != "b" {
		t.Fatalf("%s led, want b", second)
	}
	d := at.Sub(killed)
	t.Logf("handover after the leader died: %s (ttl %ds)", d, ttl)
	// The last keep-alive reached etcd at most TTL/3 before the kill.
	if d < ttl*time.Second*2/3-100*time.Millisecond || d > ttl*time.Second+1500*time.Millisecond {
		t.Errorf("handover took %s, want between 2/3 TTL and TTL + 1.5 s (ttl %ds)", d, ttl)
	}
	select {
	case err := <-ra.done:
		if err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("Run on a closed client returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("Run did not return after its client closed")
	}
	ts := rec.snapshot()
	if len(ts) == 0 || ts[0].who != "a" || !ts[0].end.Before(at) || !errors.Is(ts[0].cause, ErrLostLeadership) {
		t.Errorf("the dead leader's term should have ended (lost) before the handover: %+v", ts)
	}
}

// TestResignOnCancel: cancelling Run resigns at once: the other candidate
// leads long before the (10 s) lease could expire, and with no candidates
// left there is no leader.
func TestResignOnCancel(t *testing.T) {
	t.Parallel()
	const prefix = "test/resign"
	rec := newRecorder()
	admin := client(t, endpoint)
	rs := map[string]*runner{}
	for _, who := range []string{"a", "b"} {
		cli := client(t, endpoint)
		rs[who] = start(cli, cfg(prefix, who, 10), rec.lead(t, cli, prefix, who, 0))
	}
	first, _ := rec.waitStart(t, 5*time.Second)
	other := map[string]string{"a": "b", "b": "a"}[first]
	cancelled := time.Now()
	if err := rs[first].stop(t, 3*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	second, at := rec.waitStart(t, 2*time.Second)
	if second != other {
		t.Fatalf("%s led, want %s", second, other)
	}
	t.Logf("handover after cancel: %s", at.Sub(cancelled))
	ts := rec.snapshot()
	if len(ts) != 1 || !errors.Is(ts[0].cause, context.Canceled) || errors.Is(ts[0].cause, ErrLostLeadership) {
		t.Errorf("the cancelled term should end with context.Canceled: %+v", ts)
	}
	if !ts[0].end.Before(at) {
		t.Errorf("overlap on a graceful handover: %v ended, %v started", ts[0].end, at)
	}
	if err := rs[other].stop(t, 3*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if li, err := Leader(context.Background(), admin, prefix); !errors.Is(err, ErrNoLeader) {
		t.Errorf("no candidates left: Leader = %+v, %v", li, err)
	}
}

// TestLeadErrorCampaignsAgain: a lead function that fails gives the role up
// and the candidate campaigns again, in a new term.
func TestLeadErrorCampaignsAgain(t *testing.T) {
	t.Parallel()
	const prefix = "test/lead-error"
	cli := client(t, endpoint)
	var revs []int64
	done := make(chan struct{})
	r := start(cli, cfg(prefix, "a", 2), func(ctx context.Context) error {
		tm, _ := TermOf(ctx)
		revs = append(revs, tm.Revision)
		if len(revs) < 3 {
			return errors.New("boom")
		}
		close(done)
		<-ctx.Done()
		return nil
	})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("3 terms expected, got %v", revs)
	}
	if err := r.stop(t, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(revs) || revs[0] == revs[1] || revs[1] == revs[2] {
		t.Errorf("terms should be new each time: %v", revs)
	}
}

// blackhole is a TCP proxy that can silently drop everything in both
// directions while keeping the connections open: a network partition.
type blackhole struct {
	ln   net.Listener
	drop atomic.Bool
	mu   sync.Mutex
	cons []net.Conn
}

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			b.mu.Lock()
			b.cons = append(b.cons, c, u)
			b.mu.Unlock()
			go b.pipe(c, u)
			go b.pipe(u, c)
		}
	}()
	t.Cleanup(b.close)
	return b
}

func (b *blackhole) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !b.drop.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				dst.Close()
			}
			return
		}
	}
}

func (b *blackhole) close() {
	b.ln.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.cons {
		c.Close()
	}
}

// TestPartitionedLeaderStopsFirst: a leader cut off from etcd (packets
// dropped, connections open) stops leading by its lease guard before etcd
// expires its lease and elects the other candidate: on one clock, the old
// term ends before the new one starts.
func TestPartitionedLeaderStopsFirst(t *testing.T) {
	t.Parallel()
	const prefix = "test/partition"
	const ttl = 2
	bh := newBlackhole(t, strings.TrimPrefix(endpoint, "http://"))
	rec := newRecorder()
	viaProxy := client(t, "http://"+bh.ln.Addr().String())
	direct := client(t, endpoint)
	ra := start(viaProxy, cfg(prefix, "a", ttl), rec.lead(t, viaProxy, prefix, "a", 0))
	if who, _ := rec.waitStart(t, 5*time.Second); who != "a" {
		t.Fatalf("%s led first", who)
	}
	rb := start(direct, cfg(prefix, "b", ttl), rec.lead(t, direct, prefix, "b", 0))
	defer rb.stop(t, 5*time.Second)
	time.Sleep(300 * time.Millisecond) // b is campaigning
	cut := time.Now()
	bh.drop.Store(true)
	second, at := rec.waitStart(t, ttl*time.Second+3*time.Second)
	if second != "b" {
		t.Fatalf("%s led after the partition, want b", second)
	}
	ts := rec.snapshot()
	if len(ts) == 0 || ts[0].who != "a" {
		t.Fatalf("a's term did not end before b's started: %+v", ts)
	}
	t.Logf("partition at 0: a stopped at %s (%v), b started at %s", ts[0].end.Sub(cut), ts[0].cause, at.Sub(cut))
	if !ts[0].end.Before(at) {
		t.Errorf("a stopped at %v, after b started at %v", ts[0].end, at)
	}
	if !errors.Is(ts[0].cause, ErrLostLeadership) {
		t.Errorf("a's cause: %v", ts[0].cause)
	}
	bh.close() // let a's clean-up fail fast
	ra.stop(t, 10*time.Second)
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	lead := func(context.Context) error { return nil }
	for _, c := range []Config{
		{Identity: "a"},
		{Prefix: "/", Identity: "a"},
		{Prefix: "p"},
		{Prefix: "p", Identity: "a", SessionTTLSeconds: -1},
		{Prefix: "p", Identity: "a", MinBackoff: time.Second, MaxBackoff: time.Millisecond},
	} {
		if err := Run(context.Background(), nil, c, lead); err == nil {
			t.Errorf("%+v: want an error", c)
		}
	}
}

// TestLeaseGuardFiresBeforeExpiry: cut off from etcd (and with no session
// keep-alive of its own, so only the guard can notice), the lease guard ends
// the term while etcd still holds the lease: its deadline is conservative.
func TestLeaseGuardFiresBeforeExpiry(t *testing.T) {
	t.Parallel()
	const ttl = 2
	bh := newBlackhole(t, strings.TrimPrefix(endpoint, "http://"))
	viaProxy := client(t, "http://"+bh.ln.Addr().String())
	direct := client(t, endpoint)
	sent := time.Now()
	g, err := viaProxy.Grant(context.Background(), ttl)
	if err != nil {
		t.Fatal(err)
	}
	c := &candidate{cli: viaProxy, cfg: Config{SessionTTLSeconds: ttl}}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.guardLease(ctx, cancel, g.ID, sent)
	}()
	time.Sleep(time.Second) // a few refreshes go through
	if ctx.Err() != nil {
		t.Fatalf("guard fired on a healthy lease: %v", context.Cause(ctx))
	}
	cut := time.Now()
	bh.drop.Store(true)
	select {
	case <-ctx.Done():
	case <-time.After(ttl * time.Second * 2):
		t.Fatal("guard did not fire")
	}
	fired := time.Since(cut)
	ttlResp, err := direct.TimeToLive(context.Background(), g.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guard fired %s after the cut (%v); etcd still holds the lease (TTL %ds)", fired, context.Cause(ctx), ttlResp.TTL)
	if ttlResp.TTL < 0 {
		t.Errorf("etcd had already revoked the lease when the guard fired")
	}
	if !errors.Is(context.Cause(ctx), ErrLostLeadership) || !strings.Contains(context.Cause(ctx).Error(), "deadline") {
		t.Errorf("cause: %v", context.Cause(ctx))
	}
	<-done
}
