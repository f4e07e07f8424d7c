package chaos

import (
	"errors"
	"strings"
	"testing"
	"time"

	"territory/linearizability"
	"territory/model"
	"territory/sim"
	"territory/sim/invariants"
)

var errDeadline = errors.New("context deadline exceeded")

// sagaFixture is a two-subgraph history over real folds' answers, and its
// logs, for the saga checks on real histories.
type sagaFixture struct {
	h      *History
	logs   map[model.SubgraphID][]model.LogEntry
	st     [2]*model.SubgraphState
	finals []finalRead
	pol    model.Policy
}

func newSagaFixture(t *testing.T) *sagaFixture {
	f := &sagaFixture{h: newHistory(time.Now(), fixtureSubgraphs), logs: map[model.SubgraphID][]model.LogEntry{}, pol: model.DefaultPolicy()}
	for sg := range f.st {
		f.st[sg] = model.NewSubgraphState(model.SubgraphID(sg), fixtureSubgraphs, model.GenesisPolicy())
		f.commit(t, model.SubgraphID(sg), model.Event{Type: model.EvAdoptPolicy, Policy: f.pol, UUID: model.EventUUID{Hi: 9, Lo: uint64(sg) + 1}})
	}
	return f
}

func neuronOf(sg model.SubgraphID) model.NeuronID {
	for n := model.NeuronID(1); ; n++ {
		if model.SubgraphOf(n, fixtureSubgraphs) == sg {
			return n
		}
	}
}

func (f *sagaFixture) commit(t *testing.T, sg model.SubgraphID, ev model.Event) (model.Event, model.Result) {
	ev.LSN, ev.Subgraph, ev.WriterEpoch = uint64(len(f.logs[sg])+1), sg, 1
	res, applied := f.st[sg].Apply(&ev)
	if !applied {
		t.Fatalf("event %+v not applied", ev)
	}
	f.logs[sg] = append(f.logs[sg], model.LogEntry{LSN: ev.LSN, Data: ev.Encode()})
	return ev, res
}

func (f *sagaFixture) create(t *testing.T, n model.NeuronID) {
	nextLo++
	req := model.Request{ID: model.EventUUID{Hi: 7, Lo: nextLo}, Op: model.OpCreateNeuron, Neuron: n}
	id := f.h.begin(0, req)
	_, res := f.commit(t, model.SubgraphOf(n, fixtureSubgraphs), model.Event{Type: model.EvCreateNeuron, UUID: req.ID, Neuron: n})
	f.h.end(id, "c1", req, res, nil)
}

// saga is a cross-subgraph connect pre->post as territories make it:
// Reserve at pre, Accept at post, Commit at pre, Settle at post, the
// client's answer. withPost false leaves post's steps out (the planted
// bug: pre commits a saga post never accepted); answer, if set, is the
// client's answer instead of the one pre's log recorded.
func (f *sagaFixture) saga(t *testing.T, pre, post model.NeuronID, withPost bool, answer *model.Result) {
	nextLo++
	req := model.Request{ID: model.EventUUID{Hi: 7, Lo: nextLo}, Op: model.OpConnect, Pre: pre, Post: post, Value: model.FixedOne}
	id := f.h.begin(0, req)
	psg, qsg := model.SubgraphOf(pre, fixtureSubgraphs), model.SubgraphOf(post, fixtureSubgraphs)
	rev, _ := f.commit(t, psg, model.Event{Type: model.EvSagaReserve, UUID: model.SagaStepUUID(req.ID, model.SagaStepReserve), Pre: pre, Post: post, Value: req.Value,
		Saga: model.SagaBody{ID: req.ID, Instance: true}})
	sid := rev.SagaID()
	step := func(sg model.SubgraphID, ty model.EventType, s uint64, release bool) model.Result {
		_, r := f.commit(t, sg, model.Event{Type: ty, UUID: model.SagaStepUUID(sid, s), Pre: pre, Post: post, Value: req.Value, Saga: model.SagaBody{ID: sid, Release: release}})
		return r
	}
	if withPost {
		step(qsg, model.EvSagaAccept, model.SagaStepAccept, false)
	}
	res := step(psg, model.EvSagaCommit, model.SagaStepCommit, false)
	if withPost {
		step(qsg, model.EvSagaSettle, model.SagaStepSettleCommit, false)
	}
	if answer != nil {
		res = *answer
	}
	f.h.end(id, "c1", req, res, nil)
}

func (f *sagaFixture) readSynapse(pre, post model.NeuronID) {
	nextLo++
	req := model.Request{ID: model.EventUUID{Hi: 7, Lo: nextLo}, Op: model.OpReadSynapse, Pre: pre, Post: post}
	id := f.h.begin(0, req)
	res := f.st[model.SubgraphOf(pre, fixtureSubgraphs)].Read(&req)
	f.h.end(id, "c1", req, res, nil)
	f.finals = append(f.finals, finalRead{req: req, res: res, ok: true})
}

func (f *sagaFixture) run(t *testing.T) verdicts {
	prog := sim.ProgressRecord{Limits: sim.ProgressBounds{WindowMs: 60_000, MinOps: 1, MaxUnknownPM: 1000}, Clients: []string{"c1"},
		StartUs: 0, EndUs: 60_000_000, NowUs: 60_000_000}
	v, err := check(f.h, f.logs, f.finals, f.pol, fixtureSubgraphs, 10*time.Second, prog, sagaConfig(fixtureSubgraphs, 10_000, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSagaChecksPassACorrectSaga: a committed saga whose pre is subgraph 1
// and post subgraph 0 passes every check. Folded subgraph by subgraph, post's
// Settle(commit) would come before pre's Commit and saga-atomic would flag
// it: the causal merge folds pre's Commit first.
func TestSagaChecksPassACorrectSaga(t *testing.T) {
	f := newSagaFixture(t)
	pre, post := neuronOf(1), neuronOf(0)
	f.create(t, pre)
	f.create(t, post)
	f.saga(t, pre, post, true, nil)
	f.readSynapse(pre, post)
	v := f.run(t)
	if v.lin.Verdict != linearizability.VerdictOK || v.log.Verdict != linearizability.VerdictOK || len(v.violations) > 0 {
		t.Fatalf("a correct saga failed: lin %s, log %s, %v", v.lin.Verdict, v.log, v.violations)
	}
	if v.sagas.Committed != 1 || v.sagas.Answers != 1 || v.crossConnects != 1 {
		t.Errorf("sagas %+v, cross connects %d: want one committed and answered", v.sagas, v.crossConnects)
	}
}

// TestSagaChecksCatchACommitWithoutPost: pre commits a saga post's log
// never accepted: saga-atomic, by the simulator's checker.
func TestSagaChecksCatchACommitWithoutPost(t *testing.T) {
	f := newSagaFixture(t)
	pre, post := neuronOf(0), neuronOf(1)
	f.create(t, pre)
	f.create(t, post)
	f.saga(t, pre, post, false, nil)
	v := f.run(t)
	if !strings.Contains(invariantsOf(v), invariants.SagaAtomic) {
		t.Fatalf("invariants %s: a commit without post's in-slot was not caught", invariantsOf(v))
	}
}

// TestSagaChecksCatchAnAnswerNotInPresLog: the client is answered a
// refusal where pre's log committed the saga: saga-atomic.
func TestSagaChecksCatchAnAnswerNotInPresLog(t *testing.T) {
	f := newSagaFixture(t)
	pre, post := neuronOf(0), neuronOf(1)
	f.create(t, pre)
	f.create(t, post)
	f.saga(t, pre, post, true, &model.Result{Status: model.StatusRejected, Reason: model.ReasonMaxInDegree})
	v := f.run(t)
	found := false
	for _, vi := range v.violations {
		found = found || (vi.Invariant == invariants.SagaAtomic && strings.Contains(vi.Detail, "pre's log says"))
	}
	if !found {
		t.Fatalf("violations %v: an answer pre's log does not hold was not caught", v.violations)
	}
}

// TestSagaChecksCatchAStuckSaga: a reservation never decided, long after
// the last heal: saga-terminates.
func TestSagaChecksCatchAStuckSaga(t *testing.T) {
	f := newSagaFixture(t)
	pre, post := neuronOf(0), neuronOf(1)
	f.create(t, pre)
	f.create(t, post)
	nextLo++
	req := model.Request{ID: model.EventUUID{Hi: 7, Lo: nextLo}, Op: model.OpConnect, Pre: pre, Post: post, Value: model.FixedOne}
	id := f.h.begin(0, req)
	f.commit(t, 0, model.Event{Type: model.EvSagaReserve, UUID: model.SagaStepUUID(req.ID, model.SagaStepReserve), Pre: pre, Post: post, Value: req.Value,
		Saga: model.SagaBody{ID: req.ID, Instance: true}})
	f.h.end(id, "c1", req, model.Result{}, errDeadline)
	f.h.t0 = f.h.t0.Add(-time.Minute) // the check runs a minute after the reservation
	v := f.run(t)
	if !strings.Contains(invariantsOf(v), invariants.SagaTerminates) {
		t.Fatalf("invariants %s: a reservation open for a minute was not caught", invariantsOf(v))
	}
	if v.crossUnknown != 1 {
		t.Errorf("%d unknown cross connects, want 1", v.crossUnknown)
	}
}
