package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"territory/swarm"
)

func swarmCmd() *cobra.Command {
	var (
		scenario, seeds, shard, out, progress string
		jobs                                  int
		duration, linTimeout                  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "swarm --scenario NAME|all --seeds A..B",
		Short: "Run a range of seeds of one or more scenarios in parallel; report every failure with its replay file",
		Long: `Run every seed of the range (inclusive) for each scenario, on --jobs worker
goroutines. Each seed is one exact execution, whatever the parallelism.

--shard i/n keeps the seeds with (seed - A) mod n = i - 1, so n jobs of a CI matrix
or a cluster split a range with no coordinator.

Writes into --out: swarm.json (per scenario: seeds run, passed, failed, the failing
seeds with their summary lines, wall time, seeds per minute; totals), junit.xml (one
test suite per scenario, one test case per seed) and replays/<scenario>-<seed>.json
for every failing seed. Replay files of earlier swarms in the same directory are
left alone; swarm.json lists the current ones.

On a terminal a progress bar is drawn on stderr; otherwise every seed's summary line
is printed on stdout, in (scenario, seed) order. Exit status 1 when a seed fails
(an internal error of the simulator counts as a failure of its seed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scs, err := swarm.ParseScenarios(scenario)
			if err != nil {
				return err
			}
			rng, err := swarm.ParseSeeds(seeds)
			if err != nil {
				return err
			}
			var sh swarm.Shard
			if cmd.Flags().Changed("shard") {
				if sh, err = swarm.ParseShard(shard); err != nil {
					return err
				}
			}
			if jobs < 1 {
				return fmt.Errorf("swarm: --jobs %d must be at least 1", jobs)
			}
			if duration < 0 || (duration > 0 && duration < time.Second) {
				return fmt.Errorf("swarm: --duration %s must be at least 1s", duration)
			}
			if linTimeout <= 0 {
				return fmt.Errorf("swarm: --lin-timeout %s must be positive", linTimeout)
			}
			useBar := false
			switch progress {
			case "auto":
				useBar = term.IsTerminal(int(os.Stderr.Fd()))
			case "bar":
				useBar = true
			case "lines":
			default:
				return fmt.Errorf("swarm: --progress %q: want auto, bar or lines", progress)
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			opts := swarm.Options{Scenarios: scs, Seeds: rng, Shard: sh, Jobs: jobs, DurationMs: duration.Milliseconds(),
				LinTimeout: linTimeout, OutDir: out}
			if err := opts.Validate(); err != nil {
				return err
			}
			if sh.Count(rng) == 0 {
				fmt.Fprintf(stderr, "swarm: shard %s of seeds %s holds no seed\n", sh, rng)
			}
			var bar *progressbar.ProgressBar
			if useBar {
				opts.OnProgress = func(done, total, failed int) {
					if bar == nil {
						bar = newBar(stderr, total)
					}
					bar.Describe(fmt.Sprintf("swarm  failed %d", failed))
					_ = bar.Set(done)
				}
			} else {
				opts.OnResult = func(r swarm.SeedResult) { fmt.Fprintln(stdout, r.Line) }
			}

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			sum, runErr := swarm.Run(ctx, opts)
			if bar != nil && !bar.IsFinished() {
				_ = bar.Exit() // interrupted: keep the bar where it stopped
			}
			if sum == nil {
				return runErr
			}
			failing := sum.Failing()
			if len(failing) > 0 {
				fmt.Fprintf(stdout, "failing seeds: %d\n", len(failing))
			}
			for _, r := range failing {
				fmt.Fprintln(stdout, r.Line)
				for _, v := range r.Violations {
					fmt.Fprintf(stdout, "  violation: %s\n", v)
				}
				if r.Replay != "" {
					fmt.Fprintf(stdout, "reproduce: sim replay %s\n", r.Replay)
				} else {
					fmt.Fprintf(stdout, "reproduce: none (the scenario built no configuration for this seed)\n")
				}
			}
			if sum.JSONPath != "" {
				fmt.Fprintf(stdout, "report: %s %s\n", sum.JSONPath, sum.JUnitPath)
			}
			fmt.Fprintf(stdout, "throughput: %.1f seeds/min on %d jobs\n", sum.Totals.SeedsPerMinute, sum.Jobs)
			fmt.Fprintln(stdout, sum.Line())
			switch {
			case runErr != nil:
				return runErr
			case !sum.Pass:
				return failure{sum.Line()}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&scenario, "scenario", "", "scenario name, comma-separated names, or all (see `sim list`)")
	cmd.Flags().StringVar(&seeds, "seeds", "", "inclusive seed range A..B (or one seed)")
	cmd.Flags().IntVar(&jobs, "jobs", runtime.NumCPU(), "worker goroutines")
	cmd.Flags().StringVar(&shard, "shard", "1/1", "run only shard i/n of the range: seeds with (seed - A) mod n = i - 1")
	cmd.Flags().StringVar(&out, "out", "out/swarm", "output directory: swarm.json, junit.xml, replays/")
	cmd.Flags().DurationVar(&duration, "duration", 0, "workload duration in simulated time (default: each scenario's)")
	cmd.Flags().DurationVar(&linTimeout, "lin-timeout", 60*time.Second, "bound on each linearizability check; past it the verdict is unknown (a failure)")
	cmd.Flags().StringVar(&progress, "progress", "auto", "auto (a bar on a terminal, else one line per seed), bar, or lines")
	return cmd
}

func newBar(w io.Writer, total int) *progressbar.ProgressBar {
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("swarm"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("seeds"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
}
