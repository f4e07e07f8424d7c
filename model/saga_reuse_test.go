package model

import (
	"os"
	"testing"
)

// A client's event_uuid back after the dedup window (territoryd import's
// re-run sends every connect under the id of its first run; the e2e
// TestImportPreSideKilled found it) starts a second saga. The two must
// not be confused: each Reserve names its saga by its LSN (SagaInstanceID),
// so the first saga's late messages find nothing of the second.

// reuseRun is one run of a connect under client id, steps taken as the
// driver takes them: Reserve under the client's id, the rest under the
// saga's instance id.
type reuseRun struct {
	sp     *sagaPair
	client EventUUID
	saga   EventUUID
	ts     *int64
}

func (r *reuseRun) reserve() Result {
	sp := r.sp
	res := sp.apply(sp.pre, Event{Type: EvSagaReserve, UUID: SagaStepUUID(r.client, SagaStepReserve), Pre: sp.a, Post: sp.b,
		Value: 5 * FixedOne, Saga: SagaBody{ID: r.client, Instance: true}, TimestampMs: *r.ts})
	if id, _, ok := sp.pre.OpenSaga(r.client); ok {
		r.saga = id
	}
	return res
}

func (r *reuseRun) step(s *SubgraphState, ty EventType, st uint64, body SagaBody) Result {
	sp := r.sp
	body.ID = r.saga
	return sp.apply(s, Event{Type: ty, UUID: SagaStepUUID(r.saga, st), Pre: sp.a, Post: sp.b, Saga: body, TimestampMs: *r.ts})
}

func (r *reuseRun) windowPasses() {
	*r.ts += 3 * DedupWindowMs
	r.sp.apply(r.sp.pre, Event{Type: EvHeartbeat, TimestampMs: *r.ts})
	r.sp.apply(r.sp.post, Event{Type: EvHeartbeat, TimestampMs: *r.ts})
}

func checkBothSides(t *testing.T, sp *sagaPair, wantHeld bool) {
	t.Helper()
	_, preHolds := sp.pre.Synapse(SynapseKey{sp.a, sp.b})
	post, _ := sp.post.Neuron(sp.b)
	if preHolds != wantHeld || post.InDegree != map[bool]uint32{true: 1}[wantHeld] {
		t.Fatalf("pre holds the synapse: %v (want %v); post's in-degree %d", preHolds, wantHeld, post.InDegree)
	}
	checkSnapshot(t, sp.pre)
	checkSnapshot(t, sp.post)
}

// TestSagaIDReusedAfterItsDedupEntriesExpire: a late settle(release) of the
// first run does not release the in-slot the second run committed.
func TestSagaIDReusedAfterItsDedupEntriesExpire(t *testing.T) {
	sp := newSagaPair(t)
	ts := int64(0)
	first := &reuseRun{sp: sp, client: EventUUID{Hi: 5, Lo: 5}, ts: &ts}
	first.reserve()
	first.step(sp.post, EvSagaAccept, SagaStepAccept, SagaBody{})
	first.step(sp.pre, EvSagaCompensate, SagaStepCompensate, SagaBody{Reason: ReasonSagaTimeout})
	first.step(sp.post, EvSagaSettle, SagaStepSettleRelease, SagaBody{Release: true})
	first.windowPasses()
	second := &reuseRun{sp: sp, client: first.client, ts: &ts}
	if r := second.reserve(); r.Status != StatusOK || second.saga == first.saga {
		t.Fatalf("second run's reserve: %+v, saga %s (first %s)", r, second.saga, first.saga)
	}
	second.step(sp.post, EvSagaAccept, SagaStepAccept, SagaBody{})
	second.step(sp.pre, EvSagaCommit, SagaStepCommit, SagaBody{})
	second.step(sp.post, EvSagaSettle, SagaStepSettleCommit, SagaBody{})
	if r, ok := sp.pre.Deduped(first.client); !ok || r.Status != StatusOK {
		t.Fatalf("the client's answer under its id: %+v %v", r, ok)
	}
	// A late duplicate of the first run's settle(release).
	first.step(sp.post, EvSagaSettle, SagaStepSettleRelease, SagaBody{Release: true})
	checkBothSides(t, sp, true)
}

// TestSagaReuseTakesItsOwnInSlot: post answers the second run's Accept by
// taking an in-slot, not from the first run's dedup entry (still live at
// post, whose clock has not moved, while pre's window has passed), and the
// first run's late Accept and settle do not touch it.
func TestSagaReuseTakesItsOwnInSlot(t *testing.T) {
	sp := newSagaPair(t)
	ts := int64(0)
	first := &reuseRun{sp: sp, client: EventUUID{Hi: 6, Lo: 6}, ts: &ts}
	first.reserve()
	first.step(sp.post, EvSagaAccept, SagaStepAccept, SagaBody{})
	first.step(sp.pre, EvSagaCompensate, SagaStepCompensate, SagaBody{Reason: ReasonSagaTimeout})
	first.step(sp.post, EvSagaSettle, SagaStepSettleRelease, SagaBody{Release: true})
	ts += 3 * DedupWindowMs
	sp.apply(sp.pre, Event{Type: EvHeartbeat, TimestampMs: ts})
	second := &reuseRun{sp: sp, client: first.client, ts: &ts}
	second.reserve()
	second.step(sp.post, EvSagaAccept, SagaStepAccept, SagaBody{})
	if _, ok := sp.post.InSlot(second.saga); !ok {
		t.Fatal("post answered the second run's Accept without an in-slot")
	}
	first.step(sp.post, EvSagaAccept, SagaStepAccept, SagaBody{})
	first.step(sp.post, EvSagaSettle, SagaStepSettleRelease, SagaBody{Release: true})
	second.step(sp.pre, EvSagaCommit, SagaStepCommit, SagaBody{})
	second.step(sp.post, EvSagaSettle, SagaStepSettleCommit, SagaBody{})
	checkBothSides(t, sp, true)
}

// TestSagaClientIDHasOneSagaAtATime: a second Reserve under a client id
// whose saga is still open is refused as in progress (a client reusing an
// id for another synapse), and the open saga goes on.
func TestSagaClientIDHasOneSagaAtATime(t *testing.T) {
	sp := newSagaPair(t)
	ts := int64(0)
	first := &reuseRun{sp: sp, client: EventUUID{Hi: 7, Lo: 7}, ts: &ts}
	first.reserve()
	first.windowPasses() // the Reserve step's own dedup entry is gone
	other := &reuseRun{sp: sp, client: first.client, ts: &ts}
	if r := other.reserve(); r.Status != StatusRejected || r.Reason != ReasonSagaInProgress {
		t.Fatalf("second reserve under an open client id: %+v", r)
	}
	if other.saga != first.saga {
		t.Fatalf("the open saga changed: %s, was %s", other.saga, first.saga)
	}
}

// TestLegacySagaLogStillFolds: a version 3 snapshot (sagas named by the
// client's id) with an open reservation and an in-slot decodes, and the
// old log's next steps (named by the client's id, no instance flag) still
// commit it on both sides; re-encoded as version 4 it is the same state.
func TestLegacySagaLogStillFolds(t *testing.T) {
	load := func(name string) *SubgraphState {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if data[4] != snapshotVersionDedupTime {
			t.Fatalf("%s is version %d", name, data[4])
		}
		s, err := DecodeSnapshot(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return s
	}
	sp := newSagaPair(t)
	sp.pre, sp.post = load("snapshot-v3-pre.bin"), load("snapshot-v3-post.bin")
	client := EventUUID{Hi: 5, Lo: 5}
	id, o, ok := sp.pre.OpenSaga(client)
	if !ok || id != client || o.Client != client {
		t.Fatalf("the legacy reservation: %s %+v %v", id, o, ok)
	}
	sp.step(sp.pre, EvSagaCommit, client, SagaStepCommit, SagaBody{})
	sp.step(sp.post, EvSagaSettle, client, SagaStepSettleCommit, SagaBody{})
	if r, ok := sp.pre.Deduped(client); !ok || r.Status != StatusOK {
		t.Fatalf("the client's answer: %+v %v", r, ok)
	}
	checkBothSides(t, sp, true)
}

// TestSagaInstanceFlagCodec: the instance flag round-trips on a Reserve and
// is corrupt on any other step.
func TestSagaInstanceFlagCodec(t *testing.T) {
	ev := Event{Type: EvSagaReserve, LSN: 9, UUID: EventUUID{Hi: 1, Lo: 2}, Pre: 3, Post: 4, Saga: SagaBody{ID: EventUUID{Hi: 5, Lo: 6}, Instance: true}}
	got, err := DecodeEvent(ev.Encode())
	if err != nil || got != ev || got.SagaID() != SagaInstanceID(ev.Saga.ID, 9) || got.SagaID() == ev.Saga.ID {
		t.Fatalf("decoded %+v, %v; saga %s", got, err, got.SagaID())
	}
	ev.Type = EvSagaCommit
	if _, err := DecodeEvent(ev.Encode()); err == nil {
		t.Fatal("a commit with the instance flag decoded")
	}
}
