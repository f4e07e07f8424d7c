package invariants

import (
	"strings"
	"testing"

	"territory/model"
)

func entry(t *testing.T, ev model.Event) model.LogEntry {
	t.Helper()
	return model.LogEntry{LSN: ev.LSN, Data: ev.Encode()}
}

func TestSingleWriterCatchesAnOlderEpochAppendingLater(t *testing.T) {
	c := NewSingleWriter()
	c.Committed(1, 5, 1, 1, 10)
	c.Committed(2, 5, 2, 2, 11) // a new writer took over: fine
	if len(c.Violations()) != 0 {
		t.Fatalf("clean history flagged: %v", c.Violations())
	}
	c.Committed(3, 5, 3, 1, 10) // the old writer appends again: planted violation
	if len(c.Violations()) != 1 || c.Violations()[0].Invariant != SingleWriterEpoch {
		t.Fatalf("stale writer not caught: %v", c.Violations())
	}
}

func TestSingleWriterCatchesAFencedAppendBeforeTheSuccessorsFirstCommit(t *testing.T) {
	c := NewSingleWriter()
	c.Committed(1, 5, 1, 1, 10)
	c.Opened(2, 5, 2) // the successor's open is accepted; it has committed nothing yet
	c.Opened(3, 5, 1) // an older open answered late changes nothing
	if len(c.Violations()) != 0 {
		t.Fatalf("clean history flagged: %v", c.Violations())
	}
	// Planted: the fenced epoch-1 writer's append commits after the open. The
	// epoch along the LSNs does not go down (epoch 2 has no entry yet).
	c.Committed(4, 5, 2, 1, 10)
	if len(c.Violations()) != 1 || !strings.Contains(c.Violations()[0].Detail, "after the log accepted an open at epoch 2") {
		t.Fatalf("fenced append not caught: %v", c.Violations())
	}
	c.Committed(5, 5, 3, 2, 11) // the successor's own commits are fine
	if len(c.Violations()) != 1 {
		t.Fatalf("the successor's commit flagged: %v", c.Violations())
	}
}

func TestSingleWriterCatchesTwoHostsInOneEpoch(t *testing.T) {
	c := NewSingleWriter()
	c.Committed(1, 5, 1, 3, 10)
	c.Committed(2, 5, 2, 3, 11)
	if len(c.Violations()) != 1 || !strings.Contains(c.Violations()[0].Detail, "hosts 10 and 11") {
		t.Fatalf("two writers in one epoch not caught: %v", c.Violations())
	}
}

func TestAckedWriteMissingFromTheLogIsCaught(t *testing.T) {
	var c AckedWrites
	logged := model.EventUUID{Hi: 1, Lo: 1}
	lost := model.EventUUID{Hi: 1, Lo: 2}
	log := []model.LogEntry{entry(t, model.Event{LSN: 1, UUID: logged, Subgraph: 0, Type: model.EvCreateNeuron, Neuron: 1})}
	c.Acked(10, 0, logged, model.OpCreateNeuron)
	byLog := func(model.SubgraphID) []model.LogEntry { return log }
	applied := func(model.SubgraphID) (uint64, bool) { return 1, true }
	if v := c.Check(20, byLog, applied); len(v) != 0 {
		t.Fatalf("clean: %v", v)
	}
	c.Acked(11, 0, lost, model.OpStimulate) // planted: acknowledged, never logged
	v := c.Check(20, byLog, applied)
	if len(v) != 1 || v[0].Invariant != NoAckedWriteLost || !strings.Contains(v[0].Detail, lost.String()) {
		t.Fatalf("lost write not caught: %v", v)
	}
}

func TestAckedWriteNotAppliedByThePrimaryIsCaught(t *testing.T) {
	var c AckedWrites
	id := model.EventUUID{Hi: 1, Lo: 1}
	log := []model.LogEntry{
		entry(t, model.Event{LSN: 1, UUID: model.EventUUID{Hi: 9, Lo: 9}, Subgraph: 0, Type: model.EvHeartbeat}),
		entry(t, model.Event{LSN: 2, UUID: id, Subgraph: 0, Type: model.EvCreateNeuron, Neuron: 1}),
	}
	c.Acked(10, 0, id, model.OpCreateNeuron)
	v := c.Check(20, func(model.SubgraphID) []model.LogEntry { return log }, func(model.SubgraphID) (uint64, bool) { return 1, true })
	if len(v) != 1 || !strings.Contains(v[0].Detail, "applied only up to 1") {
		t.Fatalf("a primary behind an acknowledged write not caught: %v", v)
	}
}

func TestFoldsCatchADivergentState(t *testing.T) {
	const count = 4
	f := NewFolds(count, model.DefaultPolicy())
	var n model.NeuronID = 1
	sg := model.SubgraphOf(n, count)
	evs := []model.Event{
		{LSN: 1, UUID: model.EventUUID{Hi: 1, Lo: 1}, Subgraph: sg, Type: model.EvCreateNeuron, Neuron: n},
		{LSN: 2, UUID: model.EventUUID{Hi: 1, Lo: 2}, Subgraph: sg, Type: model.EvStimulate, Neuron: n, Value: 5},
	}
	live := model.NewSubgraphState(sg, count, model.DefaultPolicy())
	for i := range evs {
		f.Committed(1, sg, entry(t, evs[i]))
		live.Apply(&evs[i])
	}
	if v, compared := f.Compare(2, "t1", live); v != nil || !compared {
		t.Fatalf("identical state flagged (%v, compared=%v)", v, compared)
	}
	// Planted: the live state applies a stimulate that is not in the log.
	bad := model.Event{LSN: 3, UUID: model.EventUUID{Hi: 1, Lo: 3}, Subgraph: sg, Type: model.EvStimulate, Neuron: n, Value: 1}
	live.Apply(&bad)
	if v, _ := f.Compare(3, "t1", live); v == nil || !strings.Contains(v.Detail, "beyond the committed log") {
		t.Fatalf("state ahead of the log not caught: %v", v)
	}
	// Planted: same LSN, different content.
	other := model.NewSubgraphState(sg, count, model.DefaultPolicy())
	other.Apply(&evs[0])
	wrong := evs[1]
	wrong.Value = 6
	other.Apply(&wrong)
	if v, compared := f.Compare(4, "t2", other); v == nil || !compared || !strings.Contains(v.Detail, "digest") {
		t.Fatalf("divergent state not caught: %v", v)
	}
}

func TestFoldsCatchAGapInTheLog(t *testing.T) {
	f := NewFolds(4, model.DefaultPolicy())
	f.Committed(1, 0, entry(t, model.Event{LSN: 2, Subgraph: 0, Type: model.EvHeartbeat}))
	if len(f.Violations()) != 1 {
		t.Fatalf("gap not caught: %v", f.Violations())
	}
}

func TestFoldsCatchADegreeBeyondThePolicy(t *testing.T) {
	f := NewFolds(1, model.Policy{Epoch: 1, MaxOutDegree: 1, MaxInDegree: 1})
	evs := []model.Event{
		{LSN: 1, UUID: model.EventUUID{Hi: 1, Lo: 1}, Type: model.EvCreateNeuron, Neuron: 1},
		{LSN: 2, UUID: model.EventUUID{Hi: 1, Lo: 2}, Type: model.EvCreateNeuron, Neuron: 2},
		{LSN: 3, UUID: model.EventUUID{Hi: 1, Lo: 3}, Type: model.EvConnect, Pre: 1, Post: 2, Value: 4},
		{LSN: 4, UUID: model.EventUUID{Hi: 1, Lo: 4}, Type: model.EvConnect, Pre: 1, Post: 1, Value: 4}, // rejected: out-degree
	}
	for i := range evs {
		f.Committed(1, 0, entry(t, evs[i]))
	}
	if len(f.Violations()) != 0 {
		t.Fatalf("correct answers flagged: %v", f.Violations())
	}
	// Planted: the state's in-degree bound is lowered behind the fold's back,
	// so neuron 2 (in-degree 1) now exceeds it when a connect touches it. (A
	// wrong connect answer, the other half of the check, needs a wrong fold:
	// the mutants connect-off-by-one and ignore-in-degree show it caught.)
	f.state(0).Policy.MaxInDegree = 0
	f.Committed(2, 0, entry(t, model.Event{LSN: 5, UUID: model.EventUUID{Hi: 1, Lo: 5}, Type: model.EvConnect, Pre: 2, Post: 2}))
	found := false
	for _, v := range f.Violations() {
		found = found || (v.Invariant == DegreePolicy && strings.Contains(v.Detail, "n2 has degree in 1"))
	}
	if !found {
		t.Fatalf("a degree beyond the policy not caught: %v", f.Violations())
	}
}
