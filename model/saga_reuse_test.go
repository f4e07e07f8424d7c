package model

import (
	"os"
	"testing"
)

// TestSagaIDReusedAfterItsDedupEntriesExpire is a known bug, found by the
// e2e TestImportPreSideKilled: a saga id (the client's event_uuid) that comes
// back after the dedup window (territoryd import's re-run sends every
// connect under the id of its first run) starts a second saga of the same
// id, and the first one's messages then act on the second: here a late
// duplicate of the first run's settle(release) releases the in-slot the
// second run committed, so pre holds a synapse that post does not count.
// (A variant: post's dedup still answers the second Accept from the first
// one's entry without taking a new in-slot.) It runs only with
// TERRITORY_KNOWN_BUGS=1 until sagas carry an incarnation (the reserve's
// logged stamp, in Accept and Settle and in the steps' ids) that post checks.
func TestSagaIDReusedAfterItsDedupEntriesExpire(t *testing.T) {
	if os.Getenv("TERRITORY_KNOWN_BUGS") == "" {
		t.Skip("known bug (issue 9): a saga id reused after DedupWindowMs; run with TERRITORY_KNOWN_BUGS=1")
	}
	sp := newSagaPair(t)
	id := EventUUID{Hi: 5, Lo: 5}
	ts := int64(0)
	step := func(s *SubgraphState, ty EventType, st uint64, body SagaBody) Result {
		body.ID = id
		return sp.apply(s, Event{Type: ty, UUID: SagaStepUUID(id, st), Pre: sp.a, Post: sp.b, Value: 5 * FixedOne, Saga: body, TimestampMs: ts})
	}
	// First run: reserved, accepted, timed out, released.
	step(sp.pre, EvSagaReserve, SagaStepReserve, SagaBody{})
	step(sp.post, EvSagaAccept, SagaStepAccept, SagaBody{})
	step(sp.pre, EvSagaCompensate, SagaStepCompensate, SagaBody{Reason: ReasonSagaTimeout})
	step(sp.post, EvSagaSettle, SagaStepSettleRelease, SagaBody{Release: true})
	// The window passes on both sides.
	ts = 3 * DedupWindowMs
	sp.apply(sp.pre, Event{Type: EvHeartbeat, TimestampMs: ts})
	sp.apply(sp.post, Event{Type: EvHeartbeat, TimestampMs: ts})
	// Second run under the same id: committed on both sides.
	step(sp.pre, EvSagaReserve, SagaStepReserve, SagaBody{})
	step(sp.post, EvSagaAccept, SagaStepAccept, SagaBody{})
	step(sp.pre, EvSagaCommit, SagaStepCommit, SagaBody{})
	step(sp.post, EvSagaSettle, SagaStepSettleCommit, SagaBody{})
	// A late duplicate of the first run's settle(release).
	step(sp.post, EvSagaSettle, SagaStepSettleRelease, SagaBody{Release: true})
	_, preHolds := sp.pre.Synapse(SynapseKey{sp.a, sp.b})
	post, _ := sp.post.Neuron(sp.b)
	if preHolds != (post.InDegree == 1) {
		t.Fatalf("pre holds the synapse: %v; post's in-degree %d", preHolds, post.InDegree)
	}
}
