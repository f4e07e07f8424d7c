package chaos

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"territory/faults"
	"territory/linearizability"
	"territory/model"
	"territory/sim"
)

func TestEveryKindIsSupportedOrRefused(t *testing.T) {
	for _, k := range faults.Kinds() {
		err := Refuse(faults.Fault{Kind: k, Hosts: []string{"t1"}, Peers: []string{EtcdPeer}})
		_, ok := Supported[k]
		if ok != (err == nil) {
			t.Errorf("%s: supported=%v but Refuse says %v", k, ok, err)
		}
		if err != nil && !strings.Contains(err.Error(), "cannot be made real") {
			t.Errorf("%s: refusal without its reason: %v", k, err)
		}
	}
	for _, f := range []faults.Fault{
		{Kind: faults.NetPartition, Hosts: []string{"t1"}, Peers: []string{"t2"}},
		{Kind: faults.NetPartition, Hosts: []string{"t1"}, Peers: []string{EtcdPeer, "t2"}},
		{Kind: faults.HostCrash, Hosts: []string{ManagerHost}},
	} {
		if Refuse(f) == nil {
			t.Errorf("%s was not refused", f)
		}
	}
	sc, _ := Get("short")
	bad := faults.Schedule{Faults: []faults.Fault{{Kind: faults.ClockSkew, Hosts: []string{"t1"}, ExtraMs: 100, DurationMs: 1000}}}
	if err := sc.Check(bad); err == nil || !strings.Contains(err.Error(), "clock.skew") {
		t.Errorf("a schedule with a clock skew was not refused: %v", err)
	}
	overlap := faults.Schedule{Faults: []faults.Fault{
		{Kind: faults.HostPause, Hosts: []string{"t1"}, DurationMs: 3000},
		{Kind: faults.HostCrash, Hosts: []string{"t1"}, AtMs: 1000, DurationMs: 1000}}}
	if sc.Check(overlap) == nil {
		t.Error("overlapping faults on one host were not refused")
	}
}

func TestShortScheduleHasEveryKindOnce(t *testing.T) {
	sc, err := Get("short")
	if err != nil {
		t.Fatal(err)
	}
	var first faults.Schedule
	for seed := uint64(1); seed <= 30; seed++ {
		s, err := sc.Schedule(seed)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		var kinds []faults.Kind
		for _, f := range s.Faults {
			kinds = append(kinds, f.Kind)
		}
		slices.Sort(kinds)
		if len(kinds) != len(Supported) || len(slices.Compact(kinds)) != len(Supported) {
			t.Fatalf("seed %d: kinds %v, want each of the %d supported once", seed, kinds, len(Supported))
		}
		again, _ := sc.Schedule(seed)
		if !slices.EqualFunc(s.Faults, again.Faults, func(a, b faults.Fault) bool { return a.String() == b.String() }) {
			t.Fatalf("seed %d: two schedules", seed)
		}
		if seed == 1 {
			first = s
		} else if end := sc.IssueEndMs(s); end > 90_000 {
			t.Errorf("seed %d: the workload runs %d ms: too long for CI", seed, end)
		}
	}
	if s2, _ := sc.Schedule(2); s2.Faults[0].String() == first.Faults[0].String() && s2.Faults[1].String() == first.Faults[1].String() {
		t.Error("seeds 1 and 2 draw the same schedule")
	}
}

// fixture is a one-client history over a real fold's answers, and its log.
type fixture struct {
	h      *History
	logs   map[model.SubgraphID][]model.LogEntry
	finals []finalRead
	pol    model.Policy
	st     *model.SubgraphState
}

const fixtureSubgraphs = 2

func newFixture(t *testing.T) *fixture {
	f := &fixture{h: newHistory(time.Now(), fixtureSubgraphs), logs: map[model.SubgraphID][]model.LogEntry{}, pol: model.DefaultPolicy()}
	f.st = model.NewSubgraphState(0, fixtureSubgraphs, model.GenesisPolicy())
	f.commit(t, model.Event{Type: model.EvAdoptPolicy, Policy: f.pol, UUID: model.EventUUID{Hi: 9, Lo: 1}})
	return f
}

// neuron0 is a neuron of subgraph 0.
func neuron0() model.NeuronID {
	for n := model.NeuronID(1); ; n++ {
		if model.SubgraphOf(n, fixtureSubgraphs) == 0 {
			return n
		}
	}
}

func (f *fixture) commit(t *testing.T, ev model.Event) model.Result {
	ev.LSN, ev.Subgraph, ev.WriterEpoch = uint64(len(f.logs[0])+1), 0, 1
	res, applied := f.st.Apply(&ev)
	if !applied {
		t.Fatalf("event %+v not applied", ev)
	}
	f.logs[0] = append(f.logs[0], model.LogEntry{LSN: ev.LSN, Data: ev.Encode()})
	return res
}

var nextLo uint64 = 100

// write runs a write through the fold and records it as acknowledged; with
// logged false it is acknowledged but not in the log (the planted bug).
func (f *fixture) write(t *testing.T, req model.Request, ev model.Event, logged bool) {
	nextLo++
	req.ID = model.EventUUID{Hi: 7, Lo: nextLo}
	ev.UUID = req.ID
	id := f.h.begin(0, req)
	res := model.Result{Status: model.StatusOK, Exists: true, Value: req.Value}
	if logged {
		res = f.commit(t, ev)
	}
	f.h.end(id, "c1", req, res, nil)
}

func (f *fixture) read(req model.Request, lie int64) {
	nextLo++
	req.ID = model.EventUUID{Hi: 7, Lo: nextLo}
	id := f.h.begin(0, req)
	res := f.st.Read(&req)
	res.Value += lie
	f.h.end(id, "c1", req, res, nil)
	f.finals = append(f.finals, finalRead{req: req, res: res, ok: true})
}

func (f *fixture) run(t *testing.T, minOps int) verdicts {
	prog := sim.ProgressRecord{Limits: sim.ProgressBounds{WindowMs: 60_000, MinOps: minOps, MaxUnknownPM: 1000}, Clients: []string{"c1"},
		StartUs: 0, EndUs: 60_000_000, NowUs: 60_000_000}
	v, err := check(f.h, f.logs, f.finals, f.pol, fixtureSubgraphs, 10*time.Second, prog)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *fixture) workload(t *testing.T, ackUnlogged bool) {
	n := neuron0()
	f.write(t, model.Request{Op: model.OpCreateNeuron, Neuron: n}, model.Event{Type: model.EvCreateNeuron, Neuron: n}, true)
	for i := int64(1); i <= 3; i++ {
		f.write(t, model.Request{Op: model.OpStimulate, Neuron: n, Value: i * model.FixedOne},
			model.Event{Type: model.EvStimulate, Neuron: n, Value: i * model.FixedOne}, !(ackUnlogged && i == 2))
	}
}

func invariantsOf(v verdicts) string { return invariantNames(v.violations) }

func TestCheckPassesACorrectHistory(t *testing.T) {
	f := newFixture(t)
	f.workload(t, false)
	f.read(model.Request{Op: model.OpReadNeuron, Neuron: neuron0()}, 0)
	v := f.run(t, 1)
	if v.lin.Verdict != linearizability.VerdictOK || v.log.Verdict != linearizability.VerdictOK || len(v.violations) > 0 {
		t.Fatalf("a correct history failed: lin %s, log %s, %v", v.lin.Verdict, v.log, v.violations)
	}
	if v.entries != 5 {
		t.Errorf("%d log entries checked, want 5", v.entries)
	}
}

func TestCheckCatchesAnAckedWriteNotInTheLog(t *testing.T) {
	f := newFixture(t)
	f.workload(t, true)
	v := f.run(t, 1)
	if !strings.Contains(invariantsOf(v), "no-acked-write-lost") {
		t.Errorf("invariants %s: the acknowledged, unlogged stimulate was not caught", invariantsOf(v))
	}
	if !slices.Contains(v.log.Checks(), linearizability.CheckLogLost) {
		t.Errorf("log checker: %s, want %s", v.log, linearizability.CheckLogLost)
	}
}

func TestCheckCatchesAServedStateThatIsNotTheFold(t *testing.T) {
	f := newFixture(t)
	f.workload(t, false)
	f.read(model.Request{Op: model.OpReadNeuron, Neuron: neuron0()}, 1)
	v := f.run(t, 1)
	if !strings.Contains(invariantsOf(v), "state-is-fold-of-log") {
		t.Errorf("invariants %s: a final read off the fold was not caught", invariantsOf(v))
	}
	if v.lin.Verdict != linearizability.VerdictViolation || v.log.Verdict != linearizability.VerdictViolation {
		t.Errorf("a stale read: lin %s, log %s", v.lin.Verdict, v.log)
	}
}

func TestCheckCatchesNoProgress(t *testing.T) {
	f := newFixture(t)
	f.workload(t, false)
	v := f.run(t, 50)
	if !strings.Contains(invariantsOf(v), sim.Progress) {
		t.Errorf("invariants %s: 4 answers in a window that needs 50 was not caught", invariantsOf(v))
	}
}

func TestCheckKeepsUnknownOutcomesOpen(t *testing.T) {
	f := newFixture(t)
	f.workload(t, false)
	n := neuron0()
	// A stimulate whose client timed out, but that the log holds: it happened.
	nextLo++
	req := model.Request{ID: model.EventUUID{Hi: 7, Lo: nextLo}, Op: model.OpStimulate, Neuron: n, Value: model.FixedOne}
	id := f.h.begin(0, req)
	f.commit(t, model.Event{Type: model.EvStimulate, UUID: req.ID, Neuron: n, Value: model.FixedOne})
	f.h.end(id, "c1", req, model.Result{}, errors.New("deadline exceeded"))
	f.read(model.Request{Op: model.OpReadNeuron, Neuron: n}, 0)
	v := f.run(t, 1)
	if v.lin.Verdict != linearizability.VerdictOK || v.log.Verdict != linearizability.VerdictOK || v.log.Resolved != 1 {
		t.Fatalf("an unknown write in the log: lin %s, log %s (resolved %d)", v.lin.Verdict, v.log, v.log.Resolved)
	}
}

func TestTopicFencingCatchesDataOfAFencedEpoch(t *testing.T) {
	ok := []RawMsg{{Kind: "open", Epoch: 1}, {Kind: "data", Epoch: 1, LSN: 1}, {Kind: "open", Epoch: 2}, {Kind: "data", Epoch: 2, LSN: 2}}
	if vs := topicFencing(0, 0, ok); len(vs) != 0 {
		t.Fatalf("a fenced hand-over flagged: %v", vs)
	}
	bad := append(slices.Clone(ok), RawMsg{Kind: "data", Epoch: 1, LSN: 3})
	vs := topicFencing(0, 0, bad)
	if len(vs) != 1 || vs[0].Invariant != "single-writer-epoch" {
		t.Fatalf("data of epoch 1 after open(2) not caught: %v", vs)
	}
}
