package sim

import (
	"testing"

	"territory/model"
	"territory/sim/netsim"
	"territory/sim/replog"
)

// TestHandEditedRouteIsReportedNotFatal: mid-run, an operator overwrites a
// route with a value the core never writes, then a snapshot record and head
// with garbage, and later puts the route back. Every reader reports the
// values (FactBadCoordValue), nothing panics, the other subgraphs keep
// serving, and every check still passes.
func TestHandEditedRouteIsReportedNotFatal(t *testing.T) {
	cfg := Config{Scenario: "bad-coord-value", DurationMs: 8_000, DrainMs: 2_000, Territories: 3, Subgraphs: 4, Clients: 2,
		Policy: model.DefaultPolicy(), Net: netsim.LinkConfig{LatencyMinUs: 100, LatencyMaxUs: 500}, Log: replog.DefaultConfig(),
		CoordMaxUs: 200, BlobMaxUs: 200, LivenessMs: 6_000, // judged after the repair

		Workload: Workload{Neurons: 16, InFlight: 2, ThinkMaxUs: 2_000, Mix: OpMix{Create: 2, Stimulate: 3, ReadNeuron: 3}}}
	w, err := NewWorld(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	const sg = model.SubgraphID(1)
	edit := func(key string, value []byte) {
		req := model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnPut, Key: key, Value: value}}}
		if _, e := w.coord.Apply(w.k.NowUs(), 0, req); e != model.ErrNone {
			t.Errorf("edit %s: %v", key, e)
		}
	}
	del := func(key string) {
		req := model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnDelete, Key: key}}}
		if _, e := w.coord.Apply(w.k.NowUs(), 0, req); e != model.ErrNone {
			t.Errorf("delete %s: %v", key, e)
		}
	}
	var good []byte
	var head model.KV
	var hadHead bool
	opsAtEdit := 0
	w.k.At(2_000_000, func() {
		kv, ok := w.coord.Peek(model.RouteKey(sg))
		if !ok {
			t.Error("no route to edit")
			return
		}
		good = kv.Value
		head, hadHead = w.coord.Peek(model.SnapshotHeadKey(2))
		opsAtEdit = w.ops
		edit(model.RouteKey(sg), []byte("primary=the-big-one epoch=1"))
		edit(model.SnapshotKey(sg, "hand-made"), []byte("state=MAYBE lsn=-1"))
		edit(model.SnapshotHeadKey(2), []byte("uuid=x lsn=banana"))
	})
	// The operator repairs what they broke (the checkers judge the final
	// store, and a record the core never wrote is not the core's fault).
	w.k.At(5_000_000, func() {
		edit(model.RouteKey(sg), good)
		del(model.SnapshotKey(sg, "hand-made"))
		if hadHead {
			edit(head.Key, head.Value)
		} else {
			del(model.SnapshotHeadKey(2))
		}
	})
	out, err := w.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Violations) > 0 {
		t.Fatalf("violations: %v", out.Violations)
	}
	readers := map[string]map[model.HostID]bool{}
	for _, f := range out.BadCoordValues {
		if f.Err == nil {
			t.Fatalf("a fact without its error: %+v", f)
		}
		if readers[f.Key] == nil {
			readers[f.Key] = map[model.HostID]bool{}
		}
		readers[f.Key][f.Reader] = true
	}
	t.Logf("bad values reported: %v", readers)
	if len(readers[model.RouteKey(sg)]) < 2 {
		t.Fatalf("the hand-edited route was reported by %v (want the territories', the manager's or the clients' reads)", readers)
	}
	if len(readers[model.SnapshotKey(sg, "hand-made")]) == 0 {
		t.Fatalf("the hand-made snapshot record was not reported: %v", readers)
	}
	if out.Ops <= opsAtEdit+20 {
		t.Fatalf("the cluster stopped serving after the edit: %d ops before, %d at the end", opsAtEdit, out.Ops)
	}
}
