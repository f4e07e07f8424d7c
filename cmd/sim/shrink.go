package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"territory/replayfile"
	"territory/shrink"
)

func shrinkCmd() *cobra.Command {
	var (
		out        string
		linTimeout time.Duration
		budget     int
		verbose    bool
	)
	cmd := &cobra.Command{
		Use:   "shrink FILE",
		Short: "Reduce a failing replay to a small reproducer that still fails the same check",
		Long: `Reduce the run a replay file describes while it still fails the same check: its
failure signature (linearizability, linearizability-unknown, internal-error, and the
name of each violated invariant) must share at least one check with the original's.

Steps, each keeping a candidate only if it still fails: remove faults (delta
debugging down to a 1-minimal set), lower the op budget (workload.max_ops, by
bisection from the original run's op count), shorten the duration (bisection in
100 ms steps; faults starting at or after the new end are dropped), and use fewer
clients. At most --budget candidate runs. The smallest failing run is written to
--out (default: FILE with .json replaced by .shrunk.json).

Exit status 0 when a shrunk replay was written, 2 when the input does not fail.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := args[0]
			if budget < 1 {
				return fmt.Errorf("shrink: --budget %d must be at least 1", budget)
			}
			if linTimeout <= 0 {
				return fmt.Errorf("shrink: --lin-timeout %s must be positive", linTimeout)
			}
			if out == "" {
				out = strings.TrimSuffix(in, ".json") + ".shrunk.json"
			}
			if filepath.Clean(out) == filepath.Clean(in) {
				return fmt.Errorf("shrink: --out %s would overwrite the input", out)
			}
			rp, err := replayfile.Read(in)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			runner := shrink.NewRunner(rp.Seed, linTimeout)
			orig := runner.Judge(rp.Config)
			fmt.Fprintf(w, "original: %s\n", orig.Line)
			if rp.Trace != "" && orig.Trace != "" && orig.Trace != rp.Trace {
				fmt.Fprintf(w, "warning: trace %s differs from the recorded %s (another binary, or the file was edited)\n", orig.Trace, rp.Trace)
			}
			if !orig.Failed {
				return fmt.Errorf("shrink: %s does not fail, nothing to shrink", in)
			}
			fmt.Fprintf(w, "signature: %s (a candidate is kept while it fails one of these)\n", strings.Join(orig.Signature, ","))
			opts := shrink.Options{Budget: budget, Signature: orig.Signature, Ops: runner.Ops}
			if verbose {
				opts.Log = func(t shrink.Trial) { fmt.Fprintln(cmd.ErrOrStderr(), t) }
			}
			start := time.Now()
			res, err := shrink.Shrink(rp.Config, runner.Predicate, opts)
			if errors.Is(err, shrink.ErrNotFailing) {
				return fmt.Errorf("shrink: %s does not fail, nothing to shrink", in)
			}
			if err != nil {
				return err
			}
			res.Report(w)
			if err := runner.WriteReplay(out, res.Shrunk); err != nil {
				return err
			}
			final, _ := runner.Lookup(res.Shrunk)
			fmt.Fprintf(w, "shrunk: %s\n", final.Line)
			fmt.Fprintf(w, "wrote %s (%d trial runs, %.1fs)\n", out, res.Trials, time.Since(start).Seconds())
			fmt.Fprintf(w, "reproduce: sim replay %s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "where to write the shrunk replay (default: FILE.shrunk.json, replacing .json)")
	cmd.Flags().DurationVar(&linTimeout, "lin-timeout", 60*time.Second, "bound on each linearizability check")
	cmd.Flags().IntVar(&budget, "budget", shrink.DefaultBudget, "at most this many candidate runs")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every trial on stderr")
	return cmd
}
