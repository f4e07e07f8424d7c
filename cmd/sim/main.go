// Command sim runs seeded simulation scenarios of the territory protocols,
// replays failures from their replay files, and lists the scenarios.
//
// Exit status: 0 when every check passes, 1 when a run finds a failure, 2 on
// bad usage or an internal error.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitPass    = 0
	exitFailure = 1
	exitUsage   = 2
)

// failure is a run that completed and found a bug: exit 1, not 2.
type failure struct{ msg string }

func (f failure) Error() string { return f.msg }

func main() {
	root := &cobra.Command{
		Use:           "sim",
		Short:         "Deterministic simulation testbed for the territory protocols",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), replayCmd(), listCmd(), benchCmd())
	root.AddCommand(swarmCmd(), shrinkCmd())
	err := root.Execute()
	var f failure
	switch {
	case err == nil:
		os.Exit(exitPass)
	case errors.As(err, &f):
		os.Exit(exitFailure)
	default:
		fmt.Fprintln(os.Stderr, "sim:", err)
		os.Exit(exitUsage)
	}
}
