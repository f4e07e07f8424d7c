package model

import "testing"

// retryMgr is a manager of territories 1..3 that loads one FAILED record of
// subgraph 0 (from 1 to 2, attempt 1) and ticks until the retry reads the
// route, with alive answering every alive poll; the retry waits longer than
// the host-loss timeout, so a territory missing from alive is lost by then.
func retryMgr(t *testing.T, alive ...HostID) *mgr {
	t.Helper()
	cfg := quietReconciler(DefaultManagerConfig(100, 4, []HostID{1, 2, 3}))
	cfg.MigrationsOff = false
	cfg.MigRetryBaseMs = cfg.HostLossMs + 5*cfg.TickMs // a missing territory is lost by the retry
	cfg.MigRetryCapMs = 2 * cfg.MigRetryBaseMs
	h := newMgr(t, cfg)
	failed := MigrationRecord{Subgraph: 0, State: MigFailed, Epoch: 40, From: 1, To: 2, SnapshotLSN: 9, AckedLSN: 12, TargetLSN: 14, Attempts: 1, SinceMs: 1_000}
	h.tick(0)
	h.oneCoord("records", rangeOf(MigrationsPrefix), CoordResponse{KVs: []KV{{Key: MigrationKey(0), Value: failed.Encode(), ModRevision: 50}}})
	for i := 0; i < 100; i++ {
		for _, c := range h.takeCoord(rangeOf(AlivePrefix)) {
			h.step(CoordResult{ReqID: c.ReqID, Resp: CoordResponse{KVs: aliveKVs(alive...)}})
		}
		h.takeCoord(rangeOf(RoutesPrefix))
		for _, e := range h.pending {
			if c, ok := e.(CoordCall); ok && c.Req.Kind == CoordGet && c.Req.Key == RouteKey(0) {
				return h
			}
		}
		h.tick(0)
	}
	t.Fatal("the FAILED migration was never retried")
	return nil
}

func (h *mgr) answerRoute(primary HostID) CoordRequest {
	h.t.Helper()
	return h.oneCoord("route", func(r CoordRequest) bool { return r.Kind == CoordGet && r.Key == RouteKey(0) },
		CoordResponse{Revision: 70, KVs: []KV{routeKV(0, primary, 8, 60)}})
}

func retried(t *testing.T, h *mgr) MigrationRecord {
	t.Helper()
	calls := h.takeCoord(writes(MigrationKey(0)))
	if len(calls) != 1 {
		t.Fatalf("%d record writes after the retry's route read, want 1 (pending %v)", len(calls), h.pending)
	}
	req := calls[0].Req
	if len(req.Compares) != 1 || req.Compares[0] != (Compare{Key: MigrationKey(0), ModRevision: 50}) {
		t.Fatalf("the retry must compare the FAILED record's revision: %+v", req)
	}
	op := req.Then[len(req.Then)-1]
	if op.Kind == TxnDelete {
		return MigrationRecord{}
	}
	rec, err := ParseMigrationRecord(KV{Key: op.Key, Value: op.Value})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// A migration that failed after its flip landed, with T_dest alive and
// serving (it restarted and adopted the subgraph), is done: the retry
// removes the record and never moves the subgraph away from T_dest. (CI
// found the retry drawing a new destination from the route's primary,
// which moved the subgraph back to T_src.)
func TestMigrationRetryAfterTheFlipLeavesTheSubgraphAtTDest(t *testing.T) {
	h := retryMgr(t, 1, 2, 3)
	h.answerRoute(2)
	if rec := retried(t, h); rec.State != 0 {
		t.Fatalf("the route names T_dest 2: the FAILED record must be removed, got %+v", rec)
	}
}

// A retry before the flip keeps the record's T_dest while it is alive, with
// the attempt counted and the epoch bumped.
func TestMigrationRetryKeepsItsDestination(t *testing.T) {
	h := retryMgr(t, 1, 2, 3)
	h.answerRoute(1)
	rec := retried(t, h)
	if rec.State != MigPending || rec.From != 1 || rec.To != 2 || rec.Attempts != 2 || rec.Epoch <= 40 {
		t.Fatalf("want PENDING 1 -> 2, attempt 2, epoch > 40; got %+v", rec)
	}
}

// A retry whose T_dest is lost draws another live destination.
func TestMigrationRetryRedrawsALostDestination(t *testing.T) {
	h := retryMgr(t, 1, 3)
	h.answerRoute(1)
	rec := retried(t, h)
	if rec.State != MigPending || rec.From != 1 || rec.To != 3 {
		t.Fatalf("T_dest 2 is lost: want PENDING 1 -> 3, got %+v", rec)
	}
}
