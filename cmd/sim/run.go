package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"territory/replayfile"
	"territory/reports"
	"territory/scenarios"
	"territory/sim"
)

type runFlags struct {
	scenario   string
	seed       uint64
	duration   time.Duration
	report     string
	history    bool
	linTimeout time.Duration
	replayDir  string
	cpuProfile string
}

func addCommonFlags(cmd *cobra.Command, f *runFlags) {
	cmd.Flags().StringVar(&f.report, "report", "", "write report.json (and history.html on a failure) into this directory")
	cmd.Flags().BoolVar(&f.history, "history", false, "also write history.html when the run passes")
	cmd.Flags().DurationVar(&f.linTimeout, "lin-timeout", 60*time.Second, "bound on the linearizability check; past it the verdict is unknown")
	cmd.Flags().StringVar(&f.replayDir, "replay-dir", "out/replays", "where a failing run writes its replay file when --report is not given")
}

func runCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run --scenario NAME --seed N",
		Short: "Run one seeded scenario and check it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.scenario == "" {
				return fmt.Errorf("run: --scenario is required (see `sim list`)")
			}
			if !cmd.Flags().Changed("seed") {
				return fmt.Errorf("run: --seed is required")
			}
			sc, err := scenarios.Get(f.scenario)
			if err != nil {
				return err
			}
			if f.duration < 0 || (f.duration > 0 && f.duration < time.Second) {
				return fmt.Errorf("run: --duration %s must be at least 1s", f.duration)
			}
			cfg, err := sc.Config(f.seed, f.duration.Milliseconds())
			if err != nil {
				return err
			}
			if f.cpuProfile != "" {
				pf, err := os.Create(f.cpuProfile)
				if err != nil {
					return fmt.Errorf("run: --cpuprofile: %w", err)
				}
				defer pf.Close()
				if err := pprof.StartCPUProfile(pf); err != nil {
					return fmt.Errorf("run: --cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			return execute(cmd, cfg, f.seed, &f, "")
		},
	}
	cmd.Flags().StringVar(&f.scenario, "scenario", "", "scenario name (see `sim list`)")
	cmd.Flags().Uint64Var(&f.seed, "seed", 0, "seed: one seed is one exact execution")
	cmd.Flags().DurationVar(&f.duration, "duration", 0, "workload duration in simulated time (default: the scenario's)")
	cmd.Flags().StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the run (simulation and checks) to this file")
	addCommonFlags(cmd, &f)
	return cmd
}

func replayCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "replay FILE",
		Short: "Re-run exactly the run a replay file describes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rp, err := replayfile.Read(args[0])
			if err != nil {
				return err
			}
			return execute(cmd, rp.Config, rp.Seed, &f, rp.Trace)
		},
	}
	addCommonFlags(cmd, &f)
	return cmd
}

// execute runs, reports and prints the summary line last.
func execute(cmd *cobra.Command, cfg sim.Config, seed uint64, f *runFlags, wantTrace string) error {
	res, err := sim.Run(cfg, seed, f.linTimeout)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	for _, v := range res.Violations {
		fmt.Fprintf(out, "violation: %s\n", v)
	}
	for _, k := range res.ViolatingKeys {
		fmt.Fprintf(out, "violation: linearizability on key %s\n", k)
	}
	if wantTrace != "" && wantTrace != res.Trace {
		fmt.Fprintf(out, "warning: trace %s differs from the recorded %s (another binary, or the file was edited)\n", res.Trace, wantTrace)
	}
	if f.report != "" {
		w, err := reports.WriteRun(f.report, res, f.history)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "report: %s\n", w.JSON)
		if w.History != "" {
			fmt.Fprintf(out, "history: %s\n", w.History)
		}
		if w.Replay != "" {
			fmt.Fprintf(out, "reproduce: sim replay %s\n", w.Replay)
		}
	} else if !res.Pass {
		if err := os.MkdirAll(f.replayDir, 0o755); err != nil {
			return fmt.Errorf("replay dir: %w", err)
		}
		path := filepath.Join(f.replayDir, fmt.Sprintf("%s-%d.json", res.Scenario, res.Seed))
		if err := replayfile.WriteResult(path, res); err != nil {
			return err
		}
		fmt.Fprintf(out, "reproduce: sim replay %s\n", path)
	}
	fmt.Fprintln(out, res.Line())
	if !res.Pass {
		return failure{res.Line()}
	}
	return nil
}

func listCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the scenarios",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range scenarios.All() {
				fmt.Fprintf(cmd.OutOrStdout(), "%-15s %s\n", s.Name, s.Summary)
			}
			return nil
		},
	}
}
