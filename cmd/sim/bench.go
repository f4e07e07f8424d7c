package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"territory/scenarios"
	"territory/sim"
)

// benchFigures is one scenario's measurement over its seeds.
type benchFigures struct {
	seeds     int
	simMs     int64
	events    uint64
	simWall   time.Duration
	checkWall time.Duration
	allocB    uint64    // bytes allocated during the runs
	heapSysB  uint64    // heap obtained from the OS: a high-water mark of the live heap
	pausesMs  []float64 // migrations' write pauses, virtual time
	flips     int
}

func benchCmd() *cobra.Command {
	var name string
	var seeds int
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure simulation speed: events per second, simulated seconds per wall second, memory",
		Long: `Measure simulation speed per scenario: events per wall second and simulated
seconds per wall second (of the simulation alone, then with the linearizability
check), the bytes allocated per event, and the heap's high-water mark.
--scenario all measures every scenario; a scenario with a seed cap in the swarm
(scale) runs at most that many seeds here too. Figures are wall-clock ratios:
compare them within one run on one machine, and read the load beside them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if seeds <= 0 {
				return fmt.Errorf("bench: --seeds must be positive")
			}
			if duration < 0 || (duration > 0 && duration < time.Second) {
				return fmt.Errorf("bench: --duration %s must be at least 1s", duration)
			}
			var list []scenarios.Scenario
			if name == "all" {
				list = scenarios.All()
			} else {
				sc, err := scenarios.Get(name)
				if err != nil {
					return err
				}
				list = []scenarios.Scenario{sc}
			}
			out := cmd.OutOrStdout()
			for _, sc := range list {
				n := seeds
				if sc.MaxSeeds > 0 && name == "all" {
					n = min(n, sc.MaxSeeds)
				}
				f, err := benchScenario(sc, n, duration.Milliseconds())
				if err != nil {
					return err
				}
				printBench(out, sc.Name, f)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "scenario", "basic", "scenario to measure, or all")
	cmd.Flags().IntVar(&seeds, "seeds", 10, "number of seeds (1..N)")
	cmd.Flags().DurationVar(&duration, "duration", 0, "workload duration in simulated time (default: the scenario's)")
	return cmd
}

func benchScenario(sc scenarios.Scenario, seeds int, durationMs int64) (benchFigures, error) {
	f := benchFigures{seeds: seeds}
	var ms runtime.MemStats
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		cfg, err := sc.Config(seed, durationMs)
		if err != nil {
			return f, err
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		res, err := sim.Run(cfg, seed, time.Minute)
		if err != nil {
			return f, err
		}
		runtime.ReadMemStats(&ms)
		f.allocB += ms.TotalAlloc - before
		f.heapSysB = max(f.heapSysB, ms.HeapSys)
		f.simMs += res.SimMs
		f.events += res.Events
		f.simWall += time.Duration(res.WallMs * float64(time.Millisecond))
		f.checkWall += time.Duration(res.CheckMs * float64(time.Millisecond))
		f.pausesMs = append(f.pausesMs, res.Migration.PausesMs...)
		f.flips += res.Migration.Flips
	}
	return f, nil
}

func printBench(out io.Writer, name string, f benchFigures) {
	simS, wall := float64(f.simMs)/1000, f.simWall.Seconds()
	fmt.Fprintf(out, "scenario=%s seeds=%d sim=%.0fs events=%d\n", name, f.seeds, simS, f.events)
	fmt.Fprintf(out, "  simulation: %.0fx real time, %.3fM events/s (wall %.2fs)\n", simS/wall, float64(f.events)/wall/1e6, wall)
	fmt.Fprintf(out, "  with checking: %.0fx real time (linearizability check %.2fs)\n",
		simS/(f.simWall+f.checkWall).Seconds(), f.checkWall.Seconds())
	perEvent := 0.0
	if f.events > 0 {
		perEvent = float64(f.allocB) / float64(f.events)
	}
	fmt.Fprintf(out, "  memory: %.0f MB allocated (%.0f B/event), heap high-water %.0f MB\n",
		float64(f.allocB)/(1<<20), perEvent, float64(f.heapSysB)/(1<<20))
	if n := len(f.pausesMs); n > 0 {
		p := slices.Clone(f.pausesMs)
		slices.Sort(p)
		fmt.Fprintf(out, "  migration write pause (virtual time, T_src holds -> T_dest operational): p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d pauses (%d flips)\n",
			p[n/2], p[min(n-1, n*99/100)], p[n-1], n, f.flips)
	}
}
