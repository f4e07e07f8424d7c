package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"territory/reports"
	"territory/sim"
)

func reportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "report DIR|report.json",
		Short: "Print a run's report (report.json) as Markdown",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if st, err := os.Stat(path); err == nil && st.IsDir() {
				path = filepath.Join(path, reports.JSONFile)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("report: %w", err)
			}
			var r sim.Result
			if err := json.Unmarshal(data, &r); err != nil {
				return fmt.Errorf("report %s: %w", path, err)
			}
			if r.Scenario == "" || r.Trace == "" {
				return fmt.Errorf("report %s: not a run report (no scenario or trace)", path)
			}
			fmt.Fprint(cmd.OutOrStdout(), reports.Markdown(&r))
			return nil
		},
	}
}
