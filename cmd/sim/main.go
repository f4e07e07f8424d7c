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

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "sim",
		Short:         "Deterministic simulation testbed for the territory protocols",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), replayCmd(), listCmd(), benchCmd(), reportCmd())
	root.AddCommand(swarmCmd(), shrinkCmd(), chaosCmd())
	return root
}

// exitCode maps a command's error to the exit status.
func exitCode(err error) int {
	var f failure
	switch {
	case err == nil:
		return exitPass
	case errors.As(err, &f):
		return exitFailure
	}
	return exitUsage
}

func main() {
	err := newRoot().Execute()
	if code := exitCode(err); code == exitUsage {
		fmt.Fprintln(os.Stderr, "sim:", err)
	}
	os.Exit(exitCode(err))
}
