package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"territory/chaos"
	"territory/faults"
)

func chaosCmd() *cobra.Command {
	var (
		scenario, out, replay, schedule, bin string
		seed                                 uint64
		linTimeout                           time.Duration
		list, history                        bool
	)
	cmd := &cobra.Command{
		Use:   "chaos --scenario NAME --seed N [--out DIR]",
		Short: "Run a real cluster under a real fault schedule and check it with the simulator's checks",
		Long: "sim chaos starts territoryd processes built from this tree, a 3-member etcd of separate processes, each behind toxiproxy proxies (pairs of members too), on the Pulsar standalone and the S3 server\n" +
			"(their TERRITORY_* variables must be set, as scripts/test-integration.sh does), executes the scenario's seeded fault schedule for real,\n" +
			"records the real clients' history and runs both linearizability checkers, no-acked-write-lost, state-is-fold-of-log and progress.\n" +
			"A fault kind that cannot be made real is refused. " + chaos.ReplayNote,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			if list {
				for _, s := range chaos.Scenarios() {
					fmt.Fprintf(w, "%-8s %s\n", s.Name, s.Summary)
				}
				for _, p := range chaos.Plans() {
					fmt.Fprintf(w, "fault %-36s %s\n", p, chaos.Supported[p])
				}
				for _, k := range faults.Kinds() {
					if err := chaos.Refuse(faults.Fault{Kind: k}); err != nil && !chaos.KindSupported(k) {
						fmt.Fprintf(w, "fault %-36s refused: %v\n", k, err)
					}
				}
				return nil
			}
			o := chaos.Options{Scenario: scenario, Seed: seed, Bin: bin, LinTimeout: linTimeout, Log: cmd.ErrOrStderr()}
			if replay != "" {
				rp, err := chaos.ReadReplay(replay)
				if err != nil {
					return err
				}
				o.Scenario, o.Seed, o.Schedule = rp.Scenario, rp.Seed, &rp.Schedule
			} else {
				if scenario == "" || !cmd.Flags().Changed("seed") {
					return fmt.Errorf("chaos: --scenario and --seed are required (or --replay FILE; see --list)")
				}
				if schedule != "" {
					sc, err := chaos.Get(scenario)
					if err != nil {
						return err
					}
					data, err := os.ReadFile(schedule)
					if err != nil {
						return err
					}
					s, err := faults.Parse(data, sc.Topology())
					if err != nil {
						return err
					}
					o.Schedule = &s
				}
			}
			if out != "" {
				o.WorkDir = out + "/work"
			}
			r, err := chaos.Run(o)
			if r == nil {
				return err
			}
			if err != nil {
				r.Error, r.Pass = err.Error(), false
			}
			if out != "" {
				wr, werr := chaos.WriteReports(out, r, history)
				if werr != nil {
					return werr
				}
				fmt.Fprintf(w, "report: %s\nsummary: %s\n", wr.JSON, wr.Markdown)
				fmt.Fprintf(w, "replay (the schedule and workload, not the interleaving): sim chaos --replay %s\n", wr.Replay)
			}
			for _, v := range r.Violations {
				fmt.Fprintf(w, "violation: %s\n", v)
			}
			for _, v := range r.LogViolations {
				fmt.Fprintf(w, "violation: logcheck %s\n", v)
			}
			for _, k := range r.ViolatingKeys {
				fmt.Fprintf(w, "violation: linearizability on key %s\n", k)
			}
			fmt.Fprintln(w, r.Line())
			if err != nil {
				return err
			}
			if !r.Pass {
				return failure{r.Line()}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&scenario, "scenario", "", "chaos scenario (see --list)")
	cmd.Flags().Uint64Var(&seed, "seed", 0, "seed of the fault schedule and the workload")
	cmd.Flags().StringVar(&out, "out", "", "write report.json, summary.md, junit.xml, replay.json (and history.html on a failure) here (and the processes' files under work/)")
	cmd.Flags().StringVar(&replay, "replay", "", "re-run a chaos replay file: its schedule and workload, not its interleaving")
	cmd.Flags().StringVar(&schedule, "schedule", "", "a fault schedule (JSON, the simulator's format) to run instead of the scenario's")
	cmd.Flags().StringVar(&bin, "territoryd", "", "territoryd binary to run (default: built from this module)")
	cmd.Flags().DurationVar(&linTimeout, "lin-timeout", 60*time.Second, "bound on porcupine; past it the verdict is unknown")
	cmd.Flags().BoolVar(&history, "history", false, "write history.html when the run passes too (it is written on a failure)")
	cmd.Flags().BoolVar(&list, "list", false, "list the chaos scenarios and what each fault kind becomes (or why it is refused)")
	return cmd
}
