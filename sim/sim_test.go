package sim_test

import (
	"testing"
	"time"

	"territory/scenarios"
	"territory/sim"
)

func run(t *testing.T, name string, seed uint64, durationMs int64) *sim.Result {
	t.Helper()
	sc, err := scenarios.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sc.Config(seed, durationMs)
	if err != nil {
		t.Fatal(err)
	}
	res, err := sim.Run(cfg, seed, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestSameSeedSameTrace runs 20 seeds of each scenario twice: the trace hashes
// must match, and different seeds must give different traces.
func TestSameSeedSameTrace(t *testing.T) {
	seeds := uint64(20)
	durationMs := int64(20_000)
	if testing.Short() {
		seeds = 5
	}
	for _, sc := range scenarios.All() {
		t.Run(sc.Name, func(t *testing.T) {
			n, dur := seeds, durationMs
			if sc.MaxSeeds > 0 {
				// A big topology (scale): as many seeds as a swarm runs, and
				// only without -short (the swarm runs it).
				if testing.Short() {
					t.Skipf("%s: a seed costs minutes; the swarm and the full test run it", sc.Name)
				}
				n, dur = min(n, uint64(sc.MaxSeeds)), 3_000
			}
			seen := map[string]uint64{}
			for seed := uint64(1); seed <= n; seed++ {
				a := run(t, sc.Name, seed, dur)
				b := run(t, sc.Name, seed, dur)
				if a.Trace != b.Trace || a.Ops != b.Ops || a.Events != b.Events {
					t.Fatalf("seed %d: two runs differ: %s/%d/%d vs %s/%d/%d", seed, a.Trace, a.Ops, a.Events, b.Trace, b.Ops, b.Events)
				}
				if other, dup := seen[a.Trace]; dup {
					t.Fatalf("seeds %d and %d give the same trace %s", other, seed, a.Trace)
				}
				seen[a.Trace] = seed
				if !a.Pass {
					t.Errorf("seed %d failed: %s", seed, a.Line())
				}
			}
		})
	}
}

// TestFaultsChangeTheRun guards against a fault schedule that the world
// silently ignores: removing the schedule must change the trace.
func TestFaultsChangeTheRun(t *testing.T) {
	sc, _ := scenarios.Get("services")
	cfg, err := sc.Config(3, 20_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Schedule.Faults) == 0 {
		t.Fatal("services drew no faults")
	}
	with, err := sim.Run(cfg, 3, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Schedule.Faults = nil
	without, err := sim.Run(cfg, 3, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if with.Trace == without.Trace {
		t.Fatal("the fault schedule did not change the execution")
	}
}

func BenchmarkBasicScenario(b *testing.B) {
	sc, _ := scenarios.Get("basic")
	var simMs int64
	var events uint64
	for i := 0; i < b.N; i++ {
		seed := uint64(i + 1)
		cfg, err := sc.Config(seed, 0)
		if err != nil {
			b.Fatal(err)
		}
		w, err := sim.NewWorld(cfg, seed)
		if err != nil {
			b.Fatal(err)
		}
		out, err := w.Run()
		if err != nil {
			b.Fatal(err)
		}
		simMs += out.SimMs
		events += out.Events
	}
	b.ReportMetric(float64(simMs)/1000/b.Elapsed().Seconds(), "sim-s/wall-s")
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
