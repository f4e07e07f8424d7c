package sim

import (
	"testing"

	"territory/faults"
	"territory/model"
	"territory/sim/netsim"
	"territory/sim/pulsartopic"
	"territory/sim/replog"
)

// The topic backend runs the production fencing protocol for real: pauses
// of primaries make successors take the producer over (unload), the resumed
// primaries are fenced, and every check passes on the topic's fold.
func TestTopicBackendFencesPausedPrimaries(t *testing.T) {
	cfg := Config{Scenario: "topic-test", DurationMs: 40_000, DrainMs: 8_000, Territories: 3, Subgraphs: 4, Clients: 3,
		Policy: model.DefaultPolicy(), Net: netsim.LinkConfig{LatencyMinUs: 100, LatencyMaxUs: 1_000}, Log: replog.DefaultConfig(),
		LogBackend: LogTopic, Topic: pulsartopic.DefaultConfig(),
		CoordMinUs: 200, CoordMaxUs: 1_000, BlobMinUs: 1_000, BlobMaxUs: 5_000, LivenessMs: 15_000, CheckEvery: 1_000,
		Workload: Workload{Neurons: 24, InFlight: 1, ThinkMinUs: 2_000, ThinkMaxUs: 20_000,
			Mix: OpMix{Create: 10, Stimulate: 40, ReadNeuron: 20, Adjust: 10, ReadSynapse: 5, Connect: 10, Prune: 5}},
	}
	cfg.Topic.LostSendPM, cfg.Topic.DupSendPM = 5_000, 20_000
	names := cfg.TerritoryNames()
	cfg.Schedule.Faults = []faults.Fault{
		{Kind: faults.HostPause, AtMs: 5_000, DurationMs: 8_000, Hosts: []string{names[0]}},
		{Kind: faults.HostPause, AtMs: 18_000, DurationMs: 8_000, Hosts: []string{names[1]}},
	}
	w, err := NewWorld(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	out, err := w.Run()
	if err != nil {
		t.Fatal(err)
	}
	st := w.log.(*topicLog).stats
	t.Logf("ops %d, log entries %d, %+v", out.Ops, out.LogEntries, st)
	for _, v := range out.Violations {
		t.Errorf("violation: %s: %s", v.Invariant, v.Detail)
	}
	if out.LogEntries == 0 || st.Unloads == 0 || st.Fenced == 0 {
		t.Fatalf("the fencing path did not run: %d entries, %+v", out.LogEntries, st)
	}
}

// recNode is a process that only records what it is handed.
type recNode struct{ ins []model.Input }

func (r *recNode) Step(_ int64, in model.Input, _ *model.Outbox) { r.ins = append(r.ins, in) }

// A log request of a process that crashes while the request crosses the
// network belongs to the crashed incarnation, not to the next one: the
// restarted process's open must get its answer. (services-topic seed 8: the
// in-flight append of a crashed primary was served as a request of the next
// incarnation, whose writer the world then saw dead and killed; the
// restarted process's opens went to that dead writer and were never answered,
// so its subgraph never got an operational primary again.)
func TestTopicBackendRequestInFlightAtCrash(t *testing.T) {
	cfg := Config{Scenario: "topic-test", DurationMs: 1_000, Territories: 1, Subgraphs: 1, Clients: 1,
		Policy: model.DefaultPolicy(), Net: netsim.LinkConfig{LatencyMinUs: 1_000, LatencyMaxUs: 2_000}, Log: replog.DefaultConfig(),
		LogBackend: LogTopic, Topic: pulsartopic.DefaultConfig(),
		CoordMinUs: 200, CoordMaxUs: 1_000, BlobMinUs: 1_000, BlobMaxUs: 5_000, LivenessMs: 15_000, CheckEvery: 1_000,
		Workload: Workload{Neurons: 4, InFlight: 1, ThinkMinUs: 2_000, ThinkMaxUs: 20_000, Mix: OpMix{Create: 1}},
	}
	w, err := NewWorld(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	h := w.territories[0]
	restart := func() *recNode {
		n := &recNode{}
		h.up, h.pending, h.node = true, map[uint64]struct{}{}, n
		return n
	}
	call := func(n *recNode, id uint64, req model.LogRequest) model.LogResult {
		t.Helper()
		before := len(n.ins)
		w.logCall(h, model.LogCall{ReqID: id, Req: req, TimeoutMs: 10_000})
		if err := w.k.Run(w.k.NowUs() + 11_000_000); err != nil {
			t.Fatal(err)
		}
		if len(n.ins) != before+1 {
			t.Fatalf("request %d: %d inputs, want 1", id, len(n.ins)-before)
		}
		res, ok := n.ins[before].(model.LogResult)
		if !ok {
			t.Fatalf("request %d: input %T, want a LogResult", id, n.ins[before])
		}
		return res
	}
	first := restart()
	if res := call(first, 1, model.LogRequest{Kind: model.LogOpen, Stream: 0, Epoch: 1}); res.Outcome != model.OutcomeOK || res.Err != model.ErrNone {
		t.Fatalf("first open: %+v", res)
	}
	// An append leaves; the process crashes before it reaches the log.
	w.logCall(h, model.LogCall{ReqID: 2, Req: model.LogRequest{Kind: model.LogAppend, Stream: 0, Epoch: 1, LSN: 1, Data: []byte("x")}, TimeoutMs: 10_000})
	w.crash(h)
	if err := w.k.Run(w.k.NowUs() + 100_000); err != nil { // the append arrives at the log
		t.Fatal(err)
	}
	second := restart()
	if res := call(second, 1, model.LogRequest{Kind: model.LogOpen, Stream: 0, Epoch: 2}); res.Outcome != model.OutcomeOK || res.Err != model.ErrNone {
		t.Fatalf("the restarted process's open: %+v, want an answer", res)
	}
	if res := call(second, 2, model.LogRequest{Kind: model.LogAppend, Stream: 0, Epoch: 2, LSN: 1, Data: []byte("y")}); res.Outcome != model.OutcomeOK || res.Err != model.ErrNone {
		t.Fatalf("the restarted process's append: %+v", res)
	}
}
