package chaos

import (
	"fmt"
	"slices"
	"sort"
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
		recs[i] = FaultRecord{Fault: f, What: Supported[f.Kind]}
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

func apply(cl *Cluster, f faults.Fault, rec *FaultRecord, t0 time.Time, wg *sync.WaitGroup) error {
	for _, h := range f.Hosts {
		if cl.Lost(h) {
			return fmt.Errorf("%s was lost", h)
		}
	}
	switch f.Kind {
	case faults.HostCrash:
		return each(f.Hosts, cl.Kill)
	case faults.HostPause:
		return each(f.Hosts, cl.Pause)
	case faults.HostLoss:
		held := map[model.SubgraphID]bool{}
		for _, h := range f.Hosts {
			for sg := range Operational(cl.Proc(h).Records()) {
				held[sg] = true
			}
		}
		kill := time.Now()
		if err := each(f.Hosts, cl.Lose); err != nil {
			return err
		}
		wg.Go(func() { rec.RecoveryMs = waitServed(cl, held, kill, f.Hosts) })
		return nil
	case faults.CoordUnreachable:
		for _, h := range f.Hosts {
			cl.CutEtcd(h)
		}
		return nil
	case faults.NetPartition:
		return each(f.Hosts, cl.PartitionEtcd)
	case faults.CoordSlow:
		return cl.SlowEtcd(f.ExtraMs)
	case faults.CoordSessionExpiry:
		return each(f.Hosts, cl.ExpireSession)
	}
	return Refuse(f)
}

func heal(cl *Cluster, f faults.Fault, rec *FaultRecord, t0 time.Time, wg *sync.WaitGroup) error {
	switch f.Kind {
	case faults.HostCrash:
		killed := t0.Add(time.Duration(rec.AppliedMs * float64(time.Millisecond)))
		if err := each(f.Hosts, cl.Restart); err != nil {
			return err
		}
		wg.Go(func() { rec.RecoveryMs = waitOwnOperational(cl, f.Hosts, killed) })
		return nil
	case faults.HostPause:
		return each(f.Hosts, cl.Resume)
	case faults.CoordUnreachable:
		return each(f.Hosts, cl.HealEtcd)
	case faults.NetPartition:
		return each(f.Hosts, cl.HealPartition)
	case faults.CoordSlow:
		return cl.HealSlow()
	}
	return nil
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
