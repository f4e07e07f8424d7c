package fidelity

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"territory/model"
	"territory/runtime/etcdcoord"
	"territory/runtime/etcdembed"
	"territory/sim/coordstore"
)

// coordSide is one coordination store under test: the simulator or etcd.
type coordSide interface {
	do(req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error)
	// events returns the events of the sequence's watch, waiting up to
	// wait for at least n of them.
	events(n int, wait time.Duration) []model.WatchEvent
}

type simSide struct {
	s     *coordstore.Store
	nowUs int64
	evs   []model.WatchEvent
}

const simHost = 1

func newSimSide(root string) *simSide {
	c := &simSide{s: coordstore.New()}
	c.s.SetNotifier(func(_ model.HostID, ev model.WatchEvent) { c.evs = append(c.evs, ev) })
	c.s.Apply(0, simHost, model.CoordRequest{Kind: model.CoordWatch, Key: root})
	return c
}

func (c *simSide) do(req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
	c.nowUs += 1000
	r, se := c.s.Apply(c.nowUs, simHost, req)
	return r, se, nil
}

func (c *simSide) events(int, time.Duration) []model.WatchEvent { return c.evs }

type etcdSide struct {
	c   *etcdcoord.Coord
	evs chan model.WatchEvent
	got []model.WatchEvent
}

func newEtcdSide(t *testing.T, c *etcdcoord.Coord, root string) *etcdSide {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &etcdSide{c: c, evs: make(chan model.WatchEvent, 4096)}
	if err := c.Watch(ctx, root, func(ev model.WatchEvent) { e.evs <- ev }); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *etcdSide) do(req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.c.Do(ctx, req)
}

func (e *etcdSide) events(n int, wait time.Duration) []model.WatchEvent {
	deadline := time.After(wait)
	for len(e.got) < n {
		select {
		case ev := <-e.evs:
			e.got = append(e.got, ev)
		case <-deadline:
			return e.got
		}
	}
	// Anything beyond n that is already there (a difference to report).
	for {
		select {
		case ev := <-e.evs:
			e.got = append(e.got, ev)
		case <-time.After(50 * time.Millisecond):
			return e.got
		}
	}
}

// normaliser makes one side's answers comparable with the other's:
// revisions relative to the sequence's first, lease ids by grant order.
type normaliser struct {
	base   int64
	leases map[int64]int64
}

func (n *normaliser) rev(r int64) int64 {
	if r == 0 {
		return 0
	}
	return r - n.base
}

func (n *normaliser) lease(id int64) int64 {
	if id == 0 {
		return 0
	}
	if i, ok := n.leases[id]; ok {
		return i
	}
	return -id // unknown: never equal across sides
}

type outcome struct {
	Err       model.ServiceErr
	Unknown   string
	Revision  int64
	KVs       []kvOut
	Succeeded bool
	Lease     int64
}

type kvOut struct {
	Key, Value string
	ModRev     int64
	Lease      int64
}

func (n *normaliser) out(req model.CoordRequest, r model.CoordResponse, se model.ServiceErr, err error) outcome {
	if err != nil {
		return outcome{Unknown: err.Error()}
	}
	o := outcome{Err: se}
	if se != model.ErrNone {
		return o // the revision of a refusal is not part of the contract
	}
	if req.Kind == model.CoordLeaseGrant {
		n.leases[r.Lease] = int64(len(n.leases) + 1)
	}
	o.Revision, o.Succeeded, o.Lease = n.rev(r.Revision), r.Succeeded, n.lease(r.Lease)
	for _, kv := range r.KVs {
		o.KVs = append(o.KVs, kvOut{kv.Key, string(kv.Value), n.rev(kv.ModRevision), n.lease(kv.Lease)})
	}
	return o
}

func (n *normaliser) event(ev model.WatchEvent) string {
	return fmt.Sprintf("%s=%q rev %d lease %d deleted %v", ev.KV.Key, ev.KV.Value, n.rev(ev.KV.ModRevision), n.lease(ev.KV.Lease), ev.Deleted)
}

// coordGen draws the operations of one sequence: the calls the core makes
// (get, range, transactions compared on mod revisions, with and without
// leases, lease grant / keep-alive / revoke) and the malformed ones etcd
// refuses (a key written twice in a branch, a put and a delete of one key,
// the empty key, more than model.MaxTxnOps operations).
type coordGen struct {
	r     *rand.Rand
	root  string
	revs  []int64 // mod revisions seen (side A's numbering)
	lease []int64 // lease ids granted (side A), 0 for none
}

func (g *coordGen) key() string {
	if g.r.IntN(40) == 0 {
		return ""
	}
	return fmt.Sprintf("%sk%d", g.root, g.r.IntN(6))
}

func (g *coordGen) value() string { return fmt.Sprintf("v%d", g.r.IntN(1000)) }

func (g *coordGen) op() model.TxnOp {
	if g.r.IntN(4) == 0 {
		return model.TxnOp{Kind: model.TxnDelete, Key: g.key()}
	}
	op := model.TxnOp{Kind: model.TxnPut, Key: g.key(), Value: []byte(g.value())}
	if len(g.lease) > 0 && g.r.IntN(3) == 0 {
		op.Lease = g.lease[g.r.IntN(len(g.lease))]
	}
	return op
}

func (g *coordGen) ops(max int) []model.TxnOp {
	var out []model.TxnOp
	for range g.r.IntN(max + 1) {
		out = append(out, g.op())
	}
	return out
}

// next draws a request in side A's terms (mod revisions and lease ids as A
// numbers them); mapTo translates it for side B.
func (g *coordGen) next() model.CoordRequest {
	switch p := g.r.IntN(100); {
	case p < 15:
		return model.CoordRequest{Kind: model.CoordGet, Key: g.key()}
	case p < 22:
		prefix := g.root
		if g.r.IntN(2) == 0 {
			prefix += "k"
		}
		return model.CoordRequest{Kind: model.CoordRange, Key: prefix}
	case p < 27:
		return model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 60_000}
	case p < 31 && len(g.lease) > 0:
		return model.CoordRequest{Kind: model.CoordLeaseKeepAlive, Lease: g.lease[g.r.IntN(len(g.lease))]}
	case p < 34 && len(g.lease) > 0:
		return model.CoordRequest{Kind: model.CoordLeaseRevoke, Lease: g.lease[g.r.IntN(len(g.lease))]}
	case p < 37:
		// Too many operations: one over the limit in one part.
		req := model.CoordRequest{Kind: model.CoordTxn}
		n := model.MaxTxnOps + g.r.IntN(2)
		for i := range n {
			req.Then = append(req.Then, model.TxnOp{Kind: model.TxnPut, Key: fmt.Sprintf("%swide%03d", g.root, i)})
		}
		return req
	}
	req := model.CoordRequest{Kind: model.CoordTxn}
	for range g.r.IntN(3) {
		c := model.Compare{Key: g.key()}
		if len(g.revs) > 0 && g.r.IntN(3) > 0 {
			c.ModRevision = g.revs[g.r.IntN(len(g.revs))]
		}
		req.Compares = append(req.Compares, c)
	}
	req.Then, req.Else = g.ops(4), g.ops(2)
	return req
}

func (g *coordGen) saw(req model.CoordRequest, r model.CoordResponse, se model.ServiceErr) {
	if se != model.ErrNone {
		return
	}
	if req.Kind == model.CoordLeaseGrant {
		g.lease = append(g.lease, r.Lease)
	}
	g.revs = append(g.revs, r.Revision)
	for _, kv := range r.KVs {
		g.revs = append(g.revs, kv.ModRevision)
	}
}

// translate maps a request in A's numbering to B's.
func translate(req model.CoordRequest, a, b *normaliser) model.CoordRequest {
	inv := map[int64]int64{}
	for id, i := range b.leases {
		inv[i] = id
	}
	lease := func(id int64) int64 {
		if id == 0 {
			return 0
		}
		if bid, ok := inv[a.lease(id)]; ok {
			return bid
		}
		return id
	}
	out := req
	out.Lease = lease(req.Lease)
	out.Compares = nil
	for _, c := range req.Compares {
		if c.ModRevision != 0 {
			c.ModRevision = c.ModRevision - a.base + b.base
		}
		out.Compares = append(out.Compares, c)
	}
	tr := func(ops []model.TxnOp) []model.TxnOp {
		var o []model.TxnOp
		for _, op := range ops {
			op.Lease = lease(op.Lease)
			o = append(o, op)
		}
		return o
	}
	out.Then, out.Else = tr(req.Then), tr(req.Else)
	return out
}

// coordTally counts agreeing operations per class.
type coordTally map[string][2]int

func class(req model.CoordRequest, o outcome) string {
	names := map[model.CoordOpKind]string{model.CoordGet: "get", model.CoordRange: "range", model.CoordTxn: "txn",
		model.CoordLeaseGrant: "lease-grant", model.CoordLeaseKeepAlive: "lease-keepalive", model.CoordLeaseRevoke: "lease-revoke"}
	n := names[req.Kind]
	if o.Err == model.ErrInvalid {
		n += "/invalid"
	} else if o.Err != model.ErrNone {
		n += "/" + o.Err.String()
	}
	return n
}

// runCoordSequence runs one seeded sequence against both sides and returns
// the differences.
func runCoordSequence(t *testing.T, seed uint64, ops int, sim, real coordSide, root string, tally coordTally) []string {
	g := &coordGen{r: rand.New(rand.NewPCG(seed, 0x5eed)), root: root}
	na, nb := &normaliser{leases: map[int64]int64{}}, &normaliser{leases: map[int64]int64{}}
	// The base revisions: a get of the root on each side.
	ra, _, _ := sim.do(model.CoordRequest{Kind: model.CoordGet, Key: root + "base"})
	rb, _, err := real.do(model.CoordRequest{Kind: model.CoordGet, Key: root + "base"})
	if err != nil {
		t.Fatal(err)
	}
	na.base, nb.base = ra.Revision, rb.Revision
	var diffs []string
	for i := range ops {
		req := g.next()
		r1, se1, err1 := sim.do(req)
		oa := na.out(req, r1, se1, err1)
		breq := translate(req, na, nb)
		r2, se2, err2 := real.do(breq)
		ob := nb.out(breq, r2, se2, err2)
		g.saw(req, r1, se1)
		c := class(req, oa)
		cnt := tally[c]
		cnt[1]++
		if reflect.DeepEqual(oa, ob) {
			cnt[0]++
		} else {
			diffs = append(diffs, fmt.Sprintf("seed %d op %d %s %s:\n  sim  %+v\n  etcd %+v", seed, i, c, describe(req), oa, ob))
		}
		tally[c] = cnt
	}
	ea := sim.events(0, 0)
	eb := real.events(len(ea), 3*time.Second)
	cnt := tally["watch-event"]
	for i := range max(len(ea), len(eb)) {
		cnt[1]++
		var sa, sb string
		if i < len(ea) {
			sa = na.event(ea[i])
		}
		if i < len(eb) {
			sb = nb.event(eb[i])
		}
		if sa == sb {
			cnt[0]++
		} else {
			diffs = append(diffs, fmt.Sprintf("seed %d watch event %d:\n  sim  %s\n  etcd %s", seed, i, sa, sb))
		}
	}
	tally["watch-event"] = cnt
	return diffs
}

func describe(req model.CoordRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kind %d key %q lease %d", req.Kind, req.Key, req.Lease)
	for _, c := range req.Compares {
		fmt.Fprintf(&b, " cmp(%s=%d)", c.Key, c.ModRevision)
	}
	if len(req.Then)+len(req.Else) > 8 {
		fmt.Fprintf(&b, " then %d ops else %d ops", len(req.Then), len(req.Else))
		return b.String()
	}
	for _, op := range req.Then {
		fmt.Fprintf(&b, " then(%d %s l%d)", op.Kind, op.Key, op.Lease)
	}
	for _, op := range req.Else {
		fmt.Fprintf(&b, " else(%d %s l%d)", op.Kind, op.Key, op.Lease)
	}
	return b.String()
}

// TestCoordFidelity: seeded random sequences of coordination calls, each
// against a fresh simulated store and (under a fresh prefix) an embedded
// etcd server: every answer (revisions relative to the sequence's start,
// lease ids by grant order, errors included) and every watch event must
// agree.
func TestCoordFidelity(t *testing.T) {
	c := startEtcd(t)
	start := time.Now()
	n, ops := sequences(12, 500), 40
	tally := coordTally{}
	var diffs []string
	for seed := range uint64(n) {
		root := fmt.Sprintf("fid/%d/", seed)
		diffs = append(diffs, runCoordSequence(t, seed, ops, newSimSide(root), newEtcdSide(t, c, root), root, tally)...)
		if len(diffs) > 10 {
			break
		}
	}
	report(t, "coord-etcd", "coordination store vs etcd", n, time.Since(start), fromPairs(tally), diffs)
}

// startEtcd starts an embedded etcd member (short tick and election, so that
// its minimum lease TTL is 1 s) and dials it.
func startEtcd(t *testing.T) *etcdcoord.Coord {
	t.Helper()
	m := etcdembed.StartTest(t)
	c, err := etcdcoord.Dial(etcdcoord.Config{Endpoints: []string{m.Client}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
