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
	// EveryPlan: one fault of each plan in Plans, in an order and on hosts
	// drawn from the seed; the plans of one lane run one after the other,
	// the lanes side by side. Otherwise Count faults of plans drawn from
	// Plans, one after the other.
	EveryPlan bool
	Plans     []Plan
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

// Target is the kind of process or path a fault acts on.
type Target string

// The targets of sim chaos's faults.
const (
	OnTerritory  Target = "territory"   // a territoryd run process, or its path to etcd
	OnManager    Target = "manager"     // the territoryd manager process, or its path to etcd
	OnEtcdMember Target = "etcd-member" // one etcd member (e1..e3)
	OnEtcdLeader Target = "etcd-leader" // the member leading etcd when the fault starts
	OnS3Path     Target = "s3-path"     // the path between territories and the S3 server
	OnEveryPath  Target = "every-path"  // every process's path to one service
)

// Plan is a fault kind on a target: what a scenario schedules.
type Plan struct {
	Kind   faults.Kind
	Target Target
}

func (p Plan) String() string { return string(p.Kind) + "/" + string(p.Target) }

// lane: plans of one lane never overlap in a drawn schedule; lanes do.
func (p Plan) lane() int {
	switch p.Target {
	case OnEtcdMember, OnEtcdLeader:
		return 1
	case OnS3Path:
		return 2
	}
	return 0
}

// Supported are the fault kinds and targets sim chaos makes real, and how.
var Supported = map[Plan]string{
	{faults.HostCrash, OnTerritory}:          "kill -9 of the territory's process; restarted with its data dir after duration_ms",
	{faults.HostPause, OnTerritory}:          "SIGSTOP of the territory's process; SIGCONT after duration_ms",
	{faults.HostLoss, OnTerritory}:           "kill -9 and the territory's data dir removed; never restarted (its subgraphs move)",
	{faults.CoordUnreachable, OnTerritory}:   "the territory's toxiproxy proxies in front of the etcd members stop: connections closed and refused for duration_ms",
	{faults.NetPartition, OnTerritory}:       "peers=[etcd]: every byte between the territory and every etcd member dropped (toxiproxy timeout toxic) for duration_ms, then its connections reset",
	{faults.CoordSessionExpiry, OnTerritory}: "the lease of the territory's alive/<id> key revoked in etcd (duration_ms unused)",
	{faults.CoordSlow, OnEveryPath}:          "extra_ms of latency each way between every process and every etcd member (toxiproxy latency toxic) for duration_ms",
	{faults.HostCrash, OnManager}:            "kill -9 of the manager's process (hosts=[m]); restarted after duration_ms",
	{faults.HostPause, OnManager}:            "SIGSTOP of the manager's process (hosts=[m]); SIGCONT after duration_ms",
	{faults.CoordUnreachable, OnManager}:     "the manager's proxies in front of the etcd members stop for duration_ms",
	{faults.NetPartition, OnManager}:         "peers=[etcd]: every byte between the manager and etcd dropped for duration_ms",
	{faults.HostCrash, OnEtcdMember}:         "kill -9 of one etcd member's process (hosts=[e1..e3]); restarted with its data dir after duration_ms",
	{faults.HostPause, OnEtcdMember}:         "SIGSTOP of one etcd member's process; SIGCONT after duration_ms",
	{faults.NetPartition, OnEtcdMember}:      "hosts=[eN] peers=[etcd] (every other member) or a list of members: every byte both ways between the member and those peers dropped, on the toxiproxy proxy of each ordered pair (peer traffic: each member resolves its peers' names to its own pair proxies); its clients still reach it",
	{faults.HostCrash, OnEtcdLeader}:         "hosts=[etcd-leader]: kill -9 of the member leading etcd when the fault starts; restarted after duration_ms",
	{faults.HostPause, OnEtcdLeader}:         "hosts=[etcd-leader]: SIGSTOP of the leading member; SIGCONT after duration_ms",
	{faults.NetPartition, OnEtcdLeader}:      "hosts=[etcd-leader] peers=[etcd]: the leading member cut from the other members for duration_ms",
	{faults.NetPartition, OnS3Path}:          "hosts=[tN] peers=[s3]: every byte between the territory and the S3 server dropped (its toxiproxy proxy in front of S3) for duration_ms",
	{faults.NetDegrade, OnS3Path}:            "hosts=[tN] peers=[s3]: extra_ms of latency each way and/or bandwidth_kbps on the territory's S3 path for duration_ms (drop, duplicate, reorder and spike are refused: TCP hides them)",
	{faults.BlobSlow, OnEveryPath}:           "extra_ms of latency each way on every territory's S3 path for duration_ms",
}

// KindSupported reports whether sim chaos makes k real on some target.
func KindSupported(k faults.Kind) bool {
	for p := range Supported {
		if p.Kind == k {
			return true
		}
	}
	return false
}

// S3Peer is the S3 server's name in a fault schedule's peers.
const S3Peer = "s3"

// PulsarPeer is the Pulsar broker's name in a fault schedule's peers.
const PulsarPeer = "pulsar"

// refusals say why a kind cannot be made real here.
var refusals = map[faults.Kind]string{
	faults.NetPartitionOneWay: "a one-way cut of a TCP connection is not a real fault (TCP needs both directions)",
	faults.ClockSkew:          "the processes read the host's real clock (CLOCK_REALTIME and CLOCK_MONOTONIC through the Go runtime's vDSO calls); moving it needs root (CAP_SYS_TIME) and would move the clock of every engineer's processes on this machine, and no per-process fake clock (libfaketime) is installed",
	faults.ClockDrift:         "the processes read the host's real clock (see clock.skew)",
	faults.ClockJump:          "the processes read the host's real clock (see clock.skew)",
	faults.LogBookieCrash:     "the Pulsar standalone is shared and runs its bookies in one JVM: one bookie cannot be killed alone",
	faults.LogBookieStall:     "the Pulsar standalone runs its bookies in one JVM: one bookie cannot be stalled alone",
	faults.LogAckLoss:         "Pulsar's acknowledgements cannot be dropped without a proxy on the broker path, which clients bypass (the broker's lookup answer names its own address)",
	faults.BlobErrors:         "the S3 server is shared and has no fault injection",
	faults.BlobAmbiguousPut:   "the S3 server is shared and has no fault injection",
	faults.BlobCorrupt:        "not built yet: it would overwrite a committed snapshot blob in the bucket",
	faults.DiskTornWrite:      "the processes write through the real file system, which tears no write on demand",
	faults.DiskCorruptRead:    "the processes read through the real file system, which corrupts no read on demand",
}

// TargetOf classifies a fault by its hosts and peers ("" if they name no
// single target).
func TargetOf(f faults.Fault) Target {
	if len(f.Hosts) == 0 {
		return OnEveryPath
	}
	var t Target
	for _, h := range f.Hosts {
		var ht Target
		switch {
		case h == ManagerHost:
			ht = OnManager
		case h == EtcdLeader:
			ht = OnEtcdLeader
		case memberIndex(h) >= 0:
			ht = OnEtcdMember
		case hostID(h) > 0 && h == fmt.Sprintf("t%d", hostID(h)):
			ht = OnTerritory
			if (f.Kind == faults.NetPartition || f.Kind == faults.NetDegrade) && slices.Equal(f.Peers, []string{S3Peer}) {
				ht = OnS3Path
			}
		default:
			return ""
		}
		if t != "" && ht != t {
			return ""
		}
		t = ht
	}
	return t
}

func refuse(f faults.Fault, why string) error {
	return fmt.Errorf("fault %s cannot be made real by sim chaos: %s", f, why)
}

// Refuse returns why a fault cannot be executed for real, or nil.
func Refuse(f faults.Fault) error {
	if why, ok := refusals[f.Kind]; ok {
		return refuse(f, why)
	}
	t := TargetOf(f)
	if _, ok := Supported[Plan{f.Kind, t}]; !ok {
		var on []string
		for p := range Supported {
			if p.Kind == f.Kind {
				on = append(on, string(p.Target))
			}
		}
		slices.Sort(on)
		if len(on) == 0 {
			return refuse(f, "unknown to sim chaos")
		}
		return refuse(f, fmt.Sprintf("%s is made real only on %s (hosts %v are %q)", f.Kind, strings.Join(on, ", "), f.Hosts, t))
	}
	if len(f.Hosts) > 1 && (t == OnEtcdMember || t == OnEtcdLeader || t == OnManager) {
		return refuse(f, "one etcd member or the manager per fault (two members down lose etcd's quorum)")
	}
	switch {
	case f.Kind == faults.NetPartition && (t == OnTerritory || t == OnManager) && !slices.Equal(f.Peers, []string{EtcdPeer}):
		return refuse(f, fmt.Sprintf("a partition of a territory or the manager is only made on its path to etcd (peers=[%s]) or to S3 (peers=[%s]): "+
			"Pulsar's broker advertises its own address, which clients dial directly, and territories reach each other directly", EtcdPeer, S3Peer))
	case f.Kind == faults.NetPartition && (t == OnEtcdMember || t == OnEtcdLeader):
		for _, p := range f.Peers {
			if p != EtcdPeer && (memberIndex(p) < 0 || slices.Contains(f.Hosts, p)) {
				return refuse(f, "an etcd member is partitioned from other members: peers=[etcd] (all) or e1..e3")
			}
		}
	case f.Kind == faults.NetDegrade:
		if f.DropPM != 0 || f.DuplicatePM != 0 || f.ReorderPM != 0 || f.SpikePM != 0 {
			return refuse(f, "drop, duplicate, reorder and spike are packet faults that TCP hides; only extra_ms and bandwidth_kbps are made real")
		}
		if f.ExtraMs <= 0 && f.BandwidthKBps <= 0 {
			return refuse(f, "net.degrade needs extra_ms or bandwidth_kbps")
		}
	}
	return nil
}

// Topology is what a schedule of the scenario may name.
func (s *Scenario) Topology() faults.Topology {
	top := faults.Topology{Bookies: 1}
	for i := 1; i <= s.Territories; i++ {
		top.Hosts = append(top.Hosts, fmt.Sprintf("t%d", i))
	}
	top.Hosts = append(top.Hosts, ManagerHost, EtcdPeer, EtcdLeader, S3Peer, PulsarPeer)
	for i := 1; i <= EtcdMembers; i++ {
		top.Hosts = append(top.Hosts, MemberName(i))
	}
	return top
}

// Check validates a schedule against the scenario and refuses what cannot be
// made real; faults on one host must not overlap, nor faults on etcd
// members (the leader included), and at most Territories-1 hosts may be
// lost.
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
			ft, gt := TargetOf(f), TargetOf(g)
			if g.EndMs() > f.AtMs && (ft == OnEtcdMember || ft == OnEtcdLeader) && (gt == OnEtcdMember || gt == OnEtcdLeader) {
				return fmt.Errorf("schedule entries %d and %d overlap on etcd members (etcd has %d: two faulty members lose its quorum): %s, %s", j, i, EtcdMembers, g, f)
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
	var lanes [3][]Plan
	if s.EveryPlan {
		for _, p := range s.Plans {
			lanes[p.lane()] = append(lanes[p.lane()], p)
		}
		for _, l := range lanes {
			r.Shuffle(len(l), func(i, j int) { l[i], l[j] = l[j], l[i] })
		}
	} else {
		for range s.Count {
			lanes[0] = append(lanes[0], s.Plans[r.IntN(len(s.Plans))])
		}
	}
	territories := s.Topology().Hosts[:s.Territories]
	alive := slices.Clone(territories)
	var sched faults.Schedule
	for lane, plans := range lanes {
		at := s.WarmupMs
		for _, p := range plans {
			f := faults.Fault{Kind: p.Kind, AtMs: at, DurationMs: s.MinDurMs + r.Int64N(s.MaxDurMs-s.MinDurMs+1)}
			switch p.Target {
			case OnTerritory:
				h := alive[r.IntN(len(alive))]
				f.Hosts = []string{h}
				if p.Kind == faults.HostLoss {
					alive = slices.DeleteFunc(slices.Clone(alive), func(x string) bool { return x == h })
				}
			case OnManager:
				f.Hosts = []string{ManagerHost}
			case OnEtcdMember:
				f.Hosts = []string{MemberName(1 + r.IntN(EtcdMembers))}
			case OnEtcdLeader:
				f.Hosts = []string{EtcdLeader}
			case OnS3Path:
				f.Peers = []string{S3Peer}
			}
			switch {
			case p.Kind == faults.HostLoss || p.Kind == faults.CoordSessionExpiry:
				f.DurationMs = 0
			case p.Kind == faults.NetPartition && p.Target != OnS3Path:
				f.Peers = []string{EtcdPeer}
			case p.Kind == faults.CoordSlow || p.Kind == faults.BlobSlow:
				f.ExtraMs = 50 + r.Int64N(151)
			case p.Kind == faults.NetDegrade:
				f.ExtraMs, f.BandwidthKBps = 20+r.Int64N(81), 16+r.Int64N(49)
			}
			if lane == 2 { // on a territory no other fault holds then, and never lost
				f.Hosts = nil
				for f.Hosts == nil {
					for _, i := range r.Perm(len(territories)) {
						h := territories[i]
						if !s.busy(sched, h, f.AtMs, f.EndMs()) {
							f.Hosts = []string{h}
							break
						}
					}
					if f.Hosts == nil {
						f.AtMs += 500
					}
				}
			}
			sched.Faults = append(sched.Faults, f)
			// A lost host's subgraphs move after the manager's host-loss period
			// (3 s) plus a claim: leave them that long.
			at = f.EndMs() + s.GapMs
			if p.Kind == faults.HostLoss || p.Kind == faults.CoordSessionExpiry {
				at += 4_000
			}
		}
	}
	sched.Sort()
	return sched, s.Check(sched)
}

// busy: a fault of sched acts on h between from and to, or loses h.
func (s *Scenario) busy(sched faults.Schedule, h string, from, to int64) bool {
	for _, g := range sched.Faults {
		if slices.Contains(g.Hosts, h) && (g.Kind == faults.HostLoss || (g.AtMs < to && g.EndMs() > from)) {
			return true
		}
	}
	return false
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

// defaultWorkload: about one operation in eight is a cross-subgraph connect
// (a handshake saga), and half the adjusts, prunes and synapse reads pair
// neurons of two subgraphs (a cross prune is an unlink saga).
var defaultWorkload = Workload{Clients: 4, Neurons: 24, OpTimeoutMs: 10_000, CrossPM: 500,
	Mix: Mix{Create: 10, Stimulate: 35, ReadNeuron: 25, Connect: 10, Adjust: 8, Prune: 4, ReadSynapse: 8, CrossConnect: 14}}

// Plans is every supported plan, sorted.
func Plans() []Plan {
	out := make([]Plan, 0, len(Supported))
	for p := range Supported {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Plan) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// soakPlans: the soak's cycles, kill -9 and SIGSTOP of territories, the
// manager, etcd members and etcd's leader.
var soakPlans = []Plan{
	{faults.HostCrash, OnTerritory}, {faults.HostPause, OnTerritory},
	{faults.HostCrash, OnManager}, {faults.HostPause, OnManager},
	{faults.HostCrash, OnEtcdMember}, {faults.HostPause, OnEtcdMember},
	{faults.HostCrash, OnEtcdLeader}, {faults.HostPause, OnEtcdLeader},
}

// Scenarios lists the chaos scenarios.
func Scenarios() []*Scenario {
	return []*Scenario{
		{Name: "short", Summary: "CI: one fault of every supported kind and target, in three lanes side by side (territories and manager; etcd members; S3 paths), on 3 territories and 6 subgraphs",
			Territories: 3, Subgraphs: 6, Workload: defaultWorkload, EveryPlan: true, Plans: Plans(),
			WarmupMs: 3_000, GapMs: 1_500, MinDurMs: 1_500, MaxDurMs: 3_000, Progress: progress, Policy: policy},
		{Name: "soak", Summary: "100 kill -9 (restart after 0.5-2 s) and SIGSTOP/SIGCONT (0.5-2 s) cycles, 1 s apart, of territories, the manager, etcd members and etcd's leader, on 3 territories and 6 subgraphs: about 5 minutes",
			Territories: 3, Subgraphs: 6, Workload: defaultWorkload, Plans: soakPlans, Count: 100,
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
