package chaos

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"territory/faults"
	"territory/model"
)

// step is a fault's start or its heal on the run's timeline.
type step struct {
	atMs int64
	idx  int
	heal bool
}

// execute runs a checked schedule against the cluster on the run's clock
// (t0 is the workload's start): each fault at its at_ms, each heal at its
// end. It returns what it did; an error (a fault that could not be applied
// or healed) ends the run without a verdict: a fault is never skipped.
func execute(cl *Cluster, sched faults.Schedule, t0 time.Time, logf func(string, ...any)) ([]FaultRecord, error) {
	recs := make([]FaultRecord, len(sched.Faults))
	var steps []step
	for i, f := range sched.Faults {
		recs[i] = FaultRecord{Fault: f, What: Supported[Plan{f.Kind, TargetOf(f)}], Target: TargetOf(f)}
		steps = append(steps, step{atMs: f.AtMs, idx: i})
		if heals(f.Kind) {
			steps = append(steps, step{atMs: f.EndMs(), idx: i, heal: true})
		}
	}
	sort.SliceStable(steps, func(a, b int) bool {
		if steps[a].atMs != steps[b].atMs {
			return steps[a].atMs < steps[b].atMs
		}
		return steps[a].heal && !steps[b].heal // a heal before a start at the same instant
	})
	var recovering sync.WaitGroup // recovery timers write into recs: wait for them before returning
	defer recovering.Wait()
	for _, s := range steps {
		if d := time.Until(t0.Add(time.Duration(s.atMs) * time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
		rec := &recs[s.idx]
		f := rec.Fault
		t := time.Now()
		var err error
		if s.heal {
			err = heal(cl, f, rec, t0, &recovering)
			rec.HealedMs, rec.HealMs = ms(time.Since(t0)), ms(time.Since(t))
			logf("healed  %s (%.0f ms)", f, rec.HealMs)
		} else {
			err = apply(cl, f, rec, t0, &recovering)
			rec.AppliedMs, rec.ApplyMs = ms(t.Sub(t0)), ms(time.Since(t))
			logf("applied %s (%.0f ms)", f, rec.ApplyMs)
		}
		if err != nil {
			rec.Err = err.Error()
			return recs, fmt.Errorf("fault %s: %w", f, err)
		}
	}
	return recs, nil
}

func heals(k faults.Kind) bool { return k != faults.HostLoss && k != faults.CoordSessionExpiry }

// member resolves a fault's etcd member (etcd-leader: the current leader).
func member(cl *Cluster, f faults.Fault, rec *FaultRecord) (int, error) {
	if rec.Member != "" {
		return memberIndex(rec.Member), nil
	}
	i := memberIndex(f.Hosts[0])
	if f.Hosts[0] == EtcdLeader {
		co, err := cl.Coord()
		if err != nil {
			return -1, err
		}
		deadline := time.Now().Add(10 * time.Second)
		for i = cl.etcd.leader(co.Client()); i < 0; i = cl.etcd.leader(co.Client()) {
			if time.Now().After(deadline) {
				return -1, fmt.Errorf("no etcd leader within 10 s to fault")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	rec.Member = MemberName(i + 1)
	return i, nil
}

// peersOf is the member indices an etcd member's partition cuts it from.
func peersOf(f faults.Fault, i int) []int {
	var out []int
	for j := range EtcdMembers {
		if j != i && (slices.Contains(f.Peers, EtcdPeer) || slices.Contains(f.Peers, MemberName(j+1))) {
			out = append(out, j)
		}
	}
	return out
}

// stopped reports whether a process is in the stopped state (SIGSTOP took).
func stopped(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: comm may hold spaces; the state follows the last ')'.
	s := string(b)
	k := strings.LastIndexByte(s, ')')
	return k >= 0 && k+2 < len(s) && s[k+2] == 'T'
}

// verifyStopped checks that each paused process is stopped.
func verifyStopped(procs []*Proc) (string, error) {
	for _, p := range procs {
		ok := false
		for range 40 {
			if ok = stopped(p.Pid()); ok {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if !ok {
			return "", fmt.Errorf("%s (pid %d) is not stopped after SIGSTOP", p.Name, p.Pid())
		}
	}
	return "stopped (state T in /proc)", nil
}

// verifyExited checks that each killed process has exited.
func verifyExited(procs []*Proc) (string, error) {
	for _, p := range procs {
		if p.Running() {
			return "", fmt.Errorf("%s (pid %d) still runs after SIGKILL", p.Name, p.Pid())
		}
	}
	return "exited after SIGKILL", nil
}

func apply(cl *Cluster, f faults.Fault, rec *FaultRecord, t0 time.Time, wg *sync.WaitGroup) error {
	for _, h := range f.Hosts {
		if cl.Lost(h) {
			return fmt.Errorf("%s was lost", h)
		}
	}
	rec.Target = TargetOf(f)
	var err error
	switch rec.Target {
	case OnEtcdMember, OnEtcdLeader:
		return applyMember(cl, f, rec, wg)
	case OnS3Path, OnEveryPath:
		switch f.Kind {
		case faults.NetPartition:
			err = each(f.Hosts, cl.PartitionS3)
		case faults.NetDegrade:
			err = cl.DegradeS3(f.Hosts, f.ExtraMs, f.BandwidthKBps)
		case faults.BlobSlow:
			err = cl.DegradeS3(cl.Hosts, f.ExtraMs, 0)
		case faults.CoordSlow:
			err = cl.SlowEtcd(f.ExtraMs)
		default:
			return Refuse(f)
		}
		rec.Verified = "toxics in place"
		return err
	}
	procs := func() []*Proc {
		var ps []*Proc
		for _, h := range f.Hosts {
			ps = append(ps, cl.Proc(h))
		}
		return ps
	}
	switch f.Kind {
	case faults.HostCrash:
		ps := procs()
		if err := each(f.Hosts, cl.Kill); err != nil {
			return err
		}
		rec.Verified, err = verifyExited(ps)
		return err
	case faults.HostPause:
		if err := each(f.Hosts, cl.Pause); err != nil {
			return err
		}
		rec.Verified, err = verifyStopped(procs())
		return err
	case faults.HostLoss:
		held := map[model.SubgraphID]bool{}
		for _, h := range f.Hosts {
			for sg := range Operational(cl.Proc(h).Records()) {
				held[sg] = true
			}
		}
		ps := procs()
		kill := time.Now()
		if err := each(f.Hosts, cl.Lose); err != nil {
			return err
		}
		if rec.Verified, err = verifyExited(ps); err != nil {
			return err
		}
		for _, h := range f.Hosts {
			if _, err := os.Stat(cl.DataDir(h)); !os.IsNotExist(err) {
				return fmt.Errorf("%s's data dir still there after its loss: %v", h, err)
			}
		}
		rec.Verified += ", data dir gone"
		wg.Go(func() { rec.RecoveryMs = waitServed(cl, held, kill, f.Hosts) })
		return nil
	case faults.CoordUnreachable:
		rec.Verified = "proxies to every etcd member stopped"
		return each(f.Hosts, cl.CutEtcd)
	case faults.NetPartition:
		rec.Verified = "toxics in place"
		return each(f.Hosts, cl.PartitionEtcd)
	case faults.CoordSessionExpiry:
		rec.Verified = "lease revoked"
		return each(f.Hosts, cl.ExpireSession)
	}
	return Refuse(f)
}

// applyMember faults one etcd member (the leader resolved now) and times the
// election of another leader when the faulted member led.
func applyMember(cl *Cluster, f faults.Fault, rec *FaultRecord, wg *sync.WaitGroup) error {
	co, err := cl.Coord()
	if err != nil {
		return err
	}
	i, err := member(cl, f, rec)
	if err != nil {
		return err
	}
	led := cl.etcd.leader(co.Client()) == i
	rec.WasLeader = led
	p := cl.etcd.proc(i)
	t := time.Now()
	switch f.Kind {
	case faults.HostCrash:
		if err := cl.etcd.kill(i); err != nil {
			return err
		}
		rec.Verified, err = verifyExited([]*Proc{p})
	case faults.HostPause:
		if err := cl.etcd.pause(i); err != nil {
			return err
		}
		rec.Verified, err = verifyStopped([]*Proc{p})
	case faults.NetPartition:
		peers := peersOf(f, i)
		if len(peers) == 0 {
			return fmt.Errorf("partition of %s from no member", rec.Member)
		}
		err = cl.etcd.partition(i, peers)
		rec.Verified = fmt.Sprintf("toxics on %d pair proxies", 2*len(peers))
	default:
		return Refuse(f)
	}
	if err != nil {
		return err
	}
	if led && (f.Kind != faults.NetPartition || len(peersOf(f, i)) == EtcdMembers-1) {
		wg.Go(func() { rec.LeaderMs = cl.etcd.waitLeader(co.Client(), i, false, t, 30*time.Second) })
	}
	return nil
}

func healMember(cl *Cluster, f faults.Fault, rec *FaultRecord, t0 time.Time, wg *sync.WaitGroup) error {
	co, err := cl.Coord()
	if err != nil {
		return err
	}
	i := memberIndex(rec.Member)
	switch f.Kind {
	case faults.HostCrash:
		err = cl.etcd.restart(i)
	case faults.HostPause:
		err = cl.etcd.resume(i)
	case faults.NetPartition:
		err = cl.etcd.unpartition(i, peersOf(f, i))
	}
	if err != nil {
		return err
	}
	healed := time.Now()
	wg.Go(func() { rec.RecoveryMs = cl.etcd.waitLeader(co.Client(), -1, true, healed, 30*time.Second) })
	return nil
}

func heal(cl *Cluster, f faults.Fault, rec *FaultRecord, t0 time.Time, wg *sync.WaitGroup) error {
	switch rec.Target {
	case OnEtcdMember, OnEtcdLeader:
		return healMember(cl, f, rec, t0, wg)
	case OnS3Path, OnEveryPath:
		switch f.Kind {
		case faults.NetPartition:
			return each(f.Hosts, cl.HealS3)
		case faults.NetDegrade:
			return cl.UndegradeS3(f.Hosts, f.ExtraMs, f.BandwidthKBps)
		case faults.BlobSlow:
			return cl.UndegradeS3(cl.Hosts, f.ExtraMs, 0)
		case faults.CoordSlow:
			return cl.HealSlow()
		}
		return nil
	}
	switch f.Kind {
	case faults.HostCrash:
		killed := t0.Add(time.Duration(rec.AppliedMs * float64(time.Millisecond)))
		if err := each(f.Hosts, cl.Restart); err != nil {
			return err
		}
		if rec.Target == OnManager {
			wg.Go(func() { rec.RecoveryMs = waitManager(cl, killed) })
		} else {
			wg.Go(func() { rec.RecoveryMs = waitOwnOperational(cl, f.Hosts, killed) })
		}
		return nil
	case faults.HostPause:
		return each(f.Hosts, cl.Resume)
	case faults.CoordUnreachable:
		return each(f.Hosts, cl.HealEtcd)
	case faults.NetPartition:
		return each(f.Hosts, cl.HealPartition)
	}
	return nil
}

// waitManager: from the manager's kill until its new process runs the
// control plane (elected; -1 if not within 30 s).
func waitManager(cl *Cluster, killed time.Time) float64 {
	_, err := cl.Proc(ManagerHost).WaitRecords(30*time.Second, "election", func(rs []map[string]any) bool {
		for _, r := range rs {
			if strings.Contains(Str(r, "msg"), "elected") {
				return true
			}
		}
		return false
	})
	if err != nil {
		return -1
	}
	return ms(time.Since(killed))
}

func each(hosts []string, fn func(string) error) error {
	for _, h := range hosts {
		if err := fn(h); err != nil {
			return err
		}
	}
	return nil
}

// waitOwnOperational: from the kill until each restarted process serves a
// subgraph again (-1 if not within 30 s). The routes may have moved its
// subgraphs away meanwhile; then it serves none and this reports -1.
func waitOwnOperational(cl *Cluster, hosts []string, killed time.Time) float64 {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		all := true
		for _, h := range hosts {
			if len(Operational(cl.Proc(h).Records())) == 0 {
				all = false
			}
		}
		if all {
			return ms(time.Since(killed))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return -1
}

// waitServed: from a loss until every subgraph the lost hosts served is
// operational at another process (-1 if not within 30 s).
func waitServed(cl *Cluster, held map[model.SubgraphID]bool, lost time.Time, gone []string) float64 {
	marks := map[string]int{}
	for _, h := range cl.Hosts {
		if !slices.Contains(gone, h) {
			marks[h] = len(cl.Proc(h).Records())
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		served := map[model.SubgraphID]bool{}
		for h, from := range marks {
			rs := cl.Proc(h).Records()
			for _, r := range rs[min(from, len(rs)):] {
				if Str(r, "msg") == "operational" {
					served[model.SubgraphID(Num(r, "subgraph"))] = true
				}
			}
		}
		all := true
		for sg := range held {
			all = all && served[sg]
		}
		if all {
			return ms(time.Since(lost))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return -1
}
