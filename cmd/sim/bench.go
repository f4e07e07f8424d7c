package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"territory/scenarios"
	"territory/sim"
)

func benchCmd() *cobra.Command {
	var name string
	var seeds int
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure simulation speed: simulated seconds per wall second and events per second",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sc, err := scenarios.Get(name)
			if err != nil {
				return err
			}
			if seeds <= 0 {
				return fmt.Errorf("bench: --seeds must be positive")
			}
			var simMs int64
			var events uint64
			var simWall, checkWall time.Duration
			for seed := uint64(1); seed <= uint64(seeds); seed++ {
				cfg, err := sc.Config(seed, 0)
				if err != nil {
					return err
				}
				res, err := sim.Run(cfg, seed, time.Minute)
				if err != nil {
					return err
				}
				simMs += res.SimMs
				events += res.Events
				simWall += time.Duration(res.WallMs * float64(time.Millisecond))
				checkWall += time.Duration(res.CheckMs * float64(time.Millisecond))
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "scenario=%s seeds=%d sim=%.0fs events=%d\n", name, seeds, float64(simMs)/1000, events)
			fmt.Fprintf(out, "simulation: %.0fx real time, %.2fM events/s (wall %.2fs)\n",
				float64(simMs)/1000/simWall.Seconds(), float64(events)/simWall.Seconds()/1e6, simWall.Seconds())
			fmt.Fprintf(out, "with checking: %.0fx real time (linearizability check %.2fs)\n",
				float64(simMs)/1000/(simWall+checkWall).Seconds(), checkWall.Seconds())
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "scenario", "basic", "scenario to measure")
	cmd.Flags().IntVar(&seeds, "seeds", 10, "number of seeds (1..N)")
	return cmd
}
