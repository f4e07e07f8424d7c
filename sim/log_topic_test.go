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
