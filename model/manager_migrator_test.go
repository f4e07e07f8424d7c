package model

import "testing"

func (h *mgr) sent(kind MigMsgKind) []*MigMsg {
	var got []*MigMsg
	for _, e := range h.pending {
		if s, ok := e.(Send); ok && s.Msg.Migration != nil && s.Msg.Migration.Kind == kind {
			got = append(got, s.Msg.Migration)
		}
	}
	return got
}

// oneCoord answers the single pending coordination call matching match.
func (h *mgr) oneCoord(what string, match func(CoordRequest) bool, resp CoordResponse) CoordRequest {
	h.t.Helper()
	calls := h.takeCoord(match)
	if len(calls) != 1 {
		h.t.Fatalf("%s: %d calls, want 1 (pending %v)", what, len(calls), h.pending)
	}
	h.step(CoordResult{ReqID: calls[0].ReqID, Resp: resp})
	return calls[0].Req
}

func writes(key string) func(CoordRequest) bool {
	return func(r CoordRequest) bool {
		return r.Kind == CoordTxn && len(r.Then) > 0 && r.Then[len(r.Then)-1].Key == key
	}
}

// The migrator takes a requested migration through the diagram: the flip
// is one transaction comparing the revision T_src holds its writes under and
// the record's, and a lost T_dest fails the migration.
func TestMigratorDrivesTheRecordAndFlipsByCAS(t *testing.T) {
	cfg := quietReconciler(DefaultManagerConfig(100, 4, []HostID{1, 2}))
	cfg.MigrationsOff = false
	h := newMgr(t, cfg)
	h.step(MessageIn{From: 9, Msg: &Message{Migration: &MigMsg{Kind: MigRequest, Subgraph: 3, To: 2}}})
	h.tick(0)
	h.oneCoord("records", rangeOf(MigrationsPrefix), CoordResponse{})
	h.oneCoord("alive", rangeOf(AlivePrefix), CoordResponse{KVs: aliveKVs(1, 2)})
	h.tick(0)
	h.oneCoord("alive", rangeOf(AlivePrefix), CoordResponse{KVs: aliveKVs(1, 2)})
	h.oneCoord("route", func(r CoordRequest) bool { return r.Kind == CoordGet && r.Key == RouteKey(3) },
		CoordResponse{Revision: 40, KVs: []KV{routeKV(3, 1, 6, 30)}})
	create := h.oneCoord("create", writes(MigrationKey(3)), CoordResponse{Succeeded: true, Revision: 41})
	if create.Compares[0].ModRevision != 0 {
		t.Fatalf("a migration is created only where none is: %+v", create)
	}
	h.oneCoord("to SNAPSHOT_STREAMING", writes(MigrationKey(3)), CoordResponse{Succeeded: true, Revision: 42})
	starts := h.sent(MigStart)
	if len(starts) != 1 || starts[0].Epoch != 40 || starts[0].To != 2 {
		t.Fatalf("MigStart to T_src with the migration epoch: %+v", starts)
	}
	h.step(MessageIn{From: 1, Msg: &Message{Migration: &MigMsg{Kind: MigReady, Subgraph: 3, Epoch: 40, From: 1, To: 2, SnapLSN: 17, Target: 19, RouteRev: 30, RouteEpoch: 6}}})
	flip := h.oneCoord("flip", writes(MigrationKey(3)), CoordResponse{Succeeded: true, Revision: 43})
	if len(flip.Compares) != 2 || flip.Compares[0] != (Compare{Key: RouteKey(3), ModRevision: 30}) || flip.Compares[1] != (Compare{Key: MigrationKey(3), ModRevision: 42}) ||
		flip.Then[0].Key != RouteKey(3) || string(flip.Then[0].Value) != string(EncodeRoute(2, 7)) {
		t.Fatalf("the flip must compare the held route revision and the record's, and name T_dest at epoch 7: %+v", flip)
	}
	if rec, err := ParseMigrationRecord(KV{Key: flip.Then[1].Key, Value: flip.Then[1].Value}); err != nil || rec.State != MigRouteFlipped || rec.SnapshotLSN != 17 {
		t.Fatalf("the flip records ROUTE_FLIPPED at snapshot_lsn 17: %+v %v", rec, err)
	}
	h.oneCoord("to CATCHUP_STREAMING", writes(MigrationKey(3)), CoordResponse{Succeeded: true, Revision: 44})
	if f := h.sent(MigFlipped); len(f) != 2 {
		t.Fatalf("MigFlipped to both: %+v", f)
	}
	// T_dest is lost: FAILED.
	for i := 0; i < int(cfg.HostLossMs/cfg.TickMs)+1; i++ {
		h.tick(0)
		for _, c := range h.takeCoord(rangeOf(AlivePrefix)) {
			h.step(CoordResult{ReqID: c.ReqID, Resp: CoordResponse{KVs: aliveKVs(1)}})
		}
		h.takeCoord(rangeOf(RoutesPrefix))
		if calls := h.takeCoord(writes(MigrationKey(3))); len(calls) == 1 {
			rec, _ := ParseMigrationRecord(KV{Key: MigrationKey(3), Value: calls[0].Req.Then[0].Value})
			if rec.State != MigFailed {
				t.Fatalf("a lost T_dest must fail the migration, got %s", rec.State)
			}
			return
		}
	}
	t.Fatal("T_dest lost for good and the migration never failed")
}
