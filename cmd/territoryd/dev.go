package main

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"territory/model"
	"territory/runtime/daemon"
)

func devCmd() *cobra.Command {
	var (
		data, listen, metrics, level string
		territories                  int
		subgraphs                    uint32
		maxOut, maxIn, supernode     uint32
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "run a whole cluster in this process: embedded etcd, an unreplicated local log and a filesystem bucket under --data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := newLogger(level)
			ms, err := startMetrics(metrics, logger)
			if err != nil {
				return exitf(2, "--metrics %s: %v", metrics, err)
			}
			defer ms.Close()
			ctx, stop := signalContext()
			defer stop()
			stopTracing, err := startTracing(ctx, "dev")
			if err != nil {
				return exitf(2, "tracing (OTEL_* environment): %v", err)
			}
			defer stopTracing()
			var policy *model.Policy
			if maxOut != 0 || maxIn != 0 || supernode != 0 {
				p := model.DefaultPolicy()
				p.MaxOutDegree = cmp.Or(maxOut, p.MaxOutDegree)
				p.MaxInDegree = cmp.Or(maxIn, p.MaxInDegree)
				p.SupernodeDegree = cmp.Or(supernode, p.SupernodeDegree)
				policy = &p
			}
			startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
			d, err := daemon.StartDev(startCtx, daemon.DevOptions{DataDir: data, Listen: listen,
				Territories: territories, Subgraphs: subgraphs, Policy: policy, Logger: logger, Metrics: ms.Metrics, Observer: ms.Facts.Observe})
			cancel()
			if err != nil {
				return exitf(1, "dev: %v", err)
			}
			out := cmd.OutOrStdout()
			state := "restarted an existing cluster"
			if d.Bootstrapped {
				state = "bootstrapped a new cluster"
			}
			fmt.Fprintf(out, "territoryd dev: %s in %s (%d subgraphs)\n", state, d.DataDir, d.Subgraphs)
			fmt.Fprintf(out, "territoryd dev: etcd %s\n", d.EtcdEndpoint)
			p := d.Policy
			fmt.Fprintf(out, "territoryd dev: policy epoch %d: max out-degree %d, max in-degree %d, supernode degree %d\n", p.Epoch, p.MaxOutDegree, p.MaxInDegree, p.SupernodeDegree)
			if policy != nil && !d.Bootstrapped && (p.MaxOutDegree != policy.MaxOutDegree || p.MaxInDegree != policy.MaxInDegree || p.SupernodeDegree != policy.SupernodeDegree) {
				fmt.Fprintf(out, "territoryd dev: note: the degree flags apply to a new cluster only; %s keeps the policy above\n", d.DataDir)
			}
			if ms.Addr != "" {
				fmt.Fprintf(out, "territoryd dev: metrics http://%s/metrics\n", ms.Addr)
			}
			fmt.Fprintf(out, "territoryd dev: listening on %s (try: territoryd client --addr %s create-neuron 1)\n", d.Addr, d.Addr)
			<-ctx.Done()
			logger.Info("shutting down")
			if err := d.Stop(); err != nil {
				return exitf(1, "dev: shutdown: %v", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "territory-data", "data directory (etcd, log, blobs); reused on restart")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:7420", "transport address clients dial")
	cmd.Flags().StringVar(&metrics, "metrics", "127.0.0.1:9420", "Prometheus /metrics address (\"\" to disable)")
	cmd.Flags().StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().IntVar(&territories, "territories", 0, "territories of a new cluster (default 3; fixed once created)")
	cmd.Flags().Uint32Var(&subgraphs, "subgraphs", 0, "subgraphs of a new cluster (default 16; fixed once created)")
	cmd.Flags().Uint32Var(&maxOut, "max-out-degree", 0, "policy of a new cluster: max out-degree of a neuron (default 8)")
	cmd.Flags().Uint32Var(&maxIn, "max-in-degree", 0, "policy of a new cluster: max in-degree of a neuron (default 8)")
	cmd.Flags().Uint32Var(&supernode, "supernode-degree", 0, "policy of a new cluster: in+out degree at which a neuron is a supernode (default 12)")
	return cmd
}
