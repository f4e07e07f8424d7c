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
		if KindSupported(k) == (refusals[k] != "") {
			t.Errorf("%s: supported=%v and refused for %q", k, KindSupported(k), refusals[k])
		}
		if err != nil && !strings.Contains(err.Error(), "cannot be made real") {
			t.Errorf("%s: refusal without its reason: %v", k, err)
		}
	}
	// Every supported plan, as the short schedule writes it, is accepted.
	sc, _ := Get("short")
	s, err := sc.Schedule(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s.Faults {
		if err := Refuse(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, f := range []faults.Fault{
		{Kind: faults.NetPartition, Hosts: []string{"t1"}, Peers: []string{"t2"}},
		{Kind: faults.NetPartition, Hosts: []string{"t1"}, Peers: []string{EtcdPeer, "t2"}},
		{Kind: faults.NetPartition, Hosts: []string{"t1"}, Peers: []string{PulsarPeer}},
		{Kind: faults.NetPartition, Hosts: []string{"e1"}, Peers: []string{"e1"}},
		{Kind: faults.NetPartition, Hosts: []string{"e1"}, Peers: []string{"t1"}},
		{Kind: faults.HostLoss, Hosts: []string{ManagerHost}},
		{Kind: faults.HostLoss, Hosts: []string{"e2"}},
		{Kind: faults.HostCrash, Hosts: []string{"e1", "e2"}},
		{Kind: faults.CoordSessionExpiry, Hosts: []string{"e1"}},
		{Kind: faults.NetDegrade, Hosts: []string{"t1"}, Peers: []string{S3Peer}, DropPM: 1000, ExtraMs: 10},
		{Kind: faults.NetDegrade, Hosts: []string{"t1"}, Peers: []string{S3Peer}},
		{Kind: faults.HostCrash, Hosts: []string{"x9"}},
	} {
		if Refuse(f) == nil {
			t.Errorf("%s was not refused", f)
		}
	}
	bad := faults.Schedule{Faults: []faults.Fault{{Kind: faults.ClockSkew, Hosts: []string{"t1"}, ExtraMs: 100, DurationMs: 1000}}}
	if err := sc.Check(bad); err == nil || !strings.Contains(err.Error(), "clock.skew") || !strings.Contains(err.Error(), "CAP_SYS_TIME") {
		t.Errorf("a schedule with a clock skew was not refused with its reason: %v", err)
	}
	overlap := faults.Schedule{Faults: []faults.Fault{
		{Kind: faults.HostPause, Hosts: []string{"t1"}, DurationMs: 3000},
		{Kind: faults.HostCrash, Hosts: []string{"t1"}, AtMs: 1000, DurationMs: 1000}}}
	if sc.Check(overlap) == nil {
		t.Error("overlapping faults on one host were not refused")
	}
	quorum := faults.Schedule{Faults: []faults.Fault{
		{Kind: faults.HostPause, Hosts: []string{"e1"}, DurationMs: 3000},
		{Kind: faults.HostCrash, Hosts: []string{EtcdLeader}, AtMs: 1000, DurationMs: 1000}}}
	if err := sc.Check(quorum); err == nil || !strings.Contains(err.Error(), "quorum") {
		t.Errorf("overlapping faults on two etcd members were not refused: %v", err)
	}
}

func TestShortScheduleHasEveryPlanOnce(t *testing.T) {
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
		var plans []string
		for _, f := range s.Faults {
			plans = append(plans, Plan{f.Kind, TargetOf(f)}.String())
		}
		slices.Sort(plans)
		if len(plans) != len(Supported) || len(slices.Compact(plans)) != len(Supported) {
			t.Fatalf("seed %d: plans %v, want each of the %d supported once", seed, plans, len(Supported))
		}
		again, _ := sc.Schedule(seed)
		if !slices.EqualFunc(s.Faults, again.Faults, func(a, b faults.Fault) bool { return a.String() == b.String() }) {
			t.Fatalf("seed %d: two schedules", seed)
		}
		if seed == 1 {
			first = s
		} else if end := sc.IssueEndMs(s); end > 75_000 {
			t.Errorf("seed %d: the workload runs %d ms: too long for CI", seed, end)
		}
	}
	if s2, _ := sc.Schedule(2); s2.Faults[0].String() == first.Faults[0].String() && s2.Faults[1].String() == first.Faults[1].String() {
		t.Error("seeds 1 and 2 draw the same schedule")
	}
	soak, _ := Get("soak")
	s, err := soak.Schedule(1)
	if err != nil {
		t.Fatal(err)
	}
	count := map[Target]int{}
	for _, f := range s.Faults {
		count[TargetOf(f)]++
	}
	if len(s.Faults) < 100 || count[OnManager] == 0 || count[OnEtcdMember] == 0 || count[OnEtcdLeader] == 0 || count[OnTerritory] == 0 {
		t.Errorf("soak: %d faults by target %v", len(s.Faults), count)
	}
}

// TestAppliedCountsEveryScheduledFault: a scheduled fault that was not
// applied and verified fails the run.
func TestAppliedCountsEveryScheduledFault(t *testing.T) {
	sched := faults.Schedule{Faults: []faults.Fault{{Kind: faults.HostCrash, Hosts: []string{"e1"}}, {Kind: faults.HostPause, Hosts: []string{ManagerHost}}}}
	recs := []FaultRecord{{Fault: sched.Faults[0], Target: OnEtcdMember, Verified: "exited after SIGKILL"}, {Fault: sched.Faults[1], Target: OnManager}}
	if _, err := applied(sched, recs); err == nil || !strings.Contains(err.Error(), "host.pause/manager") {
		t.Errorf("an unverified pause passed: %v", err)
	}
	recs[1].Verified = "stopped"
	got, err := applied(sched, recs)
	if err != nil || got["host.crash/etcd-member"] != 1 || got["host.pause/manager"] != 1 {
		t.Errorf("applied %v %v", got, err)
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
	v, err := check(f.h, f.logs, f.finals, f.pol, fixtureSubgraphs, 10*time.Second, prog, sagaConfig(fixtureSubgraphs, 10_000, nil), nil)
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
