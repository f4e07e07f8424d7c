package model

import "testing"

// sagaPair is a two-subgraph cluster with pre in subgraph 0 and post in 1.
type sagaPair struct {
	t         *testing.T
	pre, post *SubgraphState
	a, b      NeuronID // a in subgraph 0, b in subgraph 1
	uuid      uint64
}

func newSagaPair(t *testing.T) *sagaPair {
	pol := DefaultPolicy()
	pol.MaxOutDegree, pol.MaxInDegree = 2, 1
	sp := &sagaPair{t: t, pre: NewSubgraphState(0, 2, pol), post: NewSubgraphState(1, 2, pol)}
	for n := NeuronID(1); sp.a == 0 || sp.b == 0; n++ {
		if SubgraphOf(n, 2) == 0 && sp.a == 0 {
			sp.a = n
		} else if SubgraphOf(n, 2) == 1 && sp.b == 0 {
			sp.b = n
		}
	}
	sp.apply(sp.pre, Event{Type: EvCreateNeuron, Neuron: sp.a})
	sp.apply(sp.post, Event{Type: EvCreateNeuron, Neuron: sp.b})
	return sp
}

func (sp *sagaPair) apply(s *SubgraphState, ev Event) Result {
	sp.uuid++
	if ev.UUID.IsZero() {
		ev.UUID = EventUUID{Hi: 7, Lo: sp.uuid}
	}
	ev.LSN, ev.Subgraph = s.AppliedLSN+1, s.ID
	// Through the codec, as the log carries it.
	dec, err := DecodeEvent(ev.Encode())
	if err != nil {
		sp.t.Fatalf("%s: %v", ev.Type, err)
	}
	r, _ := s.Apply(&dec)
	return r
}

func (sp *sagaPair) step(s *SubgraphState, ty EventType, saga EventUUID, step uint64, body SagaBody) Result {
	body.ID = saga
	return sp.apply(s, Event{Type: ty, UUID: SagaStepUUID(saga, step), Pre: sp.a, Post: sp.b, Value: 5 * FixedOne, Saga: body})
}

func checkSnapshot(t *testing.T, s *SubgraphState) {
	t.Helper()
	got, err := DecodeSnapshot(EncodeSnapshot(s))
	if err != nil {
		t.Fatalf("subgraph %d: snapshot does not decode: %v", s.ID, err)
	}
	if got.Digest() != s.Digest() {
		t.Fatalf("subgraph %d: snapshot round trip changes the digest", s.ID)
	}
}

func TestSagaCommitFoldsOnBothSides(t *testing.T) {
	sp := newSagaPair(t)
	id := EventUUID{Hi: 9, Lo: 1}
	if r := sp.step(sp.pre, EvSagaReserve, id, SagaStepReserve, SagaBody{}); r.Status != StatusOK {
		t.Fatalf("reserve: %+v", r)
	}
	if n, _ := sp.pre.Neuron(sp.a); n.OutDegree != 1 {
		t.Fatalf("a reservation counts against the out-degree: %+v", n)
	}
	if _, ok := sp.pre.Synapse(SynapseKey{sp.a, sp.b}); ok {
		t.Fatal("the synapse exists before the commit")
	}
	checkSnapshot(t, sp.pre)
	if r := sp.step(sp.post, EvSagaAccept, id, SagaStepAccept, SagaBody{}); r.Status != StatusOK {
		t.Fatalf("accept: %+v", r)
	}
	// A retried accept is the same event: the dedup table answers it.
	if r := sp.step(sp.post, EvSagaAccept, id, SagaStepAccept, SagaBody{}); r.Status != StatusOK {
		t.Fatalf("retried accept: %+v", r)
	}
	if n, _ := sp.post.Neuron(sp.b); n.InDegree != 1 {
		t.Fatalf("a retried accept took a second slot: %+v", n)
	}
	if r := sp.step(sp.pre, EvSagaCommit, id, SagaStepCommit, SagaBody{}); !r.Exists {
		t.Fatalf("commit: %+v", r)
	}
	if w, ok := sp.pre.Synapse(SynapseKey{sp.a, sp.b}); !ok || w != 5*FixedOne {
		t.Fatalf("committed synapse: %d %v", w, ok)
	}
	if r, ok := sp.pre.Deduped(id); !ok || r.Status != StatusOK || !r.Exists {
		t.Fatalf("the client's answer under the saga id: %+v %v", r, ok)
	}
	// A late compensation folds to nothing.
	if r := sp.step(sp.pre, EvSagaCompensate, id, SagaStepCompensate, SagaBody{Reason: ReasonSagaTimeout}); r.Status != StatusOK {
		t.Fatalf("late compensate changed something: %+v", r)
	}
	if n, _ := sp.pre.Neuron(sp.a); n.OutDegree != 1 {
		t.Fatalf("late compensate released the slot: %+v", n)
	}
	sp.step(sp.post, EvSagaSettle, id, SagaStepSettleCommit, SagaBody{})
	if x, ok := sp.post.InSlot(id); !ok || !x.Committed {
		t.Fatalf("settled in-slot: %+v %v", x, ok)
	}
	checkSnapshot(t, sp.pre)
	checkSnapshot(t, sp.post)

	// Prune across subgraphs: pre drops it, post releases, pre closes.
	if r := sp.apply(sp.pre, Event{Type: EvPrune, Pre: sp.a, Post: sp.b}); r.Status != StatusOK {
		t.Fatalf("prune: %+v", r)
	}
	if k, ok := sp.pre.Unlink(id); !ok || k != (SynapseKey{sp.a, sp.b}) {
		t.Fatalf("unlink record: %v %v", k, ok)
	}
	checkSnapshot(t, sp.pre)
	if r := sp.step(sp.post, EvSagaSettle, id, SagaStepSettleRelease, SagaBody{Release: true}); !r.Exists {
		t.Fatalf("release: %+v", r)
	}
	if n, _ := sp.post.Neuron(sp.b); n.InDegree != 0 {
		t.Fatalf("released in-slot still counted: %+v", n)
	}
	sp.step(sp.pre, EvSagaUnlinked, id, SagaStepUnlinked, SagaBody{})
	if len(sp.pre.Unlinks()) != 0 || len(sp.post.InSlots()) != 0 || len(sp.pre.CrossSynapses()) != 0 {
		t.Fatal("records left after the unlink")
	}
}

func TestSagaRefusalsAndCompensation(t *testing.T) {
	sp := newSagaPair(t)
	first, second := EventUUID{Hi: 9, Lo: 1}, EventUUID{Hi: 9, Lo: 2}
	sp.step(sp.pre, EvSagaReserve, first, SagaStepReserve, SagaBody{})
	// The same synapse mid-saga: refused, and that is its final answer.
	if r := sp.step(sp.pre, EvSagaReserve, second, SagaStepReserve, SagaBody{}); r.Reason != ReasonSagaInProgress {
		t.Fatalf("second reserve: %+v", r)
	}
	if r, ok := sp.pre.Deduped(second); !ok || r.Reason != ReasonSagaInProgress {
		t.Fatalf("second saga's answer: %+v %v", r, ok)
	}
	// Post is full (max in-degree 1): take its one slot with another saga.
	other := EventUUID{Hi: 9, Lo: 3}
	sp.step(sp.post, EvSagaAccept, other, SagaStepAccept, SagaBody{})
	if r := sp.step(sp.post, EvSagaAccept, first, SagaStepAccept, SagaBody{}); r.Reason != ReasonMaxInDegree {
		t.Fatalf("accept past the in-degree: %+v", r)
	}
	if r := sp.step(sp.pre, EvSagaCompensate, first, SagaStepCompensate, SagaBody{Reason: ReasonMaxInDegree}); r.Status != StatusRejected {
		t.Fatalf("compensate: %+v", r)
	}
	if n, _ := sp.pre.Neuron(sp.a); n.OutDegree != 0 {
		t.Fatalf("compensation kept the slot: %+v", n)
	}
	if r, _ := sp.pre.Deduped(first); r.Status != StatusRejected || r.Reason != ReasonMaxInDegree {
		t.Fatalf("the client's answer: %+v", r)
	}
	// A late commit folds to nothing: the log's first decision stands.
	if r := sp.step(sp.pre, EvSagaCommit, first, SagaStepCommit, SagaBody{}); r.Exists {
		t.Fatalf("late commit: %+v", r)
	}
	if _, ok := sp.pre.Synapse(SynapseKey{sp.a, sp.b}); ok {
		t.Fatal("a compensated saga made its synapse")
	}
	checkSnapshot(t, sp.pre)
	checkSnapshot(t, sp.post)
}

func TestSnapshotRefusesSagaRecordsThatContradictDegrees(t *testing.T) {
	sp := newSagaPair(t)
	sp.step(sp.pre, EvSagaReserve, EventUUID{Hi: 9, Lo: 1}, SagaStepReserve, SagaBody{})
	n := sp.pre.neurons[sp.a]
	n.OutDegree = 0 // a leaked release
	sp.pre.neurons[sp.a] = n
	if _, err := DecodeSnapshot(EncodeSnapshot(sp.pre)); err == nil {
		t.Fatal("a snapshot whose reservation is not in the out-degree decodes")
	}
}
