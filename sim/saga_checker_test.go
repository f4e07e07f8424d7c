package sim

import (
	"fmt"
	"strings"
	"testing"

	"territory/model"
	"territory/sim/invariants"
)

// sagaFolds is a hand-made pair of reference folds, pre's and post's, and a
// way to publish their entries to a test world's checkers.
type sagaFolds struct {
	t         *testing.T
	w         *World
	pre, post *model.SubgraphState
	a, b      model.NeuronID
	n         uint64
}

func newSagaFolds(t *testing.T) *sagaFolds {
	w := testWorld(t)
	count := w.cfg.Subgraphs
	f := &sagaFolds{t: t, w: w}
	for n := model.NeuronID(1); f.a == 0 || f.b == 0; n++ {
		switch model.SubgraphOf(n, count) {
		case 0:
			if f.a == 0 {
				f.a = n
			}
		case 1:
			if f.b == 0 {
				f.b = n
			}
		}
	}
	f.pre = model.NewSubgraphState(0, count, w.cfg.Policy)
	f.post = model.NewSubgraphState(1, count, w.cfg.Policy)
	f.fold(f.pre, model.Event{Type: model.EvCreateNeuron, Neuron: f.a})
	f.fold(f.post, model.Event{Type: model.EvCreateNeuron, Neuron: f.b})
	return f
}

// fold applies ev to s and publishes it as the fold checker would; result,
// if set, replaces the fold's answer (a planted wrong step).
func (f *sagaFolds) fold(s *model.SubgraphState, ev model.Event, result ...model.Result) {
	f.n++
	if ev.UUID.IsZero() {
		ev.UUID = model.EventUUID{Hi: 5, Lo: f.n}
	}
	ev.LSN, ev.Subgraph = s.AppliedLSN+1, s.ID
	r, applied := s.Apply(&ev)
	if len(result) > 0 {
		r = result[0]
	}
	f.w.publish(EntryFolded{Entry: EntryCommitted{Stream: uint32(s.ID), LSN: ev.LSN}, Subgraph: s.ID, Event: ev, Result: r, Applied: applied, Fold: s})
}

func (f *sagaFolds) step(s *model.SubgraphState, ty model.EventType, saga model.EventUUID, step uint64, body model.SagaBody, result ...model.Result) {
	body.ID = saga
	f.fold(s, model.Event{Type: ty, UUID: model.SagaStepUUID(saga, step), Pre: f.a, Post: f.b, Value: 3, Saga: body}, result...)
}

// final runs the saga checker's end-of-run judgement alone (the world did
// not run, so the others would flag it).
func final(w *World) {
	var c *sagaChecker
	for _, x := range w.checkers {
		if sc, ok := x.(*sagaChecker); ok {
			c = sc
		}
	}
	w.violations = append(w.violations, c.Final(&View{w})...)
}

// answer delivers a client's final answer to the saga checker alone.
func answer(w *World, done model.FactOpDone) {
	for _, x := range w.checkers {
		if sc, ok := x.(*sagaChecker); ok {
			sc.Observe(&View{w}, OpReturned{Client: 1, Done: done})
		}
	}
}

var sagaID = model.EventUUID{Hi: 3, Lo: 1}

const (
	stReserve       = model.SagaStepReserve
	stAccept        = model.SagaStepAccept
	stCommit        = model.SagaStepCommit
	stCompensate    = model.SagaStepCompensate
	stSettleCommit  = model.SagaStepSettleCommit
	stSettleRelease = model.SagaStepSettleRelease
)

func TestSagaAtomicCatchesACommitWithoutAnInSlot(t *testing.T) {
	f := newSagaFolds(t)
	f.step(f.pre, model.EvSagaReserve, sagaID, stReserve, model.SagaBody{})
	f.step(f.pre, model.EvSagaCommit, sagaID, stCommit, model.SagaBody{}) // planted: post never accepted
	if !violated(f.w, invariants.SagaAtomic, "no in-slot at post") {
		t.Fatalf("a commit with no in-slot not caught: %v", f.w.violations)
	}
}

func TestSagaAtomicPassesAWholeSagaAndCatchesAReleaseOfAHeldSynapse(t *testing.T) {
	f := newSagaFolds(t)
	f.step(f.pre, model.EvSagaReserve, sagaID, stReserve, model.SagaBody{})
	f.step(f.post, model.EvSagaAccept, sagaID, stAccept, model.SagaBody{})
	f.step(f.pre, model.EvSagaCommit, sagaID, stCommit, model.SagaBody{})
	f.step(f.post, model.EvSagaSettle, sagaID, stSettleCommit, model.SagaBody{})
	final(f.w)
	if len(f.w.violations) != 0 {
		t.Fatalf("a clean saga flagged: %v", f.w.violations)
	}
	f.step(f.post, model.EvSagaSettle, sagaID, stSettleRelease, model.SagaBody{Release: true}) // planted: pre still holds it
	if !violated(f.w, invariants.SagaAtomic, "while pre holds the synapse") {
		t.Fatalf("post releasing a held synapse not caught: %v", f.w.violations)
	}
	f.w.violations = nil
	final(f.w)
	if !violated(f.w, invariants.SagaAtomic, "post holds no in-slot") {
		t.Fatalf("the final cross-check misses a synapse without its in-slot: %v", f.w.violations)
	}
}

func TestSagaAtomicCatchesAnAnswerThatIsNotPresLog(t *testing.T) {
	f := newSagaFolds(t)
	f.step(f.pre, model.EvSagaReserve, sagaID, stReserve, model.SagaBody{})
	f.step(f.post, model.EvSagaAccept, sagaID, stAccept, model.SagaBody{}, model.Result{Status: model.StatusRejected, Reason: model.ReasonMaxInDegree})
	f.step(f.pre, model.EvSagaCompensate, sagaID, stCompensate, model.SagaBody{Reason: model.ReasonMaxInDegree})
	req := model.Request{ID: sagaID, Op: model.OpConnect, Pre: f.a, Post: f.b, Value: 3}
	answer(f.w, model.FactOpDone{Request: req, Result: model.Result{Status: model.StatusRejected, Reason: model.ReasonMaxInDegree}, Tries: 1})
	if len(f.w.violations) != 0 {
		t.Fatalf("the logged answer flagged: %v", f.w.violations)
	}
	answer(f.w, model.FactOpDone{Request: req, Result: model.Result{Status: model.StatusOK, Value: 3, Exists: true}, Tries: 1}) // planted
	if !violated(f.w, invariants.SagaAtomic, "pre's log says") {
		t.Fatalf("an answer pre's log does not hold not caught: %v", f.w.violations)
	}
}

func TestSagaCompensateCatchesACommittedSagaCompensated(t *testing.T) {
	f := newSagaFolds(t)
	f.step(f.pre, model.EvSagaReserve, sagaID, stReserve, model.SagaBody{})
	f.step(f.post, model.EvSagaAccept, sagaID, stAccept, model.SagaBody{})
	f.step(f.pre, model.EvSagaCommit, sagaID, stCommit, model.SagaBody{})
	// planted: the fold reports a compensation that released the slot
	f.step(f.pre, model.EvSagaCompensate, sagaID, stCompensate, model.SagaBody{Reason: model.ReasonSagaTimeout}, model.Result{Status: model.StatusRejected})
	if !violated(f.w, invariants.SagaCompensate, "both committed and compensated") {
		t.Fatalf("a committed saga compensated not caught: %v", f.w.violations)
	}
}

func TestSagaTerminatesCatchesAReservationLeftOpen(t *testing.T) {
	f := newSagaFolds(t)
	f.step(f.pre, model.EvSagaReserve, sagaID, stReserve, model.SagaBody{})
	final(f.w)
	if violated(f.w, invariants.SagaTerminates, "") {
		t.Fatalf("a fresh reservation flagged: %v", f.w.violations)
	}
	f.w.violations = nil
	bound := 2*f.w.cfg.SagaTimeoutMs() + f.w.cfg.LivenessMs
	f.w.k.At((bound+1_000)*1000, func() {})
	if err := f.w.k.Run((bound + 1_000) * 1000); err != nil {
		t.Fatal(err)
	}
	final(f.w) // planted: nobody ever decided it
	if !violated(f.w, invariants.SagaTerminates, "reservation open") {
		t.Fatalf("a reservation open past the bound not caught: %v", f.w.violations)
	}
}

func TestSagaTimeoutCatchesATimeoutNoFaultExplains(t *testing.T) {
	f := newSagaFolds(t)
	quiet := (f.w.cfg.LivenessMs + 1_000) * 1000 // past the liveness bound from the start, with no fault
	f.w.k.At(quiet, func() {})
	if err := f.w.k.Run(quiet); err != nil {
		t.Fatal(err)
	}
	f.step(f.pre, model.EvSagaReserve, sagaID, stReserve, model.SagaBody{})
	f.step(f.pre, model.EvSagaCompensate, sagaID, stCompensate, model.SagaBody{Reason: model.ReasonSagaTimeout}) // planted: nothing was wrong
	if !violated(f.w, invariants.SagaTimeout, "timed out with no fault") {
		t.Fatalf("a timeout with no fault not caught: %v", f.w.violations)
	}
	// With a fault active, the same timeout is explained.
	f.w.violations = nil
	other := model.EventUUID{Hi: 3, Lo: 2}
	f.w.publish(FaultChanged{Started: true})
	f.step(f.pre, model.EvSagaReserve, other, stReserve, model.SagaBody{})
	f.step(f.pre, model.EvSagaCompensate, other, stCompensate, model.SagaBody{Reason: model.ReasonSagaTimeout})
	if violated(f.w, invariants.SagaTimeout, "") {
		t.Fatalf("a timeout during a fault flagged: %v", f.w.violations)
	}
}

// TestSagaNoLeakCatchesALeakedReservationAndInSlot: saga-no-leak passes a
// committed saga and a compensated one whose slots were all given back, and
// catches a reservation at pre, or an in-slot at post, whose record is gone
// while its degree is still held (model.PlantSagaLeak: the bookkeeping of a
// compensation or release lost).
func TestSagaNoLeakCatchesALeakedReservationAndInSlot(t *testing.T) {
	other := model.EventUUID{Hi: 3, Lo: 2}
	var c model.NeuronID // a second post neuron, in post's subgraph
	clean := func() *sagaFolds {
		f := newSagaFolds(t)
		for c = f.b + 1; model.SubgraphOf(c, f.w.cfg.Subgraphs) != 1; c++ {
		}
		f.step(f.pre, model.EvSagaReserve, sagaID, stReserve, model.SagaBody{})
		f.step(f.post, model.EvSagaAccept, sagaID, stAccept, model.SagaBody{})
		f.step(f.pre, model.EvSagaCommit, sagaID, stCommit, model.SagaBody{})
		f.step(f.post, model.EvSagaSettle, sagaID, stSettleCommit, model.SagaBody{})
		// A second saga, of a -> c, compensated and released.
		f.fold(f.post, model.Event{Type: model.EvCreateNeuron, Neuron: c})
		body := model.SagaBody{ID: other}
		for _, s := range []struct {
			st   *model.SubgraphState
			ty   model.EventType
			step uint64
			body model.SagaBody
		}{
			{f.pre, model.EvSagaReserve, stReserve, body},
			{f.post, model.EvSagaAccept, stAccept, body},
			{f.pre, model.EvSagaCompensate, stCompensate, model.SagaBody{ID: other, Reason: model.ReasonSagaTimeout}},
			{f.post, model.EvSagaSettle, stSettleRelease, model.SagaBody{ID: other, Release: true}},
		} {
			f.fold(s.st, model.Event{Type: s.ty, UUID: model.SagaStepUUID(other, s.step), Pre: f.a, Post: c, Value: 2, Saga: s.body})
		}
		return f
	}
	f := clean()
	final(f.w)
	if len(f.w.violations) != 0 {
		t.Fatalf("a committed and a compensated saga flagged: %v", f.w.violations)
	}
	if n, _ := f.post.Neuron(c); n.InDegree != 0 {
		t.Fatalf("the compensated saga's post keeps in-degree %d", n.InDegree)
	}

	// Planted at pre: a reservation forgotten with its out-slot still taken.
	f = clean()
	leak := model.EventUUID{Hi: 3, Lo: 3}
	f.fold(f.pre, model.Event{Type: model.EvSagaReserve, UUID: model.SagaStepUUID(leak, stReserve), Pre: f.a, Post: c, Value: 1, Saga: model.SagaBody{ID: leak}})
	if !f.pre.PlantSagaLeak(leak) {
		t.Fatal("no reservation to leak")
	}
	final(f.w)
	if !violated(f.w, invariants.SagaNoLeak, "subgraph 0: ") {
		t.Fatalf("a leaked reservation not caught: %v", f.w.violations)
	}

	// Planted at post: an in-slot forgotten with its in-degree still taken.
	f = clean()
	f.fold(f.pre, model.Event{Type: model.EvSagaReserve, UUID: model.SagaStepUUID(leak, stReserve), Pre: f.a, Post: c, Value: 1, Saga: model.SagaBody{ID: leak}})
	f.fold(f.post, model.Event{Type: model.EvSagaAccept, UUID: model.SagaStepUUID(leak, stAccept), Pre: f.a, Post: c, Value: 1, Saga: model.SagaBody{ID: leak}})
	f.fold(f.pre, model.Event{Type: model.EvSagaCompensate, UUID: model.SagaStepUUID(leak, stCompensate), Pre: f.a, Post: c, Saga: model.SagaBody{ID: leak, Reason: model.ReasonSagaTimeout}})
	if !f.post.PlantSagaLeak(leak) {
		t.Fatal("no in-slot to leak")
	}
	final(f.w)
	if !violated(f.w, invariants.SagaNoLeak, "subgraph 1") || violated(f.w, invariants.SagaNoLeak, "subgraph 0") {
		t.Fatalf("a leaked in-slot not caught at post alone: %v", f.w.violations)
	}
	if !strings.Contains(fmt.Sprint(f.w.violations), "degrees") {
		t.Fatalf("the leak is not named as degrees: %v", f.w.violations)
	}
}
