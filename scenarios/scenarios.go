// Package scenarios names the simulation scenarios: a topology, a workload, a
// fault budget and the checks, built from a seed. `sim list` prints them.
package scenarios

import (
	"fmt"
	"slices"
	"strings"

	"territory/faults"
	"territory/model"
	"territory/sim"
	"territory/sim/kernel"
	"territory/sim/netsim"
	"territory/sim/replog"
)

// Scenario is a named recipe for a run.
type Scenario struct {
	Name    string
	Summary string
	// MaxSeeds, if positive, caps the seeds a swarm runs of this scenario: it
	// runs the first MaxSeeds seeds its shard keeps of the range, and skips
	// the rest (a big topology costs what a hundred small ones do). sim run
	// and sim bench run any seed.
	MaxSeeds int
	build    func(seed uint64, cfg *sim.Config) error
}

// Config builds the run configuration for a seed: the fault schedule is drawn
// from the seed, so one seed is one exact execution.
// durationMs overrides the workload's duration (0: the scenario's own); the
// fault window scales with it.
func (s Scenario) Config(seed uint64, durationMs int64) (sim.Config, error) {
	cfg := Base()
	cfg.Scenario = s.Name
	if durationMs < 0 {
		return sim.Config{}, fmt.Errorf("scenario %s: negative duration %dms", s.Name, durationMs)
	}
	if durationMs > 0 {
		cfg.DurationMs = durationMs
	}
	if err := s.build(seed, &cfg); err != nil {
		return sim.Config{}, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	if err := cfg.Validate(); err != nil {
		return sim.Config{}, err
	}
	return cfg, nil
}

// Base is the common topology: 3 territories, 16 subgraphs, 4 clients, 5
// bookies (ensemble 3, write quorum 3, ack quorum 2), a 60 s mixed workload.
func Base() sim.Config {
	return sim.Config{
		DurationMs: 60_000, DrainMs: 8_000,
		Territories: 3, Subgraphs: 16, Clients: 4,
		Policy:     tightDegrees(),
		Net:        netsim.LinkConfig{LatencyMinUs: 100, LatencyMaxUs: 1_000},
		Log:        replog.DefaultConfig(),
		CoordMinUs: 200, CoordMaxUs: 1_000,
		BlobMinUs: 1_000, BlobMaxUs: 5_000,
		Workload: sim.Workload{
			// Half the clients keep their routes from watches; the other
			// half, like production clients, have none. Each keeps a few
			// operations outstanding, as production clients do.
			Neurons: 48, InFlight: 3, WatchingClients: 2, ThinkMinUs: 10_000, ThinkMaxUs: 60_000,
			Mix: sim.OpMix{Create: 10, Stimulate: 25, ReadNeuron: 20, Connect: 12, Adjust: 12, Prune: 6, ReadSynapse: 15},
		},
		LivenessMs: 8_000,
		CheckEvery: 5_000,
		MaxSteps:   50_000_000,
	}
}

func faultSpec(cfg *sim.Config, kinds []faults.Kind, count int) faults.Spec {
	return faults.Spec{
		Kinds: kinds, Count: count,
		StartMs: cfg.DurationMs / 30, EndMs: cfg.DurationMs * 5 / 6,
		MinDurMs: min(200, cfg.DurationMs/12), MaxDurMs: min(5_000, cfg.DurationMs/6), MaxRatePM: 200_000,
		Territories: cfg.TerritoryNames(), Clients: cfg.ClientNames(),
		Services:   []string{sim.CoordHostName, sim.LogHostName, sim.BlobHostName},
		Managers:   []string{sim.ManagerHostName},
		MaxClockMs: 3_000, MaxDriftPM: 20_000, MaxLost: cfg.Territories - 2,
		Coord: sim.CoordHostName, Log: sim.LogHostName, Blob: sim.BlobHostName,
		// A split brain outlasts the lease (2 s) plus the host-loss timeout
		// (3 s) well: the territory is deposed and asked for seconds (in
		// runs shortened below 48 s, by the shrinker say, it shrinks too).
		SplitBrainMinMs: min(8_000, cfg.DurationMs/6), SplitBrainMaxMs: min(20_000, cfg.DurationMs/3),
	}
}

// tightDegrees is the default policy with degree limits the workload reaches
// (three neurons a subgraph on average), so rejections are exercised.
func tightDegrees() model.Policy {
	p := model.DefaultPolicy()
	p.MaxOutDegree, p.MaxInDegree = 2, 2
	return p
}

// faultRand is the schedule's own stream: changing the world's components
// does not change which faults a seed draws.
func faultRand(seed uint64) *kernel.Rand { return kernel.NewRand(seed ^ 0x5eed_fa17_5eed_fa17) }

func generate(seed uint64, cfg *sim.Config, kinds []faults.Kind, count int) error {
	return generateSpec(seed, cfg, faultSpec(cfg, kinds, count))
}

func generateSpec(seed uint64, cfg *sim.Config, spec faults.Spec) error {
	s, err := faults.Generate(faultRand(seed), spec, cfg.Topology())
	cfg.Schedule = s
	return err
}

// withSnapshots turns snapshots on: every n events per subgraph.
func withSnapshots(cfg *sim.Config, n uint32) { cfg.Policy.SnapshotEvery = n }

var all = []Scenario{
	{
		Name:    "basic",
		Summary: "3 territories, 16 subgraphs, 4 clients, mixed workload, no faults",
		build:   func(uint64, *sim.Config) error { return nil },
	},
	{
		Name:    "network",
		Summary: "partitions (symmetric and one-way), drop, duplicate, reorder and delay spikes",
		build: func(seed uint64, cfg *sim.Config) error {
			spec := faultSpec(cfg, []faults.Kind{faults.NetPartition, faults.NetPartitionOneWay, faults.NetDegrade}, 10)
			spec.SplitBrainPM = 300_000
			cfg.LivenessMs = 12_000
			return generateSpec(seed, cfg, spec)
		},
	},
	{
		Name:    "services",
		Summary: "coordination-store, log and object-store faults with ambiguous outcomes, and host crashes",
		build: func(seed uint64, cfg *sim.Config) error {
			return generate(seed, cfg, []faults.Kind{
				faults.CoordSlow, faults.CoordUnreachable, faults.CoordSessionExpiry,
				faults.LogBookieCrash, faults.LogBookieStall, faults.LogAckLoss,
				faults.BlobErrors, faults.BlobSlow, faults.BlobAmbiguousPut, faults.HostCrash,
			}, 12)
		},
	},
	{
		Name:    "crash-recovery",
		Summary: "territories crash and restart: recovery from the local cache, the latest snapshot and the log; torn and corrupt local disk; logged decay",
		build: func(seed uint64, cfg *sim.Config) error {
			withSnapshots(cfg, 40)
			// Crashes, and a local disk that tears syncs and corrupts reads:
			// the snapshot cache a restart reads first must be checked.
			spec := faultSpec(cfg, []faults.Kind{faults.HostCrash, faults.HostCrash, faults.HostCrash, faults.DiskTornWrite, faults.DiskCorruptRead}, 9)
			spec.MaxDurMs = min(6_000, cfg.DurationMs/6)
			cfg.LivenessMs = 12_000
			return generateSpec(seed, cfg, spec)
		},
	},
	{
		Name:    "host-loss",
		Summary: "a territory's host is lost for good: its subgraphs recover elsewhere from snapshots and the log",
		build: func(seed uint64, cfg *sim.Config) error {
			cfg.Territories = 4
			withSnapshots(cfg, 40)
			spec := faultSpec(cfg, []faults.Kind{faults.HostLoss, faults.HostCrash}, 3)
			spec.MaxLost = 1
			cfg.LivenessMs = 15_000
			if err := generateSpec(seed, cfg, spec); err != nil {
				return err
			}
			ensureLoss(seed, cfg)
			return cfg.Schedule.Validate(cfg.Topology())
		},
	},
	{
		Name:    "migration",
		Summary: "continuous phased migrations (one every 1.5 s, random subgraph and destination) under a write-heavy load, with crashes, message loss, slow coordination and lost log acks",
		build:   buildMigration,
	},
	{
		Name:    "migration-host-loss",
		Summary: "migrations with faults aimed at their steps: T_src lost right after the flip, T_dest crashed or lost in each phase, the manager crashed mid-migration",
		build:   buildMigrationHostLoss,
	},
	{
		Name:    "snapshot-gc",
		Summary: "frequent snapshots under object-store errors, ambiguous puts, corruption and crashes; reconciliation and GC",
		build: func(seed uint64, cfg *sim.Config) error {
			withSnapshots(cfg, 12)
			cfg.Manager.GraceMs = 1_500
			cfg.LivenessMs = 12_000
			// Corruptions hit committed snapshots and crashes follow, so
			// recoveries meet bad blobs and must fall back.
			return generate(seed, cfg, []faults.Kind{faults.BlobErrors, faults.BlobSlow, faults.BlobAmbiguousPut,
				faults.BlobCorrupt, faults.BlobCorrupt, faults.BlobCorrupt, faults.CoordSlow, faults.CoordSessionExpiry,
				faults.HostCrash, faults.HostCrash, faults.HostCrash}, 18)
		},
	},
	{
		Name:    "pause-fencing",
		Summary: "primaries freeze for seconds while clients write; on resume they must find themselves fenced",
		build: func(seed uint64, cfg *sim.Config) error {
			// Frequent snapshots and a slow coordination store keep snapshot
			// jobs in flight when a primary freezes: a resumed primary must not
			// commit over its successor's snapshots either.
			withSnapshots(cfg, 8)
			// Split brains: a primary cut from the control plane keeps its
			// clients, as a paused one would after it resumes.
			spec := faultSpec(cfg, []faults.Kind{faults.HostPause, faults.HostPause, faults.HostPause, faults.CoordSlow, faults.NetPartition}, 8)
			spec.MinDurMs, spec.MaxDurMs = 2_000, min(9_000, cfg.DurationMs/5)
			spec.SplitBrainPM = 1_000_000
			cfg.LivenessMs = 15_000
			return generateSpec(seed, cfg, spec)
		},
	},
	{
		Name:    "split-brain",
		Summary: "primaries cut from the coordination store and the manager for 8-20 s while their clients, half without route watches, still reach them",
		build: func(seed uint64, cfg *sim.Config) error {
			withSnapshots(cfg, 40)
			cfg.Workload.InFlight = 4
			spec := faultSpec(cfg, []faults.Kind{faults.NetPartition, faults.NetPartition, faults.NetPartition, faults.NetDegrade}, 4)
			spec.SplitBrainPM = 1_000_000
			cfg.LivenessMs = 15_000
			return generateSpec(seed, cfg, spec)
		},
	},
	{
		Name:    "clock-skew",
		Summary: "per-host clock skew, drift and jumps, with crashes: heartbeats and decay read the host clocks",
		build: func(seed uint64, cfg *sim.Config) error {
			withSnapshots(cfg, 40)
			cfg.LivenessMs = 12_000
			return generate(seed, cfg, []faults.Kind{faults.ClockSkew, faults.ClockDrift, faults.ClockJump,
				faults.ClockSkew, faults.HostCrash}, 12)
		},
	},
	{
		Name:    "sagas",
		Summary: "cross-subgraph-heavy workload (the handshake saga) with tight degrees, partitions, message loss, crashes and a host loss",
		build: func(seed uint64, cfg *sim.Config) error {
			cfg.Workload.CrossPM = 700_000
			cfg.Workload.ResendPM = 150_000 // import re-runs: connects sent again under their event_uuid
			cfg.Workload.Mix.Connect, cfg.Workload.Mix.Prune = 20, 8
			withSnapshots(cfg, 30)
			spec := faultSpec(cfg, []faults.Kind{faults.NetPartition, faults.NetPartitionOneWay, faults.NetDegrade,
				faults.HostCrash, faults.HostPause, faults.HostLoss, faults.LogAckLoss}, 14)
			spec.MaxLost = 1
			cfg.LivenessMs = 15_000
			if err := generateSpec(seed, cfg, spec); err != nil {
				return err
			}
			ensureLoss(seed, cfg)
			return nil
		},
	},
	{
		Name:     "scale",
		Summary:  "256 territories, 16,384 subgraphs, 1,024 clients, crashes, partitions, slow coordination, bookie crashes and object-store errors (a swarm runs 1 seed)",
		MaxSeeds: ScaleMaxSeeds,
		build:    scaleBuild,
	},
	{
		Name:    "supernodes",
		Summary: "log egress and proxies: hub-heavy workload at a low supernode degree; egress crashes, stream stalls, lost acks and redelivery, proxy crashes, partitions from the stream",
		build:   buildSupernodes,
	},
	{
		Name:    "chaos",
		Summary: "swarm: a random subset of every fault kind, at random rates, per seed; with the supernode path (egress crashes, stream stalls, proxy crashes, stale reads); phased migrations in half the seeds",
		build: func(seed uint64, cfg *sim.Config) error {
			cfg.Territories = 4
			r := faultRand(seed ^ 0xc4a05)
			withSnapshots(cfg, uint32(r.Between(10, 60)))
			// Swarm testing: each kind is on for this seed with probability
			// one half, so seeds explore combinations a fixed mix never would.
			var kinds []faults.Kind
			for _, k := range faults.Kinds() {
				if r.Chance(500_000) {
					kinds = append(kinds, k)
				}
			}
			if len(kinds) == 0 {
				kinds = []faults.Kind{faults.Kinds()[r.Intn(len(faults.Kinds()))]}
			}
			spec := faultSpec(cfg, kinds, int(r.Between(5, 25)))
			spec.MaxRatePM = r.Between(20_000, 300_000)
			spec.SplitBrainPM = 400_000
			spec.MaxLost = 1
			cfg.LivenessMs = 15_000
			cfg.Workload.CrossPM = r.Between(50_000, 600_000)
			// The supernode path too: egress nodes, a proxy in every
			// territory, stale reads, and the egress path's own faults.
			cfg.Egress = 2
			cfg.Policy.SupernodeDegree = 3
			cfg.Workload.StalePM = 300_000
			// Phased migrations in half the seeds (their own stream: the
			// faults a seed draws stay what they were).
			if m := faultRand(seed ^ 0x316); m.Chance(500_000) {
				cfg.Migration = sim.MigrationConfig{EveryMs: m.Between(1_000, 4_000), Max: 1, UntilMs: cfg.DurationMs * 5 / 6}
				cfg.Territory.MigChunkBytes = 64
			}
			if err := generateSpec(seed, cfg, spec); err != nil {
				return err
			}
			egressFaults(seed, cfg, 2)
			return nil
		},
	},
}

// Scale is the topology of the scale scenario: 256 territories, 16,384
// subgraphs, 1,024 clients.
const (
	ScaleTerritories = 256
	ScaleSubgraphs   = 16_384
	ScaleClients     = 1_024
)

// ScaleMaxSeeds is how many seeds of the scale scenario a swarm runs, whatever
// range it was given (Scenario.MaxSeeds): one seed costs about as much as a
// hundred of basic's.
const ScaleMaxSeeds = 1

func scaleBuild(seed uint64, cfg *sim.Config) error {
	cfg.Territories, cfg.Subgraphs, cfg.Clients = ScaleTerritories, ScaleSubgraphs, ScaleClients
	cfg.DurationMs = min(cfg.DurationMs, 10_000)
	withSnapshots(cfg, 40)
	cfg.Workload.Neurons = 3 * ScaleSubgraphs
	// Every watcher gets every route change (16,384 claims at boot alone):
	// a sixteenth of the clients watch, the others learn from answers.
	cfg.Workload.WatchingClients = ScaleClients / 16
	cfg.Workload.InFlight = 2
	cfg.Workload.ThinkMinUs, cfg.Workload.ThinkMaxUs = 20_000, 200_000
	// Loose degrees: with three neurons a subgraph and random pairs, connects
	// rarely share a neuron, and the tight policy would reject almost none.
	cfg.LivenessMs = 15_000
	spec := faultSpec(cfg, []faults.Kind{faults.HostCrash, faults.HostCrash, faults.NetPartition, faults.NetDegrade,
		faults.CoordSlow, faults.LogBookieCrash, faults.BlobErrors}, 10)
	spec.MaxLost = 8
	return generateSpec(seed, cfg, spec)
}

// ensureLoss makes sure a host-loss schedule loses a host: if the draw had
// none, the first crash becomes a loss.
func ensureLoss(seed uint64, cfg *sim.Config) {
	for _, f := range cfg.Schedule.Faults {
		if f.Kind == faults.HostLoss {
			return
		}
	}
	r := faultRand(seed ^ 0x1055)
	cfg.Schedule.Faults = append(cfg.Schedule.Faults, faults.Fault{
		Kind: faults.HostLoss, AtMs: r.Between(cfg.DurationMs/10, cfg.DurationMs/2),
		Hosts: []string{cfg.TerritoryNames()[r.Intn(cfg.Territories)]},
	})
	cfg.Schedule.Sort()
}

// All lists the scenarios by name.
func All() []Scenario {
	out := slices.Clone(all)
	slices.SortFunc(out, func(a, b Scenario) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Get finds a scenario by name.
func Get(name string) (Scenario, error) {
	for _, s := range all {
		if s.Name == name {
			return s, nil
		}
	}
	var names []string
	for _, s := range All() {
		names = append(names, s.Name)
	}
	return Scenario{}, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(names, ", "))
}

// buildSupernodes: two egress nodes and a proxy in every territory; a
// supernode degree of 3 over a small neuron pool with many connects, so most
// subgraphs hold a supernode early.
func buildSupernodes(seed uint64, cfg *sim.Config) error {
	cfg.Egress = 2
	cfg.Policy.MaxOutDegree, cfg.Policy.MaxInDegree, cfg.Policy.SupernodeDegree = 6, 6, 3
	cfg.Workload.Neurons = 32
	// Snapshots: a proxy starts its replicas from them (model/proxy_snapshot.go).
	withSnapshots(cfg, 24)
	if seed%2 == 1 {
		// Odd seeds draw from the real connectome's hubs (connectome.go):
		// only the hubs' real degrees reach the supernode threshold.
		g, err := HubGraph()
		if err != nil {
			return fmt.Errorf("supernodes seed %d draws from the C. elegans hubs: %w", seed, err)
		}
		cfg.Workload.Graph, cfg.Workload.Neurons = g, len(g.Neurons)
		cfg.Policy.MaxOutDegree, cfg.Policy.MaxInDegree, cfg.Policy.SupernodeDegree = supernodesHubMaxOut, supernodesHubMaxIn, supernodesHubDegree
	}
	cfg.Workload.Mix = sim.OpMix{Create: 10, Stimulate: 25, ReadNeuron: 15, Connect: 25, Adjust: 10, Prune: 3, ReadSynapse: 12}
	cfg.Workload.StalePM = 600_000 // most reads are stale: served by the proxies
	if err := generate(seed, cfg, []faults.Kind{faults.HostCrash, faults.NetPartition, faults.LogAckLoss, faults.BlobCorrupt}, 4); err != nil {
		return err
	}
	egressFaults(seed, cfg, 3)
	return nil
}

// The supernodes scenario's policy on the connectome's hub neighbourhood:
// limits above every neuron's degree there (AVAR: out 63, in 88), and a
// supernode threshold that AVAL and AVAR (degree 149 and 151), hyp, AVBL/R,
// AVDL/R, DVA and PVCL/R (66 to 86) reach once most of their real synapses
// are connected, and the other 119 neurons (65 or less) never.
const (
	supernodesHubMaxOut = 64
	supernodesHubMaxIn  = 96
	supernodesHubDegree = 66
)

// egressFaults adds the egress path's own faults, at times drawn from the
// seed: rounds of a crash of an egress node (the leader or the standby), a
// partition of one from the stream and one of a territory from the stream (a
// stall for its proxy); then a burst of lost acks and redelivery, and a
// crash of every egress node at once (the stream stalls).
func egressFaults(seed uint64, cfg *sim.Config, rounds int) {
	r := faultRand(seed ^ 0xe9e55)
	at := func() int64 { return r.Between(cfg.DurationMs/20, cfg.DurationMs*3/4) }
	dur := func() int64 { return r.Between(300, min(6_000, cfg.DurationMs/8)) }
	eg, ts := cfg.EgressNames(), cfg.TerritoryNames()
	for range rounds {
		cfg.Schedule.Faults = append(cfg.Schedule.Faults,
			faults.Fault{Kind: faults.HostCrash, AtMs: at(), DurationMs: dur(), Hosts: []string{eg[r.Intn(len(eg))]}},
			faults.Fault{Kind: faults.NetPartition, AtMs: at(), DurationMs: dur(), Hosts: []string{eg[r.Intn(len(eg))]}, Peers: []string{sim.EgressTopicName}},
			faults.Fault{Kind: faults.NetPartition, AtMs: at(), DurationMs: dur(), Hosts: []string{ts[r.Intn(len(ts))]}, Peers: []string{sim.EgressTopicName}})
	}
	cfg.Schedule.Faults = append(cfg.Schedule.Faults,
		faults.Fault{Kind: faults.LogAckLoss, AtMs: at(), DurationMs: dur(), RatePM: r.Between(50_000, 300_000)},
		faults.Fault{Kind: faults.HostCrash, AtMs: at(), DurationMs: dur(), Hosts: eg}) // both down: the stream stalls
	cfg.Schedule.Sort()
}

// migrationBase is the migration scenarios' topology and load: 4
// territories, a write-heavy mix, a migration every 1.5 s.
func migrationBase(cfg *sim.Config) {
	cfg.Territories = 4
	withSnapshots(cfg, 40)
	cfg.Workload.Mix = sim.OpMix{Create: 12, Stimulate: 40, ReadNeuron: 12, Connect: 10, Adjust: 12, Prune: 4, ReadSynapse: 10}
	cfg.Migration = sim.MigrationConfig{EveryMs: 1_500, Max: 2, UntilMs: cfg.DurationMs * 5 / 6}
	// Small chunks, one at a time: the image takes a few dozen round trips,
	// so writes land between snapshot_LSN and the hold and the catch-up
	// carries them.
	cfg.Territory.MigChunkBytes = 64
	cfg.LivenessMs = 15_000
}

func buildMigration(seed uint64, cfg *sim.Config) error {
	migrationBase(cfg)
	spec := faultSpec(cfg, []faults.Kind{faults.HostCrash, faults.NetDegrade, faults.CoordSlow, faults.LogAckLoss}, 6)
	return generateSpec(seed, cfg, spec)
}

func buildMigrationHostLoss(seed uint64, cfg *sim.Config) error {
	migrationBase(cfg)
	cfg.Migration.SrcLossAfterFlipPM = 300_000
	cfg.Migration.MaxLosses = 1
	cfg.Migration.DestCrashPM = 60_000
	cfg.Migration.ManagerCrashPM = 30_000
	cfg.Migration.ManagerPausePM = 40_000
	cfg.Migration.DownMinMs, cfg.Migration.DownMaxMs = 500, 5_000
	cfg.Migration.FaultsUntilMs = cfg.DurationMs * 2 / 3
	return nil
}
