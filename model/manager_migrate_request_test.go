package model

import (
	"slices"
	"strings"
	"testing"
)

// takeReplies removes and returns the MigRequestReplies sent to host to.
func (h *mgr) takeReplies(to HostID) []MigMsg {
	var got []MigMsg
	h.pending = slices.DeleteFunc(h.pending, func(e Effect) bool {
		s, ok := e.(Send)
		if ok && s.To == to && s.Msg.Migration != nil && s.Msg.Migration.Kind == MigRequestReply {
			got = append(got, *s.Msg.Migration)
			return true
		}
		return false
	})
	return got
}

func (h *mgr) ask(by HostID, sg SubgraphID, to HostID) {
	h.step(MessageIn{From: by, Msg: &Message{Migration: &MigMsg{Kind: MigRequest, Subgraph: sg, To: to}}})
}

func requestMgr(t *testing.T) *mgr {
	cfg := quietReconciler(DefaultManagerConfig(100, 4, []HostID{1, 2}))
	cfg.MigrationsOff = false
	h := newMgr(t, cfg)
	h.tick(0)
	h.oneCoord("records", rangeOf(MigrationsPrefix), CoordResponse{})
	h.oneCoord("alive", rangeOf(AlivePrefix), CoordResponse{KVs: aliveKVs(1, 2)})
	return h
}

func oneReply(t *testing.T, got []MigMsg, want MigRefusal, detail string) MigMsg {
	t.Helper()
	if len(got) != 1 || got[0].Refusal != want || !strings.Contains(got[0].Detail, detail) {
		t.Fatalf("want one answer %s (detail with %q), got %+v", want, detail, got)
	}
	return got[0]
}

// A request is answered once its record is written, with the migration's
// epoch; a repeat gets the same answer; a bad or conflicting request is
// refused with the reason, and a start whose write had an unknown outcome
// is accepted when the record it tried is there.
func TestMigrationRequestsAreAnsweredOnce(t *testing.T) {
	h := requestMgr(t)
	h.ask(7001, 9, 2)
	oneReply(t, h.takeReplies(7001), MigRefusedUnknownSubgraph, "0..3")
	h.ask(7002, 1, 5)
	oneReply(t, h.takeReplies(7002), MigRefusedUnknownTerritory, "territory 5")

	// Subgraph 1 lives on 2 already.
	h.ask(7003, 1, 2)
	h.tick(0)
	h.oneCoord("alive", rangeOf(AlivePrefix), CoordResponse{KVs: aliveKVs(1, 2)})
	h.oneCoord("route", func(r CoordRequest) bool { return r.Kind == CoordGet && r.Key == RouteKey(1) },
		CoordResponse{Revision: 40, KVs: []KV{routeKV(1, 2, 3, 30)}})
	oneReply(t, h.takeReplies(7003), MigRefusedAlreadyThere, "served by 2")

	// Subgraph 3 moves from 1 to 2; the create's outcome is unknown at first.
	h.ask(7004, 3, 2)
	h.tick(0)
	h.oneCoord("alive", rangeOf(AlivePrefix), CoordResponse{KVs: aliveKVs(1, 2)})
	h.oneCoord("route", func(r CoordRequest) bool { return r.Kind == CoordGet && r.Key == RouteKey(3) },
		CoordResponse{Revision: 50, KVs: []KV{routeKV(3, 1, 6, 31)}})
	calls := h.takeCoord(writes(MigrationKey(3)))
	if len(calls) != 1 {
		t.Fatalf("create: %d calls", len(calls))
	}
	h.ask(7004, 3, 2) // a repeat while the write is in flight: ignored
	h.step(CoordResult{ReqID: calls[0].ReqID, Outcome: OutcomeTimeout})
	if got := h.takeReplies(7004); len(got) != 0 {
		t.Fatalf("answered before the record is known: %+v", got)
	}
	// The records are read again: the create landed.
	rec := MigrationRecord{Subgraph: 3, State: MigPending, Epoch: 50, From: 1, To: 2, Attempts: 1, SinceMs: 1}
	h.tick(0)
	h.oneCoord("records", rangeOf(MigrationsPrefix), CoordResponse{KVs: []KV{{Key: MigrationKey(3), Value: rec.Encode(), ModRevision: 51}}})
	h.oneCoord("alive", rangeOf(AlivePrefix), CoordResponse{KVs: aliveKVs(1, 2)})
	h.tick(0)
	h.oneCoord("alive", rangeOf(AlivePrefix), CoordResponse{KVs: aliveKVs(1, 2)})
	h.oneCoord("to SNAPSHOT_STREAMING", writes(MigrationKey(3)), CoordResponse{Succeeded: true, Revision: 52})
	h.tick(0)
	a := oneReply(t, h.takeReplies(7004), 0, "")
	if a.Epoch != 50 || a.From != 1 || a.To != 2 {
		t.Fatalf("accepted: %+v", a)
	}
	h.ask(7004, 3, 2)
	if again := oneReply(t, h.takeReplies(7004), 0, ""); again.Epoch != a.Epoch || again.From != a.From || again.To != a.To {
		t.Fatalf("a repeat got %+v, the first answer was %+v", again, a)
	}
	// Another requester while it runs: refused, with the record's phase.
	h.ask(7005, 3, 2)
	oneReply(t, h.takeReplies(7005), MigRefusedRunning, "SNAPSHOT_STREAMING, epoch 50, 1 -> 2")
}
