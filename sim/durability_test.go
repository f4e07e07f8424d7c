package sim

import (
	"hash/crc32"
	"strings"
	"testing"

	"territory/model"
	"territory/sim/invariants"
	"territory/sim/netsim"
	"territory/sim/replog"
)

// testWorld is a world that has not run: the checkers are poked directly.
func testWorld(t *testing.T) *World {
	t.Helper()
	cfg := Config{Scenario: "planted", DurationMs: 10_000, DrainMs: 1_000, Territories: 3, Subgraphs: 4, Clients: 1,
		Policy: model.DefaultPolicy(), Net: netsim.LinkConfig{LatencyMinUs: 1, LatencyMaxUs: 2}, Log: replog.DefaultConfig(),
		CoordMaxUs: 1, BlobMaxUs: 1, LivenessMs: 1_000,
		Workload: Workload{Neurons: 8, InFlight: 1, ThinkMaxUs: 1, Mix: OpMix{ReadNeuron: 1}}}
	w, err := NewWorld(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func put(t *testing.T, w *World, kvs ...model.TxnOp) {
	t.Helper()
	if _, err := w.coord.Apply(w.k.NowUs(), 0, model.CoordRequest{Kind: model.CoordTxn, Then: kvs}); err != model.ErrNone {
		t.Fatal(err)
	}
}

func record(sg model.SubgraphID, uuid string, st model.SnapshotState, data []byte) model.SnapshotRecord {
	return model.SnapshotRecord{Subgraph: sg, UUID: uuid, State: st, LSN: 5, Territory: 1, Epoch: 1,
		Location: model.SnapshotBlobKey(sg, uuid), Checksum: crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)), Size: len(data)}
}

func commit(t *testing.T, w *World, r model.SnapshotRecord, data []byte) {
	t.Helper()
	put(t, w, model.TxnOp{Kind: model.TxnPut, Key: model.SnapshotKey(r.Subgraph, r.UUID), Value: r.Encode()},
		model.TxnOp{Kind: model.TxnPut, Key: model.SnapshotHeadKey(r.Subgraph), Value: model.HeadValue(&r)})
	w.blob.Apply(model.BlobRequest{Kind: model.BlobPut, Key: r.Location, Data: data})
}

// checker returns the world's checker of type T.
func checker[T Checker](t *testing.T, w *World) T {
	t.Helper()
	for _, c := range w.checkers {
		if c, ok := c.(T); ok {
			return c
		}
	}
	var zero T
	t.Fatalf("no checker %T registered", zero)
	return zero
}

func violated(w *World, name, detail string) bool {
	for _, v := range w.violations {
		if v.Invariant == name && strings.Contains(v.Detail, detail) {
			return true
		}
	}
	return false
}

func TestOneCommittedSnapshotCatchesTwo(t *testing.T) {
	w := testWorld(t)
	data := []byte("snapshot-a")
	commit(t, w, record(1, "a", model.SnapCommitted, data), data)
	w.publish(Tick{Kind: TickPeriodic})
	if len(w.violations) != 0 {
		t.Fatalf("a clean snapshot flagged: %v", w.violations)
	}
	b := record(1, "b", model.SnapCommitted, data) // planted: a second COMMITTED record
	put(t, w, model.TxnOp{Kind: model.TxnPut, Key: model.SnapshotKey(1, "b"), Value: b.Encode()})
	w.publish(Tick{Kind: TickPeriodic})
	if !violated(w, invariants.OneCommitted, "2 COMMITTED") {
		t.Fatalf("two committed snapshots not caught: %v", w.violations)
	}
}

func TestOneCommittedSnapshotCatchesABadBlob(t *testing.T) {
	w := testWorld(t)
	data := []byte("snapshot-a")
	r := record(2, "a", model.SnapCommitted, data)
	commit(t, w, r, data)
	w.blob.Apply(model.BlobRequest{Kind: model.BlobPut, Key: r.Location, Data: []byte("snapshot-X")}) // planted: a wrong blob committed
	w.publish(Tick{Kind: TickPeriodic})
	if !violated(w, invariants.OneCommitted, "does not match") {
		t.Fatalf("a committed blob with the wrong checksum not caught: %v", w.violations)
	}
}

func TestBlobRetentionCatchesCommittedAndEarlyDeletes(t *testing.T) {
	w := testWorld(t)
	data := []byte("x")
	r := record(0, "a", model.SnapCommitted, data)
	commit(t, w, r, data)
	w.publish(BlobApplied{Req: model.BlobRequest{Kind: model.BlobDelete, Key: r.Location}}) // planted
	if !violated(w, invariants.BlobRetention, "COMMITTED") {
		t.Fatalf("deleting a committed blob not caught: %v", w.violations)
	}
	sup := record(0, "old", model.SnapSuperseded, data)
	req := model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnPut, Key: model.SnapshotKey(0, "old"), Value: sup.Encode()}}}
	resp, _ := w.coord.Apply(0, 0, req)
	w.publish(CoordApplied{Req: req, Resp: resp})
	w.publish(BlobApplied{Req: model.BlobRequest{Kind: model.BlobDelete, Key: sup.Location}}) // planted: no grace at all
	if !violated(w, invariants.BlobRetention, "after it was superseded") {
		t.Fatalf("deleting within the grace period not caught: %v", w.violations)
	}
}

func TestNoOrphansCatchesABlobWithoutRecord(t *testing.T) {
	w := testWorld(t)
	key := model.SnapshotBlobKey(3, "lost")
	req := model.BlobRequest{Kind: model.BlobPut, Key: key, Data: []byte("x")}
	w.blob.Apply(req) // planted: never recorded
	w.publish(BlobApplied{Req: req})
	if err := w.k.Run(60_000_000); err != nil {
		t.Fatal(err)
	}
	w.violations = append(w.violations, checker[*durability](t, w).Final(w.view)...)
	if !violated(w, invariants.NoOrphans, key) {
		t.Fatalf("orphan not caught: %v", w.violations)
	}
}

func TestDecayBoundCatchesAWrongClock(t *testing.T) {
	w := testWorld(t)
	w.k.At(30_000_000, func() {})
	if err := w.k.Run(30_000_000); err != nil {
		t.Fatal(err)
	}
	ok := model.Event{LSN: 1, Subgraph: 0, Type: model.EvHeartbeat, TimestampMs: 30_000}
	w.publish(folded(ok, 29_999_000, 30_000))
	if len(w.violations) != 0 {
		t.Fatalf("a right clock flagged: %v", w.violations)
	}
	bad := model.Event{LSN: 2, Subgraph: 0, Type: model.EvHeartbeat, TimestampMs: 4_000} // planted: time since boot
	w.publish(folded(bad, 29_999_000, 30_000))
	if !violated(w, invariants.DecayBounded, "stamped 4000ms") {
		t.Fatalf("a heartbeat from the wrong clock not caught: %v", w.violations)
	}
}

func TestLivenessCatchesAnUnservedSubgraph(t *testing.T) {
	w := testWorld(t) // nothing booted: no subgraph has a primary
	put(t, w, model.TxnOp{Kind: model.TxnPut, Key: model.RouteKey(0), Value: model.EncodeRoute(1, 1)})
	w.publish(Tick{Kind: TickHealed})
	if !violated(w, invariants.Liveness, "4 subgraph(s) without an operational primary") {
		t.Fatalf("unserved subgraphs not caught: %v", w.violations)
	}
}

func TestSingleWriterCatchesASecondHostAtAnEpoch(t *testing.T) {
	w := testWorld(t)
	a, b := w.territories[0], w.territories[1]
	a.up, b.up = true, true
	w.logCall(a, model.LogCall{ReqID: 1, Req: model.LogRequest{Kind: model.LogOpen, Stream: 2, Epoch: 5}, TimeoutMs: 1})
	if len(w.violations) != 0 {
		t.Fatalf("an open flagged: %v", w.violations)
	}
	// Planted: host b appends at a's epoch without opening it.
	w.logCall(b, model.LogCall{ReqID: 1, Req: model.LogRequest{Kind: model.LogAppend, Stream: 2, Epoch: 5, LSN: 1, Data: []byte("x")}, TimeoutMs: 1})
	if !violated(w, invariants.SingleWriterEpoch, "but the epoch belongs to t1") {
		t.Fatalf("a second writer at one epoch not caught: %v", w.violations)
	}
}

func TestDecayBaseMustBeTheLastHeartbeatBeforeTheRecovery(t *testing.T) {
	w := testWorld(t)
	hb := func(lsn uint64, epoch uint64, ts int64) {
		w.publish(folded(model.Event{LSN: lsn, Type: model.EvHeartbeat, WriterEpoch: epoch, TimestampMs: ts}, 0, ts))
	}
	hb(1, 1, 1_000)
	hb(2, 1, 2_000) // epoch 1 ends with heartbeat 2000
	hb(3, 2, 9_000) // the recovering claim (epoch 2) logged a write first
	rec := func(base int64) model.Event {
		return model.Event{LSN: 4, UUID: model.RecoveryUUID(0, 2), Type: model.EvTerritoryRecovered, WriterEpoch: 2, TimestampMs: 9_500, Recovery: model.RecoveryBody{LastHeartbeatMs: base}}
	}
	w.publish(folded(rec(2_000), 0, 9_500))
	if len(w.violations) != 0 {
		t.Fatalf("the right base flagged: %v", w.violations)
	}
	w.publish(folded(rec(9_000), 0, 9_500)) // planted: decays from the new primary's write
	if !violated(w, invariants.DecayBounded, "decays from heartbeat 9000ms, but the last heartbeat before that epoch is 2000ms") {
		t.Fatalf("a shortened decay not caught: %v", w.violations)
	}
}

// folded is the fold's report of an applied entry of subgraph 0.
func folded(ev model.Event, firstSentUs, heartbeatMs int64) EntryFolded {
	return EntryFolded{Entry: EntryCommitted{LSN: ev.LSN, Epoch: ev.WriterEpoch, FirstSentUs: firstSentUs},
		Subgraph: ev.Subgraph, Event: ev, Applied: true, LastHeartbeatMs: heartbeatMs}
}

func TestSingleWriterCatchesAFencedAppendCommittingAfterTheOpen(t *testing.T) {
	w := testWorld(t)
	a, b := w.territories[0].id, w.territories[1].id
	w.publish(LogSent{Host: a, Req: model.LogRequest{Kind: model.LogOpen, Stream: 2, Epoch: 1}})
	w.publish(LogSent{Host: b, Req: model.LogRequest{Kind: model.LogOpen, Stream: 2, Epoch: 2}})
	w.publish(LogAnswered{Host: b, Req: model.LogRequest{Kind: model.LogOpen, Stream: 2, Epoch: 2}})
	// Planted: a's append at epoch 1 commits after b's open, before b commits anything.
	w.publish(EntryCommitted{Stream: 2, LSN: 1, Epoch: 1, Writer: a})
	v := append(w.violations, checker[*singleWriterChecker](t, w).Final(w.view)...)
	w.violations = v
	if !violated(w, invariants.SingleWriterEpoch, "after the log accepted an open at epoch 2") {
		t.Fatalf("a fenced append committing after the open not caught: %v", w.violations)
	}
}
