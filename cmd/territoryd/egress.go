package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"territory/model"
	"territory/runtime/daemon"
)

func egressCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "egress --config FILE",
		Short: "the log egress service: publishes every supernode subgraph's committed log to the egress stream (one node leads, the others stand by)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sess, err := openSession(path, "egress")
			if err != nil {
				return err
			}
			defer sess.Close()
			c, logger, ms, ctx, coord := sess.c, sess.logger, sess.ms, sess.ctx, sess.coord
			if _, _, err := checkEtcd(ctx, c, coord); err != nil {
				return exitf(1, "%v", err)
			}
			logSvc, closeLog, err := openLog(ctx, c, logger)
			if err != nil {
				return err
			}
			defer closeLog()
			ecfg := model.DefaultEgressConfig(model.HostID(c.EgressID), c.Subgraphs)
			done, err := daemon.StartEgress(ctx, ecfg, daemon.Services{Coord: coord, Log: logSvc}, logger, ms.Metrics, ms.Facts.Observe)
			if err != nil {
				return exitf(2, "egress: %v", err)
			}
			logger.Info("territoryd egress: running", "id", c.EgressID, "subgraphs", c.Subgraphs, "log", c.Log.Backend, "metrics", ms.Addr)
			fmt.Fprintf(cmd.OutOrStdout(), "territoryd egress: running as %d\n", c.EgressID)
			if err := <-done; err != nil && ctx.Err() == nil {
				return exitf(1, "egress: %v", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "YAML configuration file (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
