package scenarios

import (
	"territory/faults"
	"territory/sim"
	"territory/sim/pulsartopic"
)

// Scenarios on the second log backend: the production fencing protocol
// (model/logfence, the code runtime/pulsarlog runs) over the simulated
// Pulsar topic (sim/pulsartopic) instead of the simulated bookies.
func init() {
	all = append(all,
		Scenario{
			Name:    "pause-fencing-topic",
			Summary: "pause-fencing on the production fencing path: the log is logfence over a simulated Pulsar topic",
			build: func(seed uint64, cfg *sim.Config) error {
				onTopic(cfg, 0, 0)
				return byName("pause-fencing").build(seed, cfg)
			},
		},
		Scenario{
			Name:    "services-topic",
			Summary: "coordination, log and object-store faults and host crashes, with lost and duplicated sends on the simulated Pulsar topic",
			build: func(seed uint64, cfg *sim.Config) error {
				onTopic(cfg, 5_000, 20_000)
				return generate(seed, cfg, []faults.Kind{
					faults.CoordSlow, faults.CoordUnreachable, faults.CoordSessionExpiry, faults.LogAckLoss,
					faults.BlobErrors, faults.BlobSlow, faults.BlobAmbiguousPut, faults.HostCrash,
				}, 12)
			},
		},
		Scenario{
			Name: "topic-race",
			Summary: "two writers race through one topic: primaries freeze with appends queued and resume while their " +
				"successors write; sends are lost and duplicated",
			build: func(seed uint64, cfg *sim.Config) error {
				onTopic(cfg, 10_000, 30_000)
				cfg.Subgraphs = 8 // few streams: every takeover races on a busy one
				// Busy streams, but not so busy that one subgraph's history
				// (about 1,000 operations at these think times, with 8 streams) outgrows
				// porcupine's budget: at 2-20 ms it held ~5,000 and timed out.
				cfg.Workload.ThinkMinUs, cfg.Workload.ThinkMaxUs = 10_000, 60_000
				cfg.Workload.InFlight = 2
				spec := faultSpec(cfg, []faults.Kind{faults.HostPause, faults.HostPause, faults.HostPause, faults.HostCrash}, 10)
				spec.MinDurMs, spec.MaxDurMs = 2_000, min(8_000, cfg.DurationMs/5)
				cfg.LivenessMs = 15_000
				return generateSpec(seed, cfg, spec)
			},
		},
	)
}

// onTopic switches the world's log to the production fencing protocol
// over a simulated topic, with lost and duplicated sends per million.
func onTopic(cfg *sim.Config, lostPM, dupPM int64) {
	cfg.LogBackend = sim.LogTopic
	cfg.Topic = pulsartopic.DefaultConfig()
	cfg.Topic.LostSendPM, cfg.Topic.DupSendPM = lostPM, dupPM
}

func byName(name string) Scenario {
	for _, s := range all {
		if s.Name == name {
			return s
		}
	}
	panic("scenarios: no scenario " + name)
}
