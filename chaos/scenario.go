package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"territory/faults"
	"territory/model"
	"territory/sim"
)

// Scenario is a chaos run's shape: the cluster, the workload and how its
// fault schedule is drawn from the seed.
type Scenario struct {
	Name, Summary string
	Territories   int
	Subgraphs     uint32
	Workload      Workload
	// EveryKind: one fault of each kind in Kinds, in an order and on hosts
	// drawn from the seed, one after the other. Otherwise Count faults of
	// kinds drawn from Kinds.
	EveryKind bool
	Kinds     []faults.Kind
	Count     int
	WarmupMs  int64 // workload before the first fault
	GapMs     int64 // after each fault heals, before the next starts
	MinDurMs  int64
	MaxDurMs  int64
	// DurationMs is the least workload duration; the workload also runs
	// until one progress window past the last fault's heal plus the bound.
	DurationMs int64
	Progress   sim.ProgressBounds
	Policy     model.Policy
}

// Supported are the fault kinds sim chaos makes real, and how.
var Supported = map[faults.Kind]string{
	faults.HostCrash:          "kill -9 of the territory's process; restarted with its data dir after duration_ms",
	faults.HostPause:          "SIGSTOP of the territory's process; SIGCONT after duration_ms",
	faults.HostLoss:           "kill -9 and the territory's data dir removed; never restarted (its subgraphs move)",
	faults.CoordUnreachable:   "the territory's toxiproxy in front of etcd stops: connections closed and refused for duration_ms",
	faults.NetPartition:       "only peers=[etcd]: every byte between the territory and etcd dropped (toxiproxy timeout toxic) for duration_ms, then its connections reset",
	faults.CoordSlow:          "extra_ms of latency each way between every process and etcd (toxiproxy latency toxic) for duration_ms",
	faults.CoordSessionExpiry: "the lease of the territory's alive/<id> key revoked in etcd (duration_ms unused)",
}

// refusals say why a kind cannot be made real here.
var refusals = map[faults.Kind]string{
	faults.NetPartitionOneWay: "a one-way cut of a TCP connection is not a real fault (TCP needs both directions); only net.partition to etcd is supported",
	faults.NetDegrade:         "it degrades every link, and the Pulsar and S3 paths cannot be proxied (Pulsar's brokers advertise their own address, which clients dial directly)",
	faults.ClockSkew:          "the processes read the host's real clock; changing it would need root and would hit every engineer's processes on this machine",
	faults.ClockDrift:         "the processes read the host's real clock (see clock.skew)",
	faults.ClockJump:          "the processes read the host's real clock (see clock.skew)",
	faults.LogBookieCrash:     "the Pulsar standalone is shared and runs its bookies in one JVM: one bookie cannot be killed alone",
	faults.LogBookieStall:     "the Pulsar standalone runs its bookies in one JVM: one bookie cannot be stalled alone",
	faults.LogAckLoss:         "Pulsar's acknowledgements cannot be dropped without a proxy on the broker path, which clients bypass",
	faults.BlobErrors:         "the S3 server is shared and has no fault injection",
	faults.BlobSlow:           "the S3 server is shared and has no fault injection",
	faults.BlobAmbiguousPut:   "the S3 server is shared and has no fault injection",
	faults.BlobCorrupt:        "not built yet: it would overwrite a committed snapshot blob in the bucket",
	faults.DiskTornWrite:      "the processes write through the real file system, which tears no write on demand",
	faults.DiskCorruptRead:    "the processes read through the real file system, which corrupts no read on demand",
}

// Refuse returns why a fault cannot be executed for real, or nil.
func Refuse(f faults.Fault) error {
	if _, ok := Supported[f.Kind]; !ok {
		why := refusals[f.Kind]
		if why == "" {
			why = "unknown to sim chaos"
		}
		return fmt.Errorf("fault %s cannot be made real by sim chaos: %s", f, why)
	}
	for _, h := range f.Hosts {
		if h == ManagerHost || h == EtcdPeer {
			return fmt.Errorf("fault %s cannot be made real by sim chaos: only territories (t1..tN) can be its hosts", f)
		}
	}
	if f.Kind == faults.NetPartition && !slices.Equal(f.Peers, []string{EtcdPeer}) {
		return fmt.Errorf("fault %s cannot be made real by sim chaos: a partition is only honest on the path to etcd (peers=[%s]): Pulsar's advertised address bypasses any proxy, and territories reach each other directly", f, EtcdPeer)
	}
	return nil
}

// Topology is what a schedule of the scenario may name.
func (s *Scenario) Topology() faults.Topology {
	top := faults.Topology{Bookies: 1}
	for i := 1; i <= s.Territories; i++ {
		top.Hosts = append(top.Hosts, fmt.Sprintf("t%d", i))
	}
	top.Hosts = append(top.Hosts, ManagerHost, EtcdPeer)
	return top
}

// Check validates a schedule against the scenario and refuses what cannot be
// made real; faults on one host must not overlap, and at most Territories-1
// hosts may be lost.
func (s *Scenario) Check(sched faults.Schedule) error {
	if err := sched.Validate(s.Topology()); err != nil {
		return err
	}
	lost := 0
	for i, f := range sched.Faults {
		if err := Refuse(f); err != nil {
			return fmt.Errorf("schedule entry %d: %w", i, err)
		}
		if f.Kind == faults.HostLoss {
			lost += len(f.Hosts)
		}
		for j, g := range sched.Faults[:i] {
			if g.Kind == faults.HostLoss && overlaps(f.Hosts, g.Hosts) && f.AtMs >= g.AtMs {
				return fmt.Errorf("schedule entries %d and %d: %s acts on a host lost by %s", j, i, f, g)
			}
			if g.EndMs() > f.AtMs && overlaps(f.Hosts, g.Hosts) {
				return fmt.Errorf("schedule entries %d and %d overlap on one host: %s, %s", j, i, g, f)
			}
		}
	}
	if lost >= s.Territories {
		return fmt.Errorf("schedule loses %d of %d territories: one must survive", lost, s.Territories)
	}
	return nil
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// Schedule draws the scenario's fault schedule from a seed.
func (s *Scenario) Schedule(seed uint64) (faults.Schedule, error) {
	r := rand.New(rand.NewPCG(seed, 0x6368616f73)) // "chaos"
	kinds := slices.Clone(s.Kinds)
	n := s.Count
	if s.EveryKind {
		r.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		n = len(kinds)
	}
	alive := s.Topology().Hosts[:s.Territories]
	var sched faults.Schedule
	at := s.WarmupMs
	for i := 0; i < n; i++ {
		k := kinds[i%len(kinds)]
		if !s.EveryKind {
			k = kinds[r.IntN(len(kinds))]
		}
		f := faults.Fault{Kind: k, AtMs: at, DurationMs: s.MinDurMs + r.Int64N(s.MaxDurMs-s.MinDurMs+1)}
		h := alive[r.IntN(len(alive))]
		switch k {
		case faults.HostLoss:
			f.DurationMs = 0
			alive = slices.DeleteFunc(slices.Clone(alive), func(x string) bool { return x == h })
		case faults.NetPartition:
			f.Peers = []string{EtcdPeer}
		case faults.CoordSlow:
			f.ExtraMs = 50 + r.Int64N(151)
			h = ""
		case faults.CoordSessionExpiry:
			f.DurationMs = 0
		}
		if h != "" {
			f.Hosts = []string{h}
		}
		sched.Faults = append(sched.Faults, f)
		// A lost host's subgraphs move after the manager's host-loss period
		// (3 s) plus a claim: leave them that long.
		at = f.EndMs() + s.GapMs
		if k == faults.HostLoss || k == faults.CoordSessionExpiry {
			at += 4_000
		}
	}
	sched.Sort()
	return sched, s.Check(sched)
}

// IssueEndMs is when the workload stops issuing: its duration, or one
// progress window past the last heal plus the bound if that is later
// (as sim.Config.IssueEndMs).
func (s *Scenario) IssueEndMs(sched faults.Schedule) int64 {
	return max(s.DurationMs, sched.LastEndMs()+s.Progress.BoundMs+s.Progress.WindowMs)
}

var policy = model.Policy{Epoch: 1, MaxOutDegree: 4, MaxInDegree: 4, DecayPerSecondPM: 1000, SupernodeDegree: 12, SnapshotEvery: 150}

// progress: after the last heal plus 10 s (a host loss: the manager's 3 s
// plus the claim), every client answers at least 50 operations per 5 s
// (unloaded, a client answers about 1,300).
var progress = sim.ProgressBounds{BoundMs: 10_000, WindowMs: 5_000, MinOps: 50, MaxUnknownPM: 20_000,
	MaxBusyPM: 1_000, MaxUnavailablePM: 1_000, MaxBusyRepliesPM: 100_000, MaxUnavailRepliesPM: 100_000}

var defaultWorkload = Workload{Clients: 4, Neurons: 24, OpTimeoutMs: 10_000,
	Mix: Mix{Create: 10, Stimulate: 35, ReadNeuron: 25, Connect: 10, Adjust: 8, Prune: 4, ReadSynapse: 8}}

// Scenarios lists the chaos scenarios.
func Scenarios() []*Scenario {
	every := make([]faults.Kind, 0, len(Supported))
	for k := range Supported {
		every = append(every, k)
	}
	slices.Sort(every)
	return []*Scenario{
		{Name: "short", Summary: "CI: one fault of every supported kind, one after the other, on 3 territories and 6 subgraphs",
			Territories: 3, Subgraphs: 6, Workload: defaultWorkload, EveryKind: true, Kinds: every,
			WarmupMs: 3_000, GapMs: 2_000, MinDurMs: 2_000, MaxDurMs: 4_000, Progress: progress, Policy: policy},
		{Name: "soak", Summary: "100 kill -9 (restart after 0.5-2 s) and SIGSTOP/SIGCONT (0.5-2 s) cycles, 1 s apart, on 3 territories and 6 subgraphs: about 5 minutes",
			Territories: 3, Subgraphs: 6, Workload: defaultWorkload, Kinds: []faults.Kind{faults.HostCrash, faults.HostPause}, Count: 100,
			WarmupMs: 3_000, GapMs: 1_000, MinDurMs: 500, MaxDurMs: 2_000, Progress: progress, Policy: policy},
		{Name: "calm", Summary: "no faults, 15 s of workload on 2 territories and 4 subgraphs (the planted-bug runs use it)",
			Territories: 2, Subgraphs: 4, Workload: defaultWorkload, DurationMs: 15_000,
			Progress: progress, Policy: policy},
	}
}

// Get finds a scenario by name.
func Get(name string) (*Scenario, error) {
	var names []string
	for _, s := range Scenarios() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return nil, fmt.Errorf("no chaos scenario %q (have: %s)", name, strings.Join(names, ", "))
}

// PolicySection is the policy as the territoryd configuration's section.
func PolicySection(p model.Policy) string {
	return fmt.Sprintf("  max_out_degree: %d\n  max_in_degree: %d\n  decay_per_second_pm: %d\n  supernode_degree: %d\n  snapshot_every: %d",
		p.MaxOutDegree, p.MaxInDegree, p.DecayPerSecondPM, p.SupernodeDegree, p.SnapshotEvery)
}
