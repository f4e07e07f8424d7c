package sim

import (
	"testing"

	"territory/model"
	"territory/sim/invariants"
)

// flipTxn is the migrator's flip as the coordination store commits it: the
// route to T_dest at the next epoch and the record ROUTE_FLIPPED.
func flipTxn(sg model.SubgraphID, from, to model.HostID, srcEpoch uint64) model.CoordRequest {
	rec := model.MigrationRecord{Subgraph: sg, State: model.MigRouteFlipped, Epoch: 7, From: from, To: to, SnapshotLSN: 10, AckedLSN: 10, Attempts: 1}
	return model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{
		{Kind: model.TxnPut, Key: model.RouteKey(sg), Value: model.EncodeRoute(to, srcEpoch+1)},
		{Kind: model.TxnPut, Key: model.MigrationKey(sg), Value: rec.Encode()},
	}}
}

// primaryWorld is a test world whose only checker is at-most-one-primary
// (the others would judge the planted, incomplete history too).
func primaryWorld(t *testing.T) *World {
	w := testWorld(t)
	w.checkers = nil
	w.AddChecker(newPrimaryChecker(w.view))
	return w
}

func TestAtMostOnePrimaryAcceptsASourceThatStopsAtTheFlip(t *testing.T) {
	w := primaryWorld(t)
	w.publish(FactObserved{Host: 1, Fact: model.FactCommitted{Territory: 1, Subgraph: 3, LSN: 10, Epoch: 4}}) // before the flip
	w.publish(FactObserved{Host: 1, Fact: model.FactMigration{Territory: 1, Subgraph: 3, Epoch: 7, Step: model.MigStepHeld, LSN: 10}})
	w.publish(EntryCommitted{Stream: 3, LSN: 10, Epoch: 4})
	w.publish(CoordApplied{Req: flipTxn(3, 1, 2, 4), Resp: model.CoordResponse{Succeeded: true}})
	w.publish(EntryCommitted{Stream: 3, LSN: 11, Epoch: 6})
	w.publish(LogSent{Host: 2, Req: model.LogRequest{Kind: model.LogAppend, Stream: 3, Epoch: 6, LSN: 11}})
	w.publish(FactObserved{Host: 2, Fact: model.FactCommitted{Territory: 2, Subgraph: 3, LSN: 11, Epoch: 6}}) // T_dest
	w.publish(FactObserved{Host: 1, Fact: model.FactCommitted{Territory: 1, Subgraph: 3, LSN: 20, Epoch: 8}}) // T_src again, a later claim
	w.publish(FactObserved{Host: 1, Fact: model.FactCommitted{Territory: 1, Subgraph: 2, LSN: 5, Epoch: 1}})  // another subgraph
	if len(w.violations) > 0 {
		t.Fatalf("a legal history flagged: %v", w.violations)
	}
}

func TestAtMostOnePrimaryCatchesASourceAfterTheFlip(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   BusEvent
		want string
	}{
		{"ack", FactObserved{Host: 1, Fact: model.FactCommitted{Territory: 1, Subgraph: 3, LSN: 11, Epoch: 4}}, "acknowledged LSN 11"},
		{"append", LogSent{Host: 1, Req: model.LogRequest{Kind: model.LogAppend, Stream: 3, Epoch: 4, LSN: 11}}, "appended LSN 11"},
		{"beyond the hold", EntryCommitted{Stream: 3, LSN: 12, Epoch: 4}, "beyond the LSN 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := primaryWorld(t)
			w.publish(FactObserved{Host: 1, Fact: model.FactMigration{Territory: 1, Subgraph: 3, Epoch: 7, Step: model.MigStepHeld, LSN: 10}})
			w.publish(CoordApplied{Req: flipTxn(3, 1, 2, 4), Resp: model.CoordResponse{Succeeded: true}})
			w.publish(tc.ev)
			if !violated(w, invariants.AtMostOnePrimary, tc.want) {
				t.Fatalf("not caught: %v", w.violations)
			}
		})
	}
}

func TestMigrationTerminatesCatchesAStuckRecord(t *testing.T) {
	m := newMigStore(t)
	c := newMigrationChecker(m.w.view)
	m.w.AddChecker(c)
	m.to(model.MigSnapshotStreaming) // seen by the checker at t=0
	m.w.k.At((m.w.cfg.HealedMs()+migrationStuckMs+1_000)*1000, func() {})
	if err := m.w.k.Run((m.w.cfg.HealedMs() + migrationStuckMs + 1_000) * 1000); err != nil {
		t.Fatal(err)
	}
	vs := c.Final(m.w.view)
	if len(vs) != 1 || vs[0].Invariant != invariants.MigrationTerminates {
		t.Fatalf("a record stuck in SNAPSHOT_STREAMING was not caught: %v", vs)
	}
	// Deleted in time: nothing to report.
	m.apply(model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnDelete, Key: model.MigrationKey(2)}}})
	if vs := c.Final(m.w.view); len(vs) != 0 {
		t.Fatalf("a finished migration flagged: %v", vs)
	}
}
