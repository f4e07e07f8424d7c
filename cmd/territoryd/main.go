// Command territoryd runs the territory protocol core against real services.
//
//	territoryd dev [--data DIR] [--listen ADDR]     everything in one process (embedded etcd, local log, filesystem bucket)
//	territoryd client --addr ADDR OPERATION ...     one client operation against a running daemon
//	territoryd import [--addr ADDR] FILE            bulk-load a connectome edge list, idempotently
//	territoryd run --config FILE                    territories against external etcd, log and object store
//	territoryd manager --config FILE                the control plane (bootstrap, failure detection, migrations)
//	territoryd migrate --addr ADDR --subgraph S --to T [--wait]   ask the manager to migrate a subgraph
//	territoryd status --addr ADDR [--json]          routes, territories, migrations (phase, catch-up lag)
//
// Exit codes: 0 success; 1 the operation got a definite non-ok answer (or the
// daemon failed); 2 usage or configuration error; 3 the outcome is unknown.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func exitf(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "territoryd",
		Short:         "territoryd runs the territory connectome store's protocol core on real services",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(devCmd(), clientCmd(), importCmd(), runCmd(), managerCmd(), mandateCmd(), benchCmd(), statusCmd(), egressCmd(), migrateCmd())
	return root
}

func main() {
	os.Exit(execute(os.Args[1:]))
}

func execute(args []string) int {
	root := rootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(os.Stderr, "territoryd: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 2 // cobra's own errors: unknown command or flag
}
