package model

import (
	"strings"
	"testing"
)

// badFacts returns the FactBadCoordValue observations in out.
func badFacts(out *Outbox) []FactBadCoordValue {
	var got []FactBadCoordValue
	for _, o := range effects[Observe](out) {
		if f, ok := o.Fact.(FactBadCoordValue); ok {
			got = append(got, f)
		}
	}
	return got
}

func wantBadFact(t *testing.T, out *Outbox, reader HostID, key, errText string) {
	t.Helper()
	for _, f := range badFacts(out) {
		if f.Reader == reader && f.Key == key && f.Err != nil && strings.Contains(f.Err.Error(), errText) {
			return
		}
	}
	t.Fatalf("no FactBadCoordValue{%d, %q, ...%q...} in %v", reader, key, errText, out.Effects)
}

// malformedRoutes are route values the core never writes.
var malformedRoutes = [][]byte{
	[]byte("primary=banana epoch=1"),
	[]byte("primary=7"),
	[]byte("primary=7 epoch=1 colour=red"),
	[]byte("primary=99999999999 epoch=1"),
	[]byte("garbage"),
	nil,
}

func TestClientReportsAndSkipsAMalformedRoute(t *testing.T) {
	for _, v := range malformedRoutes {
		c, err := NewClient(DefaultClientConfig(50, 9, 4), &seqRand{})
		if err != nil {
			t.Fatal(err)
		}
		out := &Outbox{}
		c.Step(0, Start{}, out)
		calls := effects[CoordCall](out)
		out.Reset()
		kvs := routesKVs(4, 7, 1)
		kvs[2].Value = v
		c.Step(1, CoordResult{ReqID: calls[0].ReqID, Resp: CoordResponse{KVs: kvs}}, out)
		wantBadFact(t, out, 50, RouteKey(2), "route")
		if len(badFacts(out)) != 1 {
			t.Fatalf("%q: one bad route, facts %v", v, badFacts(out))
		}
		// The other routes are used; subgraph 2 has no route and is read afresh.
		out.Reset()
		c.Step(2, Submit{Req: Request{ID: c.NewID(), Op: OpReadNeuron, Neuron: neuronsIn(0, 1)[0]}}, out)
		if s := effects[Send](out); len(s) != 1 || s[0].To != 7 {
			t.Fatalf("%q: a good route was not used: %v", v, out.Effects)
		}
		out.Reset()
		c.Step(3, Submit{Req: Request{ID: c.NewID(), Op: OpReadNeuron, Neuron: neuronsIn(2, 1)[0]}}, out)
		if len(effects[Send](out)) != 0 {
			t.Fatalf("%q: a request went to a malformed route: %v", v, out.Effects)
		}
	}
}

func TestClientForgetsARouteWatchedIntoGarbage(t *testing.T) {
	c, out := newTestClient(t)
	sg := SubgraphOf(3, 4)
	out.Reset()
	c.Step(2, WatchEvent{KV: KV{Key: RouteKey(sg), Value: []byte("primary=8 epoch=x"), ModRevision: 9}}, out)
	wantBadFact(t, out, 50, RouteKey(sg), "epoch")
	out.Reset()
	c.Step(3, Submit{Req: Request{ID: c.NewID(), Op: OpReadNeuron, Neuron: 3}}, out)
	if len(effects[Send](out)) != 0 {
		t.Fatalf("the stale route was still used: %v", out.Effects)
	}
	// A route key beyond the cluster's subgraphs is bad too.
	out.Reset()
	c.Step(4, WatchEvent{KV: KV{Key: RouteKey(4), Value: EncodeRoute(8, 2), ModRevision: 10}}, out)
	wantBadFact(t, out, 50, RouteKey(4), "beyond")
	// A deleted route is forgotten (a delete event carries no value).
	c2, out2 := newTestClient(t)
	c2.Step(2, WatchEvent{KV: KV{Key: RouteKey(sg), ModRevision: 9}, Deleted: true}, out2)
	out2.Reset()
	c2.Step(3, Submit{Req: Request{ID: c2.NewID(), Op: OpReadNeuron, Neuron: 3}}, out2)
	if len(effects[Send](out2)) != 0 || len(badFacts(out2)) != 0 {
		t.Fatalf("a deleted route was still used: %v", out2.Effects)
	}
}

// managerTick fires the manager's tick timer (the last one it set) and
// returns the next one's id.
func managerTick(t *testing.T, m *Manager, now int64, tick uint64, out *Outbox) uint64 {
	t.Helper()
	out.Reset()
	m.Step(now, TimerFired{ID: tick}, out)
	timers := effects[SetTimer](out)
	if len(timers) == 0 {
		t.Fatalf("no tick timer: %v", out.Effects)
	}
	return timers[len(timers)-1].ID
}

func coordCallFor(t *testing.T, out *Outbox, key string) CoordCall {
	t.Helper()
	for _, c := range effects[CoordCall](out) {
		if c.Req.Key == key {
			return c
		}
	}
	t.Fatalf("no coordination call for %q: %v", key, out.Effects)
	return CoordCall{}
}

// TestManagerReportsBadValuesAndKeepsRunning: malformed alive keys, routes
// and snapshot records are reported and skipped; the good ones are still
// acted on (a lost territory's good route moves, a true orphan blob goes),
// and the blob a malformed record names is kept.
func TestManagerReportsBadValuesAndKeepsRunning(t *testing.T) {
	cfg := DefaultManagerConfig(10, 4, []HostID{1, 2})
	cfg.TickMs, cfg.HostLossMs, cfg.ReconcileMs, cfg.OrphanMs = 100, 100, 100, 100
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := &Outbox{}
	m.Step(0, Start{}, out)
	tick := managerTick(t, m, 100, effects[SetTimer](out)[0].ID, out)
	alive := coordCallFor(t, out, AlivePrefix)
	list := effects[BlobCall](out)
	if len(list) != 1 || list[0].Req.Kind != BlobList {
		t.Fatalf("no blob listing: %v", out.Effects)
	}
	keptBlob, orphanBlob := SnapshotBlobKey(1, "u1"), SnapshotBlobKey(2, "u2")
	// Liveness: territory 2 is missing, and an alive key is garbage.
	m.Step(100, CoordResult{ReqID: alive.ReqID, Resp: CoordResponse{KVs: []KV{{Key: AliveKey(1)}, {Key: AlivePrefix + "one"}}}}, out)
	wantBadFact(t, out, 10, AlivePrefix+"one", "alive key")
	routes := coordCallFor(t, out, RoutesPrefix)
	kvs := routesKVs(4, 2, 3)
	kvs[1].Value = []byte("primary=2 epoch=three")
	kvs = append(kvs, KV{Key: RouteKey(9), Value: EncodeRoute(2, 1), ModRevision: 20})
	m.Step(100, CoordResult{ReqID: routes.ReqID, Resp: CoordResponse{KVs: kvs}}, out)
	wantBadFact(t, out, 10, RouteKey(1), "epoch")
	wantBadFact(t, out, 10, RouteKey(9), "beyond")
	moved := map[string]bool{}
	for _, c := range effects[CoordCall](out) {
		if c.Req.Kind == CoordTxn {
			moved[c.Req.Compares[0].Key] = true
		}
	}
	if len(moved) != 3 || moved[RouteKey(1)] || moved[RouteKey(9)] {
		t.Fatalf("the lost territory's good routes (and only those) move: %v", moved)
	}
	// Reconciliation, twice so the orphan period passes.
	for i := range 2 {
		m.Step(int64(100+i*100), BlobResult{ReqID: list[0].ReqID, Resp: BlobResponse{Keys: []string{keptBlob, orphanBlob}}}, out)
		recs := coordCallFor(t, out, SnapshotsPrefix)
		out.Reset()
		m.Step(int64(100+i*100), CoordResult{ReqID: recs.ReqID, Resp: CoordResponse{KVs: []KV{{Key: SnapshotKey(1, "u1"), Value: []byte("state=COMMITTED lsn=-4"), ModRevision: 5}}}}, out)
		wantBadFact(t, out, 10, SnapshotKey(1, "u1"), "lsn")
		for _, b := range effects[BlobCall](out) {
			if b.Req.Kind == BlobDelete && b.Req.Key == keptBlob {
				t.Fatalf("the blob of an unreadable record was deleted")
			}
		}
		if i == 1 {
			if d := effects[BlobCall](out); len(d) != 1 || d[0].Req.Kind != BlobDelete || d[0].Req.Key != orphanBlob {
				t.Fatalf("the true orphan was not deleted: %v", out.Effects)
			}
			break
		}
		tick = managerTick(t, m, 200, tick, out)
		list = nil
		for _, b := range effects[BlobCall](out) {
			if b.Req.Kind == BlobList {
				list = append(list, b)
			}
		}
		if len(list) != 1 {
			t.Fatalf("no second blob listing: %v", out.Effects)
		}
	}
}

// TestTerritoryReportsBadValuesAndKeepsRunning: at boot, a malformed route
// and a route beyond the cluster are reported and skipped while the good
// route is adopted; a malformed snapshot record at load is reported and is
// not a candidate, and the territory goes on to open its log.
func TestTerritoryReportsBadValuesAndKeepsRunning(t *testing.T) {
	tr, err := NewTerritory(DefaultTerritoryConfig(7, 2))
	if err != nil {
		t.Fatal(err)
	}
	out := &Outbox{}
	tr.Step(0, Start{}, out)
	boot := effects[CoordCall](out)[0]
	out.Reset()
	kvs := routesKVs(2, 7, 0)
	kvs[1].Value = []byte("primary=seven epoch=0")
	kvs = append(kvs, KV{Key: RouteKey(2), Value: EncodeRoute(7, 0), ModRevision: 3})
	tr.Step(1, CoordResult{ReqID: boot.ReqID, Resp: CoordResponse{KVs: kvs}}, out)
	wantBadFact(t, out, 7, RouteKey(1), "primary")
	wantBadFact(t, out, 7, RouteKey(2), "beyond")
	claims := effects[CoordCall](out)
	if len(claims) != 1 || claims[0].Req.Compares[0].Key != RouteKey(0) {
		t.Fatalf("only the good route is claimed: %v", out.Effects)
	}
	out.Reset()
	tr.Step(2, CoordResult{ReqID: claims[0].ReqID, Resp: CoordResponse{Succeeded: true, Revision: 5}}, out)
	load := effects[CoordCall](out)
	if len(load) != 1 || load[0].Req.Key != SnapshotPrefix(0) {
		t.Fatalf("no snapshot listing: %v", out.Effects)
	}
	out.Reset()
	bad := KV{Key: SnapshotKey(0, "hand"), Value: []byte("state=COMMITTED lsn=12 location")}
	tr.Step(2, CoordResult{ReqID: load[0].ReqID, Resp: CoordResponse{KVs: []KV{bad}}}, out)
	wantBadFact(t, out, 7, bad.Key, "name=value")
	if open := effects[LogCall](out); len(open) != 1 || open[0].Req.Kind != LogOpen {
		t.Fatalf("the territory did not go on to open its log: %v", out.Effects)
	}
}

// TestReadBarrierOnAGarbageRoute: a read whose barrier finds a route value
// the core did not write is answered unavailable (never served, never a
// step-down on a value that says nothing), and the value is reported.
func TestReadBarrierOnAGarbageRoute(t *testing.T) {
	tr, out := bootTerritory(t)
	read := &Request{ID: EventUUID{9, 2}, Op: OpReadNeuron, Neuron: 5}
	out.Reset()
	tr.Step(4, MessageIn{From: 50, Msg: &Message{Request: read}}, out)
	barrier := effects[CoordCall](out)[0]
	out.Reset()
	tr.Step(5, CoordResult{ReqID: barrier.ReqID, Resp: CoordResponse{Succeeded: false}}, out)
	get := effects[CoordCall](out)[0]
	out.Reset()
	kvs := routesKVs(1, 7, 1)
	kvs[0].Value = []byte("primary=7 epoch=1 extra")
	tr.Step(5, CoordResult{ReqID: get.ReqID, Resp: CoordResponse{KVs: kvs}}, out)
	sends := effects[Send](out)
	if len(sends) != 1 || sends[0].Msg.Reply.Result.Status != StatusUnavailable || len(tr.Operational()) != 1 {
		t.Fatalf("a garbage route must make the read unavailable and depose nobody: %v", out.Effects)
	}
	wantBadFact(t, out, 7, RouteKey(0), "name=value")
}
