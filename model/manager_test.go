package model

import (
	"slices"
	"strings"
	"testing"
)

// mgr drives a Manager by hand: it fires its tick timer and answers its
// calls, and keeps every effect it has not yet taken.
type mgr struct {
	t       *testing.T
	m       *Manager
	nowMs   int64
	timer   uint64
	pending []Effect
}

func newMgr(t *testing.T, cfg ManagerConfig) *mgr {
	t.Helper()
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &mgr{t: t, m: m, nowMs: 1_000}
	h.step(Start{})
	if h.timer == 0 {
		t.Fatal("Start set no tick timer")
	}
	return h
}

func (h *mgr) step(in Input) {
	var out Outbox
	h.m.Step(h.nowMs, in, &out)
	for _, e := range out.Effects {
		if st, ok := e.(SetTimer); ok {
			h.timer = st.ID
			continue
		}
		h.pending = append(h.pending, e)
	}
}

// tick lets TickMs pass (plus jumpMs of clock jump) and fires the timer.
func (h *mgr) tick(jumpMs int64) {
	h.nowMs += h.m.cfg.TickMs + jumpMs
	id := h.timer
	h.timer = 0
	h.step(TimerFired{ID: id})
	if h.timer == 0 || h.timer == id {
		h.t.Fatal("a tick did not set the next timer")
	}
}

// takeCoord removes and returns the pending coordination calls that match.
func (h *mgr) takeCoord(match func(CoordRequest) bool) []CoordCall {
	var got []CoordCall
	h.pending = slices.DeleteFunc(h.pending, func(e Effect) bool {
		if c, ok := e.(CoordCall); ok && match(c.Req) {
			got = append(got, c)
			return true
		}
		return false
	})
	return got
}

func (h *mgr) takeBlob(match func(BlobRequest) bool) []BlobCall {
	var got []BlobCall
	h.pending = slices.DeleteFunc(h.pending, func(e Effect) bool {
		if c, ok := e.(BlobCall); ok && match(c.Req) {
			got = append(got, c)
			return true
		}
		return false
	})
	return got
}

func (h *mgr) facts() []FactBadCoordValue {
	var got []FactBadCoordValue
	h.pending = slices.DeleteFunc(h.pending, func(e Effect) bool {
		if o, ok := e.(Observe); ok {
			if f, ok := o.Fact.(FactBadCoordValue); ok {
				got = append(got, f)
				return true
			}
		}
		return false
	})
	return got
}

func rangeOf(prefix string) func(CoordRequest) bool {
	return func(r CoordRequest) bool { return r.Kind == CoordRange && r.Key == prefix }
}

func isTxn(r CoordRequest) bool { return r.Kind == CoordTxn }

func aliveKVs(ids ...HostID) []KV {
	var kvs []KV
	for _, id := range ids {
		kvs = append(kvs, KV{Key: AliveKey(id), Value: []byte("1"), ModRevision: 1})
	}
	return kvs
}

func routeKV(sg SubgraphID, primary HostID, epoch uint64, rev int64) KV {
	return KV{Key: RouteKey(sg), Value: EncodeRoute(primary, epoch), ModRevision: rev}
}

// poll ticks once and answers the alive poll with the given territories; it
// returns whether the manager then read the routes (a loss).
func (h *mgr) poll(alive ...HostID) []CoordCall {
	h.t.Helper()
	h.tick(0)
	polls := h.takeCoord(rangeOf(AlivePrefix))
	if len(polls) != 1 {
		h.t.Fatalf("tick %d: %d alive polls, want 1", h.m.ticks, len(polls))
	}
	h.step(CoordResult{ReqID: polls[0].ReqID, Resp: CoordResponse{KVs: aliveKVs(alive...)}})
	return h.takeCoord(rangeOf(RoutesPrefix))
}

func quietReconciler(cfg ManagerConfig) ManagerConfig {
	cfg.ReconcileMs = 1 << 40 // never within these tests
	cfg.MigrationsOff = true
	return cfg
}

func TestManagerMovesALostHostsSubgraphsToTheLeastLoaded(t *testing.T) {
	cfg := quietReconciler(DefaultManagerConfig(100, 5, []HostID{1, 2, 3}))
	cfg.HostLossMs = 4 * cfg.TickMs
	h := newMgr(t, cfg)
	for i := 1; i <= 3; i++ {
		if reads := h.poll(1, 2); len(reads) != 0 {
			t.Fatalf("poll %d: territory 3 missing for %d ms < %d read the routes", i, int64(i)*cfg.TickMs, cfg.HostLossMs)
		}
	}
	reads := h.poll(1, 2)
	if len(reads) != 1 {
		t.Fatalf("territory 3 missing for HostLossMs: %d route reads, want 1", len(reads))
	}
	// Loads: 1 serves two, 2 serves one, 3 (lost) serves two.
	h.step(CoordResult{ReqID: reads[0].ReqID, Resp: CoordResponse{KVs: []KV{
		routeKV(0, 3, 5, 10), routeKV(1, 3, 2, 11), routeKV(2, 1, 1, 12), routeKV(3, 1, 1, 13), routeKV(4, 2, 1, 14)}}})
	moves := h.takeCoord(isTxn)
	want := []CoordRequest{
		PutIfVersion(RouteKey(0), EncodeRoute(2, 5), 10), // 2 was the least loaded
		PutIfVersion(RouteKey(1), EncodeRoute(1, 2), 11), // then 1 and 2 tie at two: the first
	}
	if len(moves) != len(want) {
		t.Fatalf("moves %+v, want %+v", moves, want)
	}
	for i := range want {
		if !sameCoordReq(moves[i].Req, want[i]) {
			t.Fatalf("move %d: %+v, want %+v", i, moves[i].Req, want[i])
		}
	}
	// No poll while the moves are in flight: a plan is never made from a
	// listing older than the moves.
	h.tick(0)
	if polls := h.takeCoord(rangeOf(AlivePrefix)); len(polls) != 0 {
		t.Fatal("polled while route swaps were in flight")
	}
	h.step(CoordResult{ReqID: moves[0].ReqID, Resp: CoordResponse{Succeeded: true}})
	h.step(CoordResult{ReqID: moves[1].ReqID, Outcome: OutcomeTimeout})
	h.tick(0)
	if polls := h.takeCoord(rangeOf(AlivePrefix)); len(polls) != 1 {
		t.Fatal("no poll after the swaps were answered")
	}
}

func sameCoordReq(a, b CoordRequest) bool {
	if a.Kind != b.Kind || a.Key != b.Key || !slices.Equal(a.Compares, b.Compares) || len(a.Then) != len(b.Then) {
		return false
	}
	for i := range a.Then {
		if a.Then[i].Kind != b.Then[i].Kind || a.Then[i].Key != b.Then[i].Key || string(a.Then[i].Value) != string(b.Then[i].Value) {
			return false
		}
	}
	return true
}

func TestManagerForgivesAHostThatComesBack(t *testing.T) {
	cfg := quietReconciler(DefaultManagerConfig(100, 4, []HostID{1, 2}))
	cfg.HostLossMs = 4 * cfg.TickMs
	h := newMgr(t, cfg)
	for _, alive := range [][]HostID{{1}, {1}, {1}, {1, 2}, {1}, {1}, {1}} {
		if reads := h.poll(alive...); len(reads) != 0 {
			t.Fatalf("alive %v at tick %d: the routes were read, but 2 was never missing for %d ms in a row", alive, h.m.ticks, cfg.HostLossMs)
		}
	}
	if reads := h.poll(1); len(reads) != 1 {
		t.Fatal("2 missing for four polls in a row is not lost")
	}
}

func TestManagerMovesNothingWithoutALiveHost(t *testing.T) {
	cfg := quietReconciler(DefaultManagerConfig(100, 4, []HostID{1, 2}))
	cfg.HostLossMs = cfg.TickMs
	h := newMgr(t, cfg)
	if reads := h.poll(); len(reads) != 0 {
		t.Fatal("every territory lost: the routes were read, but there is nowhere to move them")
	}
}

func TestManagerRetriesAfterAFailedPollOrRouteRead(t *testing.T) {
	cfg := quietReconciler(DefaultManagerConfig(100, 4, []HostID{1, 2}))
	cfg.HostLossMs = cfg.TickMs
	h := newMgr(t, cfg)
	h.tick(0)
	polls := h.takeCoord(rangeOf(AlivePrefix))
	h.step(CoordResult{ReqID: polls[0].ReqID, Outcome: OutcomeTimeout})
	reads := h.poll(1)
	if len(reads) != 1 {
		t.Fatal("no route read after a failed poll")
	}
	h.step(CoordResult{ReqID: reads[0].ReqID, Outcome: OutcomeFailed, Err: ErrUnavailable})
	if moves := h.takeCoord(isTxn); len(moves) != 0 {
		t.Fatal("moves planned from a failed route read")
	}
	if reads := h.poll(1); len(reads) != 1 {
		t.Fatal("no route read on the next poll")
	}
	// A result nobody asked for changes nothing.
	h.step(CoordResult{ReqID: 1 << 60, Resp: CoordResponse{KVs: []KV{routeKV(0, 2, 1, 1)}}})
	if len(h.pending) != 0 {
		t.Fatalf("an unknown result caused %+v", h.pending)
	}
}

func TestManagerSkipsARouteItDidNotWrite(t *testing.T) {
	cfg := quietReconciler(DefaultManagerConfig(100, 4, []HostID{1, 2}))
	cfg.HostLossMs = cfg.TickMs
	h := newMgr(t, cfg)
	reads := h.poll(1)
	h.step(CoordResult{ReqID: reads[0].ReqID, Resp: CoordResponse{KVs: []KV{
		{Key: RouteKey(0), Value: []byte("primary=two epoch=1"), ModRevision: 3},
		routeKV(1, 2, 4, 5)}}})
	facts := h.facts()
	if len(facts) != 1 || facts[0].Key != RouteKey(0) || facts[0].Reader != 100 || !strings.Contains(facts[0].Err.Error(), "primary") {
		t.Fatalf("facts %+v, want one about %s", facts, RouteKey(0))
	}
	moves := h.takeCoord(isTxn)
	if len(moves) != 1 || !sameCoordReq(moves[0].Req, PutIfVersion(RouteKey(1), EncodeRoute(1, 4), 5)) {
		t.Fatalf("moves %+v: the good route must still move", moves)
	}
}

func TestPlanReassignments(t *testing.T) {
	lost := func(id HostID) bool { return id == 9 }
	routes := []Route{{Subgraph: 0, Primary: 9, Epoch: 3, ModRevision: 7}, {Subgraph: 1, Primary: 1}, {Subgraph: 2, Primary: 9, Epoch: 1, ModRevision: 8}}
	got := planReassignments(routes, []HostID{1, 2}, lost)
	want := []Route{{Subgraph: 0, Primary: 2, Epoch: 3, ModRevision: 7}, {Subgraph: 2, Primary: 1, Epoch: 1, ModRevision: 8}}
	if !slices.Equal(got, want) {
		t.Fatalf("plan %+v, want %+v", got, want)
	}
	if got := planReassignments(routes, nil, lost); got != nil {
		t.Fatalf("no live territory: plan %+v", got)
	}
	// A territory that is live again keeps its subgraphs even if it was counted lost.
	if got := planReassignments(routes, []HostID{9, 1}, lost); len(got) != 0 {
		t.Fatalf("a live primary moved: %+v", got)
	}
}

func TestManagerCommitsRecoveriesWithItsClock(t *testing.T) {
	h := newMgr(t, quietReconciler(DefaultManagerConfig(100, 4, []HostID{1, 2})))
	h.nowMs = 987_654
	h.step(MessageIn{From: 2, Msg: &Message{Recovered: &Recovered{Territory: 2, Subgraph: 3, Epoch: 6}}})
	if len(h.pending) != 1 {
		t.Fatalf("effects %+v", h.pending)
	}
	s, ok := h.pending[0].(Send)
	if !ok || s.To != 2 || s.Msg.CommitRecovery == nil || *s.Msg.CommitRecovery != (CommitRecovery{Subgraph: 3, Epoch: 6, TimestampMs: 987_654}) {
		t.Fatalf("answer %+v", h.pending[0])
	}
}

// ---- reconciliation ----

func reconcilingCfg() ManagerConfig {
	cfg := DefaultManagerConfig(100, 4, []HostID{1})
	cfg.ReconcileMs = cfg.TickMs // a pass every tick
	cfg.StaleUploadMs = 4 * cfg.TickMs
	cfg.GraceMs = 8 * cfg.TickMs
	cfg.OrphanMs = 6 * cfg.TickMs
	return cfg
}

func recKV(sg SubgraphID, uuid string, state SnapshotState, rev int64) KV {
	r := SnapshotRecord{Subgraph: sg, UUID: uuid, State: state, LSN: 10, Territory: 1, Epoch: 1}
	if state >= SnapVerifying {
		r.Location, r.Checksum, r.Size = SnapshotBlobKey(sg, uuid), 1234, 56
	}
	return KV{Key: SnapshotKey(sg, uuid), Value: r.Encode(), ModRevision: rev}
}

// pass ticks (with a clock jump) and answers the pass's listings; it returns
// the record deletions and blob deletions the pass started.
func (h *mgr) pass(jumpMs int64, blobs []string, records []KV) (recDels []CoordCall, blobDels []BlobCall) {
	h.t.Helper()
	h.tick(jumpMs)
	h.takeCoord(rangeOf(AlivePrefix)) // never answered: the detector waits
	lists := h.takeBlob(func(r BlobRequest) bool { return r.Kind == BlobList })
	if len(lists) != 1 || lists[0].Req.Key != SnapshotBlobPrefix {
		h.t.Fatalf("tick %d: blob listings %+v, want one of %s", h.m.ticks, lists, SnapshotBlobPrefix)
	}
	h.step(BlobResult{ReqID: lists[0].ReqID, Resp: BlobResponse{Keys: blobs}})
	recs := h.takeCoord(rangeOf(SnapshotsPrefix))
	if len(recs) != 1 {
		h.t.Fatalf("tick %d: record listings %+v", h.m.ticks, recs)
	}
	h.step(CoordResult{ReqID: recs[0].ReqID, Resp: CoordResponse{KVs: records}})
	return h.takeCoord(isTxn), h.takeBlob(func(r BlobRequest) bool { return r.Kind == BlobDelete })
}

// finish answers every deletion of a pass as done, so the next pass can start.
func (h *mgr) finish(recDels []CoordCall, blobDels []BlobCall, succeeded bool) []BlobCall {
	for _, d := range recDels {
		h.step(CoordResult{ReqID: d.ReqID, Resp: CoordResponse{Succeeded: succeeded}})
	}
	after := h.takeBlob(func(r BlobRequest) bool { return r.Kind == BlobDelete })
	for _, d := range append(slices.Clone(blobDels), after...) {
		h.step(BlobResult{ReqID: d.ReqID})
	}
	return after
}

func TestReconcilerExpiresAStaleUpload(t *testing.T) {
	cfg := reconcilingCfg()
	h := newMgr(t, cfg)
	blob := SnapshotBlobKey(1, "u1")
	rec := recKV(1, "u1", SnapUploading, 7)
	for i := 0; i < 4; i++ { // seen for 0, 1, 2, 3 ticks: younger than StaleUploadMs
		if recDels, blobDels := h.pass(0, []string{blob}, []KV{rec}); len(recDels)+len(blobDels) != 0 {
			t.Fatalf("pass %d: an UPLOADING record %d ms old was expired (limit %d)", i, int64(i)*cfg.TickMs, cfg.StaleUploadMs)
		}
	}
	// The writer moves it on to VERIFYING: a new state, so its age restarts.
	rec = recKV(1, "u1", SnapVerifying, 8)
	for i := 0; i < 4; i++ {
		if recDels, blobDels := h.pass(0, []string{blob}, []KV{rec}); len(recDels)+len(blobDels) != 0 {
			t.Fatalf("pass %d after a change: expired", i)
		}
	}
	recDels, blobDels := h.pass(0, []string{blob}, []KV{rec})
	if len(recDels) != 1 || len(blobDels) != 0 {
		t.Fatalf("a VERIFYING record unchanged for StaleUploadMs: record deletes %+v, blob deletes %+v", recDels, blobDels)
	}
	want := CoordRequest{Kind: CoordTxn, Compares: []Compare{{Key: rec.Key, ModRevision: 8}}, Then: []TxnOp{{Kind: TxnDelete, Key: rec.Key}}}
	if !sameCoordReq(recDels[0].Req, want) {
		t.Fatalf("record delete %+v, want %+v (only if unchanged)", recDels[0].Req, want)
	}
	after := h.finish(recDels, nil, true)
	if len(after) != 1 || after[0].Req.Key != blob {
		t.Fatalf("after the record: blob deletes %+v, want %s", after, blob)
	}
}

func TestReconcilerKeepsABlobWhoseRecordChanged(t *testing.T) {
	cfg := reconcilingCfg()
	h := newMgr(t, cfg)
	rec := recKV(2, "u2", SnapUploading, 3)
	var recDels []CoordCall
	for i := 0; i < 10 && len(recDels) == 0; i++ {
		recDels, _ = h.pass(0, []string{SnapshotBlobKey(2, "u2")}, []KV{rec})
	}
	if len(recDels) != 1 {
		t.Fatal("a stale upload was never expired")
	}
	// The compare failed: the record changed meanwhile. Its blob stays.
	if after := h.finish(recDels, nil, false); len(after) != 0 {
		t.Fatalf("a blob deleted after its record's delete failed: %+v", after)
	}
}

func TestReconcilerWaitsTheGraceInTicksNotClockTime(t *testing.T) {
	cfg := reconcilingCfg()
	h := newMgr(t, cfg)
	blob := SnapshotBlobKey(3, "s1")
	rec := recKV(3, "s1", SnapSuperseded, 21)
	const hourMs = 3_600_000
	for i := int64(0); i < cfg.GraceMs/cfg.TickMs; i++ {
		// Every tick the clock also jumps an hour: the grace must not end early.
		if recDels, blobDels := h.pass(hourMs, []string{blob}, []KV{rec}); len(recDels)+len(blobDels) != 0 {
			t.Fatalf("a SUPERSEDED snapshot deleted after %d ticks (%d ms of clock), grace %d ms", i, h.nowMs, cfg.GraceMs)
		}
	}
	recDels, _ := h.pass(0, []string{blob}, []KV{rec})
	if len(recDels) != 1 || recDels[0].Req.Compares[0] != (Compare{Key: rec.Key, ModRevision: 21}) {
		t.Fatalf("after the grace: record deletes %+v", recDels)
	}
	if after := h.finish(recDels, nil, true); len(after) != 1 || after[0].Req.Key != blob {
		t.Fatalf("blob deletes %+v", after)
	}
}

func TestReconcilerNeverTouchesACommittedSnapshot(t *testing.T) {
	cfg := reconcilingCfg()
	h := newMgr(t, cfg)
	committed := recKV(0, "c1", SnapCommitted, 5)
	blobs := []string{SnapshotBlobKey(0, "c1")}
	for i := 0; i < 50; i++ {
		recDels, blobDels := h.pass(3_600_000, blobs, []KV{committed})
		if len(recDels)+len(blobDels) != 0 {
			t.Fatalf("pass %d: deletions %+v %+v of a COMMITTED snapshot", i, recDels, blobDels)
		}
	}
}

func TestReconcilerCollectsOrphansAndBoundsEachPass(t *testing.T) {
	cfg := reconcilingCfg()
	cfg.MaxDeletes = 2
	h := newMgr(t, cfg)
	orphan := SnapshotBlobKey(1, "gone")
	kept := SnapshotBlobKey(1, "c")
	records := []KV{recKV(1, "c", SnapCommitted, 4), recKV(1, "a", SnapSuperseded, 5), recKV(1, "b", SnapSuperseded, 6)}
	blobs := []string{SnapshotBlobKey(1, "a"), SnapshotBlobKey(1, "b"), kept, orphan}
	for i := int64(0); i < cfg.OrphanMs/cfg.TickMs; i++ {
		if recDels, blobDels := h.pass(0, blobs, records); len(recDels)+len(blobDels) != 0 {
			t.Fatalf("pass %d: deletions before any limit", i)
		}
	}
	// Orphan age reached, grace not yet: the orphan goes, alone.
	recDels, blobDels := h.pass(0, blobs, records)
	if len(recDels) != 0 || len(blobDels) != 1 || blobDels[0].Req.Key != orphan {
		t.Fatalf("orphan pass: %+v %+v", recDels, blobDels)
	}
	h.finish(recDels, blobDels, true)
	blobs = slices.DeleteFunc(blobs, func(k string) bool { return k == orphan })
	h.pass(0, blobs, records) // one more tick: both SUPERSEDED reach their grace on the next
	var deleted []string
	for i := 0; i < 3; i++ {
		recDels, blobDels := h.pass(0, blobs, records)
		if len(recDels)+len(blobDels) > cfg.MaxDeletes {
			t.Fatalf("a pass started %d deletions, bound %d", len(recDels)+len(blobDels), cfg.MaxDeletes)
		}
		for _, d := range recDels {
			deleted = append(deleted, d.Req.Then[0].Key)
		}
		after := h.finish(recDels, blobDels, true)
		for _, b := range after {
			if b.Req.Key == kept {
				t.Fatal("the COMMITTED blob was deleted")
			}
		}
		records = slices.DeleteFunc(records, func(kv KV) bool { return slices.Contains(deleted, kv.Key) })
	}
	if want := []string{SnapshotKey(1, "a"), SnapshotKey(1, "b")}; !slices.Equal(deleted, want) {
		t.Fatalf("deleted %v, want %v", deleted, want)
	}
}

func TestReconcilerKeepsTheBlobABadRecordNames(t *testing.T) {
	cfg := reconcilingCfg()
	h := newMgr(t, cfg)
	named, orphan := SnapshotBlobKey(1, "x"), SnapshotBlobKey(1, "y")
	bad := KV{Key: SnapshotKey(1, "x"), Value: []byte("state=MAYBE"), ModRevision: 9}
	var orphanDeleted bool
	for i := 0; i < 20; i++ {
		recDels, blobDels := h.pass(0, []string{named, orphan}, []KV{bad})
		if len(recDels) != 0 {
			t.Fatalf("pass %d: a record it cannot read was deleted: %+v", i, recDels)
		}
		for _, d := range blobDels {
			if d.Req.Key == named {
				t.Fatalf("pass %d: the blob an unreadable record names was deleted as an orphan", i)
			}
			orphanDeleted = true
		}
		h.finish(recDels, blobDels, true)
		if facts := h.facts(); len(facts) != 1 || facts[0].Key != bad.Key {
			t.Fatalf("pass %d: facts %+v, want one about %s", i, facts, bad.Key)
		}
	}
	if !orphanDeleted {
		t.Fatal("the true orphan beside the bad record was never collected")
	}
}

func TestReconcilerWaitsForItsDeletionsBeforeTheNextPass(t *testing.T) {
	cfg := reconcilingCfg()
	h := newMgr(t, cfg)
	var blobDels []BlobCall
	for i := 0; i < 10 && len(blobDels) == 0; i++ {
		_, blobDels = h.pass(0, []string{SnapshotBlobKey(0, "o")}, nil)
	}
	if len(blobDels) != 1 {
		t.Fatal("no orphan deletion")
	}
	h.tick(0)
	if lists := h.takeBlob(func(r BlobRequest) bool { return r.Kind == BlobList }); len(lists) != 0 {
		t.Fatal("a pass started while the last one's deletion was in flight")
	}
	h.step(BlobResult{ReqID: blobDels[0].ReqID, Outcome: OutcomeTimeout})
	h.tick(0)
	if lists := h.takeBlob(func(r BlobRequest) bool { return r.Kind == BlobList }); len(lists) != 1 {
		t.Fatal("no pass after the deletion was answered")
	}
}
