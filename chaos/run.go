package chaos

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"territory/faults"
	"territory/linearizability"
	"territory/model"
	"territory/runtime/daemon"
	"territory/runtime/driver"
	"territory/sim"
	"territory/sim/invariants"
)

// ReplayNote is what every chaos report says about replaying it.
const ReplayNote = "A chaos replay re-runs the same fault schedule and the same seeded workload (each client's operations) against a fresh real cluster; " +
	"it does not replay the interleaving: real processes, networks and services schedule themselves, so a replay may pass where the run failed, or fail differently."

// Options configure one chaos run.
type Options struct {
	Scenario string
	Seed     uint64
	// Schedule, if set, replaces the scenario's drawn schedule (a replay
	// file's, or a hand-written one); it is checked and refused the same way.
	Schedule   *faults.Schedule
	Bin        string        // territoryd binary; "" builds it from this module into WorkDir
	WorkDir    string        // processes' configs, logs and data; "" a fresh temporary directory
	LinTimeout time.Duration // bound on porcupine (0: 60 s)
	Log        io.Writer     // progress lines (nil: discarded)
}

// FaultRecord is one fault as it was executed.
type FaultRecord struct {
	Fault      faults.Fault `json:"fault"`
	What       string       `json:"what"`
	AppliedMs  float64      `json:"applied_ms"`            // on the run's monotonic clock
	HealedMs   float64      `json:"healed_ms,omitempty"`   // when its heal finished (0: no heal)
	ApplyMs    float64      `json:"apply_wall_ms"`         // how long applying it took
	HealMs     float64      `json:"heal_wall_ms"`          // how long healing it took (a restart: until listening)
	RecoveryMs float64      `json:"recovery_ms,omitempty"` // kill, restart or loss to its subgraphs operational again; the manager: kill to elected again; an etcd member: heal to every member naming one leader (-1: not within 30 s)
	Target     Target       `json:"target"`
	Member     string       `json:"member,omitempty"`     // the etcd member faulted (etcd-leader: the one leading then)
	WasLeader  bool         `json:"was_leader,omitempty"` // the etcd member led when the fault started
	LeaderMs   float64      `json:"leader_ms,omitempty"`  // from the fault on a leading member to a majority naming another leader (-1: not within 30 s)
	Verified   string       `json:"verified,omitempty"`   // what was checked to show the fault took (a killed process exited, a paused one is stopped, ...)
	Err        string       `json:"error,omitempty"`
}

// Result is one checked chaos run: report.json.
type Result struct {
	Mode          string                  `json:"mode"` // "chaos"
	Scenario      string                  `json:"scenario"`
	Seed          uint64                  `json:"seed"`
	Pass          bool                    `json:"pass"`
	ReplayNote    string                  `json:"replay_note"`
	Linearizable  linearizability.Verdict `json:"linearizable"`
	ViolatingKeys []string                `json:"violating_keys,omitempty"`
	LogCheck      string                  `json:"logcheck"`
	LogViolations []string                `json:"log_violations,omitempty"`
	LogResolved   int                     `json:"log_resolved_unknown"`
	LogVanished   int                     `json:"log_vanished_unknown"`
	Invariants    string                  `json:"invariants"`
	Violations    []invariants.Violation  `json:"violations"`
	Ops           int                     `json:"ops"`
	UnknownOps    int                     `json:"unknown_ops"`
	NotFinalOps   int                     `json:"not_final_ops"` // final busy/unavailable answers (kept as unknown)
	AckedWrites   int                     `json:"acked_writes"`
	FinalReads    int                     `json:"final_reads"`
	LogEntries    int                     `json:"log_entries"`
	TopicMessages int                     `json:"topic_messages"` // raw messages of the streams' topics (data, open, attach)
	Decays        int                     `json:"decays"`
	// CrossConnects: the clients' cross-subgraph connects (sagas), of which
	// CrossUnknown ended without a final answer; Sagas: what the sagas did,
	// from the folds of the real logs.
	CrossConnects int           `json:"cross_connects"`
	CrossUnknown  int           `json:"cross_unknown"`
	Sagas         sim.SagaStats `json:"sagas"`
	// SnapshotsChecked: COMMITTED snapshots read from etcd and the bucket and
	// checked against the logs; SnapshotBlobs: blobs under the run's prefix.
	SnapshotsChecked int               `json:"snapshots_checked"`
	SnapshotBlobs    int               `json:"snapshot_blobs"`
	Progress         sim.ProgressStats `json:"progress"`
	Faults           []FaultRecord     `json:"faults"`
	Applied          map[string]int    `json:"applied"` // faults applied and verified, by kind/target
	Schedule         faults.Schedule   `json:"schedule"`
	Workload         Workload          `json:"workload"`
	Territories      int               `json:"territories"`
	Subgraphs        uint32            `json:"subgraphs"`
	StartupMs        float64           `json:"startup_ms"`  // cluster start to every territory operational
	WorkloadMs       float64           `json:"workload_ms"` // the workload's run, faults included
	ReadBackMs       float64           `json:"readback_ms"` // final reads and reading the logs from Pulsar
	CheckMs          float64           `json:"check_ms"`
	WallMs           float64           `json:"wall_ms"`
	LoadBefore       string            `json:"load_before"` // /proc/loadavg
	LoadAfter        string            `json:"load_after"`
	WorkDir          string            `json:"work_dir"`
	Error            string            `json:"error,omitempty"` // the run could not reach its verdict

	lin linearizability.Result
}

// Line is the summary line, in the simulator's format.
func (r *Result) Line() string {
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	return fmt.Sprintf("%s chaos scenario=%s seed=%d linearizable=%s invariants=%s logcheck=%s ops=%d unknown=%d connects=%d (unknown %d, committed %d, compensated %d) faults=%d wall=%.1fs",
		verdict, r.Scenario, r.Seed, r.Linearizable, r.Invariants, r.LogCheck, r.Ops, r.UnknownOps, r.CrossConnects, r.CrossUnknown, r.Sagas.Committed, r.Sagas.Compensated, len(r.Faults), r.WallMs/1000)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// Run executes one chaos run and checks it. An error means no verdict (the
// cluster did not start, a fault could not be applied, the logs could not
// be read); a violation is a Result with Pass false.
func Run(o Options) (*Result, error) {
	start := time.Now()
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "[chaos %6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
		}
	}
	sc, err := Get(o.Scenario)
	if err != nil {
		return nil, err
	}
	var sched faults.Schedule
	if o.Schedule != nil {
		sched = *o.Schedule
		sched.Sort()
		if err := sc.Check(sched); err != nil {
			return nil, err
		}
	} else if sched, err = sc.Schedule(o.Seed); err != nil {
		return nil, err
	}
	svc, err := ServicesFromEnv()
	if err != nil {
		return nil, err
	}
	if o.LinTimeout == 0 {
		o.LinTimeout = 60 * time.Second
	}
	dir := o.WorkDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "territory-chaos-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	} else if err := clearClusterState(dir); err != nil {
		return nil, err
	}
	r := &Result{Mode: "chaos", Scenario: sc.Name, Seed: o.Seed, ReplayNote: ReplayNote, Schedule: sched, Workload: sc.Workload,
		Territories: sc.Territories, Subgraphs: sc.Subgraphs, LoadBefore: loadavg(), WorkDir: dir, Violations: []invariants.Violation{}}
	bin := o.Bin
	if bin == "" {
		logf("building territoryd")
		if bin, err = BuildTerritoryd(dir); err != nil {
			return nil, err
		}
	}
	memberBin, err := BuildEtcdMember(dir)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s-%d-%d", sc.Name, o.Seed, time.Now().UnixNano()%1e10)
	logf("starting %d etcd members, %d territories and the manager (topics %s/%s-*)", EtcdMembers, sc.Territories, Namespace, "chaos-"+name)
	t := time.Now()
	cl, err := StartCluster(bin, memberBin, dir, name, svc, sc.Territories, sc.Subgraphs, PolicySection(sc.Policy))
	if err != nil {
		return nil, fmt.Errorf("start the cluster: %w", err)
	}
	defer cl.Close()
	r.StartupMs = ms(time.Since(t))
	co, err := cl.Coord()
	if err != nil {
		return nil, err
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	pol, found, err := daemon.ReadPolicy(pctx, co)
	pcancel()
	if err != nil || !found {
		return nil, fmt.Errorf("read the cluster's policy: found=%v %v", found, err)
	}
	logf("cluster up in %.1fs; %d faults scheduled", r.StartupMs/1000, len(sched.Faults))

	var clients []*client
	for i := 0; i < sc.Workload.Clients; i++ {
		session := driver.NewSession()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := daemon.DialClientSession(ctx, cl.MgrAddr, nil, nil, nil, session)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("client %d: %w", i, err)
		}
		defer c.Close()
		clients = append(clients, &client{index: i, name: fmt.Sprintf("c%d", i+1), session: session, c: c,
			gen: newGenerator(o.Seed, i, sc.Workload, sc.Subgraphs)})
	}

	t0 := time.Now()
	h := newHistory(t0, sc.Subgraphs)
	stop := make(chan struct{})
	done := make(chan struct{})
	timeout := time.Duration(sc.Workload.OpTimeoutMs) * time.Millisecond
	go func() {
		runClients(h, clients, timeout, stop)
		close(done)
	}()
	recs, ferr := execute(cl, sched, t0, logf)
	r.Faults = recs
	if ferr == nil {
		r.Applied, ferr = applied(sched, recs)
	}
	endMs := sc.IssueEndMs(sched)
	if d := time.Until(t0.Add(time.Duration(endMs) * time.Millisecond)); d > 0 && ferr == nil {
		time.Sleep(d)
	}
	close(stop)
	<-done
	r.WorkloadMs = ms(time.Since(t0))
	if ferr != nil {
		return r, ferr
	}
	logf("workload stopped after %.1fs: %d operations", r.WorkloadMs/1000, h.ops)

	// Let what a timed-out operation left in flight settle before the sweep:
	// the sweep is compared with the fold of the whole log read after it.
	time.Sleep(2 * time.Second)
	t = time.Now()
	bctx, bcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer bcancel()
	bucket, err := openBucket(bctx, svc, cl.S3Prefix)
	if err != nil {
		return r, fmt.Errorf("open the bucket: %w", err)
	}
	defer bucket.Close()
	listedAt := time.Now()
	keysEarly, err := listSnapshotBlobs(bctx, bucket)
	if err != nil {
		return r, err
	}
	finals := finalSweep(h, clients[0], sc, timeout)
	r.FinalReads = len(finals)
	// The snapshots before the logs: a snapshot committed by then is of a
	// state the logs read afterwards must reach (heartbeats keep appending).
	snaps, err := readSnapshots(bctx, cl, bucket, keysEarly, listedAt)
	if err != nil {
		return r, err
	}
	lctx, lcancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer lcancel()
	reader, err := NewLogReader(lctx, svc, Namespace, cl.Prefix)
	if err != nil {
		return r, fmt.Errorf("open the logs: %w", err)
	}
	logs := map[model.SubgraphID][]model.LogEntry{}
	var fencing []invariants.Violation
	for sg := model.SubgraphID(0); uint32(sg) < sc.Subgraphs; sg++ {
		entries, _, err := ReadEvents(lctx, reader, sg)
		if err != nil {
			reader.Close()
			return r, err
		}
		logs[sg] = entries
		msgs, err := ScanTopic(lctx, svc.PulsarURL, reader.Topic(uint32(sg)))
		if err != nil {
			reader.Close()
			return r, err
		}
		r.TopicMessages += len(msgs)
		fencing = append(fencing, topicFencing(h.nowUs(), sg, msgs)...)
	}
	reader.Close()
	r.ReadBackMs = ms(time.Since(t))

	t = time.Now()
	prog := sim.ProgressRecord{Limits: sc.Progress, Faulty: len(sched.Faults) > 0, Down: map[string][]sim.Span{},
		StartUs: (sched.LastEndMs() + sc.Progress.BoundMs) * 1000, EndUs: endMs * 1000, NowUs: h.nowUs()}
	for _, c := range clients {
		prog.Clients = append(prog.Clients, c.name)
	}
	v, err := check(h, logs, finals, pol, sc.Subgraphs, o.LinTimeout, prog, sagaConfig(sc.Subgraphs, sc.Progress.BoundMs, r.Faults), r.Faults)
	if err != nil {
		return r, err
	}
	r.CheckMs = ms(time.Since(t))
	r.lin = v.lin
	r.Linearizable, r.ViolatingKeys = v.lin.Verdict, v.lin.ViolatingKeys
	r.LogCheck, r.LogResolved, r.LogVanished = v.log.LogSummary(), v.log.Resolved, v.log.Vanished
	for i, lv := range v.log.Violations {
		if i == 20 {
			r.LogViolations = append(r.LogViolations, fmt.Sprintf("... and %d more", len(v.log.Violations)-i))
			break
		}
		r.LogViolations = append(r.LogViolations, lv.String())
	}
	r.Violations = append(r.Violations, v.violations...)
	r.Violations = append(r.Violations, fencing...)
	sv, checked := checkSnapshots(h.nowUs(), snaps, logs, sc.Subgraphs)
	r.Violations = append(r.Violations, sv...)
	r.SnapshotsChecked, r.SnapshotBlobs = checked, len(snaps.keys)
	invariants.Sort(r.Violations)
	r.Invariants = invariantNames(r.Violations)
	r.Ops, r.UnknownOps, r.NotFinalOps, r.AckedWrites = h.ops, h.unknown, h.notFinal, h.acked.Count()
	r.LogEntries, r.Decays, r.Progress = v.entries, v.decays, v.progress
	r.CrossConnects, r.CrossUnknown, r.Sagas = v.crossConnects, v.crossUnknown, v.sagas
	r.Pass = r.Linearizable == linearizability.VerdictOK && v.log.Verdict == linearizability.VerdictOK && len(r.Violations) == 0
	r.LoadAfter = loadavg()
	r.WallMs = ms(time.Since(start))
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// finalSweep reads every neuron of the key space and every synapse the
// workload can make (across subgraphs too, if it makes cross ones), one at a time, after the workload stopped: recorded in
// the history like any operation, and compared with the fold of the log.
func finalSweep(h *History, cl *client, sc *Scenario, timeout time.Duration) []finalRead {
	var reqs []model.Request
	for n := 1; n <= sc.Workload.Neurons; n++ {
		reqs = append(reqs, model.Request{Op: model.OpReadNeuron, Neuron: model.NeuronID(n)})
	}
	for pre := 1; pre <= sc.Workload.Neurons; pre++ {
		for post := 1; post <= sc.Workload.Neurons; post++ {
			a, b := model.NeuronID(pre), model.NeuronID(post)
			cross := sc.Workload.Mix.CrossConnect > 0 || sc.Workload.CrossPM > 0
			if pre != post && (cross || model.SubgraphOf(a, sc.Subgraphs) == model.SubgraphOf(b, sc.Subgraphs)) {
				reqs = append(reqs, model.Request{Op: model.OpReadSynapse, Pre: a, Post: b})
			}
		}
	}
	out := make([]finalRead, 0, len(reqs))
	for _, req := range reqs {
		req.ID = cl.id()
		res, err := h.do(cl.c, cl.index, cl.name, req, timeout)
		out = append(out, finalRead{req: req, res: res, ok: err == nil && res.Status.Final()})
	}
	return out
}

// Linearizability is porcupine's full result, for history.html.
func (r *Result) Linearizability() linearizability.Result { return r.lin }

// ResultPath is where WriteReports puts report.json.
func ResultPath(dir string) string { return filepath.Join(dir, "report.json") }

// applied counts the faults that were applied and verified, by kind/target,
// and fails unless every fault of the schedule is among them.
func applied(sched faults.Schedule, recs []FaultRecord) (map[string]int, error) {
	want, got := map[string]int{}, map[string]int{}
	for _, f := range sched.Faults {
		want[Plan{f.Kind, TargetOf(f)}.String()]++
	}
	for _, r := range recs {
		if r.Err == "" && r.Verified != "" {
			got[Plan{r.Fault.Kind, r.Target}.String()]++
		}
	}
	for k, n := range want {
		if got[k] != n {
			return got, fmt.Errorf("fault %s: %d scheduled, %d applied and verified", k, n, got[k])
		}
	}
	return got, nil
}

// clearClusterState removes what an earlier run left in a reused work
// directory, in one place before anything starts: etcd's member directories
// (an older cluster's membership and bootstrapped routes naming other
// topics: the manager does not bootstrap again, the territories never
// claim), the territories' data directories and the process logs. Only
// names the cluster itself writes are removed.
func clearClusterState(dir string) error {
	for _, pat := range []string{"etcd*", "data-*", "*.log"} {
		old, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return err
		}
		for _, p := range old {
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("clear the work directory: %w", err)
			}
		}
	}
	return nil
}
