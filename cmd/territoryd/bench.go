package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"territory/model"
	"territory/runtime/daemon"
	"territory/runtime/driver"
	"territory/runtime/loadgen"
)

// clientPool spreads operations over several clients: one client keeps at
// most model.DefaultClientConfig's MaxInFlight operations in flight.
type clientPool struct {
	cs   []*daemon.Client
	next atomic.Uint64
}

func (p *clientPool) Do(ctx context.Context, req model.Request) (model.Request, model.Result, error) {
	return p.cs[p.next.Add(1)%uint64(len(p.cs))].Do(ctx, req)
}

func benchCmd() *cobra.Command {
	var (
		addr, level, mix, jsonOut string
		workers, neurons          int
		ops                       int64
		duration, opTimeout       time.Duration
		seed                      uint64
		noProgress                bool
		tlsFiles                  TLSFiles
	)
	cmd := &cobra.Command{
		Use:   "bench --addr ADDR [--workers N] (--duration D | --ops N) [--mix op=w,...] [--json FILE|-]",
		Short: "a load generator: concurrent clients, an operation mix, throughput, outcomes and latency histograms",
		RunE: func(cmd *cobra.Command, _ []string) error {
			m := loadgen.DefaultMix()
			if mix != "" {
				var err error
				if m, err = loadgen.ParseMix(mix); err != nil {
					return exitf(2, "bench: %v", err)
				}
			}
			cfg := loadgen.Config{Workers: workers, Duration: duration, Ops: ops, Neurons: neurons, Mix: m, Seed: seed, OpTimeout: opTimeout}
			var files *TLSFiles
			if tlsFiles != (TLSFiles{}) {
				if err := tlsFiles.validate("--tls"); err != nil {
					return exitf(2, "bench: %v", err)
				}
				files = &tlsFiles
			}
			tlsCfg, err := files.tlsConfig(false)
			if err != nil {
				return exitf(2, "bench: --tls-*: %v", err)
			}
			if workers <= 0 || workers > 4096 {
				return exitf(2, "bench: --workers must be 1..4096")
			}
			pool := &clientPool{}
			per := model.DefaultClientConfig(1, 1, 1).MaxInFlight
			for range (workers + per - 1) / per {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				c, err := daemon.DialClient(ctx, addr, tlsCfg, newLogger(level), nil)
				cancel()
				if err != nil {
					return exitf(1, "bench: %v", err)
				}
				defer c.Close()
				pool.cs = append(pool.cs, c)
			}
			if !noProgress && isTerminal(os.Stderr) {
				max := int64(-1)
				if ops > 0 {
					max = ops
				}
				bar := progressbar.Default(max, "bench")
				cfg.Progress = func() { _ = bar.Add(1) }
				defer func() { _ = bar.Finish() }()
			}
			rep, err := loadgen.Run(context.Background(), cfg, pool, func(err error) bool { return errors.Is(err, driver.ErrUnknownOutcome) })
			if err != nil {
				return exitf(2, "bench: %v", err)
			}
			if jsonOut != "" {
				data, _ := json.MarshalIndent(rep, "", "  ")
				if jsonOut == "-" {
					fmt.Fprintln(cmd.OutOrStdout(), string(data))
					return nil
				}
				if err := os.WriteFile(jsonOut, append(data, '\n'), 0o644); err != nil {
					return exitf(1, "bench: %v", err)
				}
			}
			fmt.Fprint(cmd.OutOrStdout(), rep.Summary())
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:7420", "address of a territoryd (dev or run)")
	cmd.Flags().IntVar(&workers, "workers", 16, "concurrent operations")
	cmd.Flags().DurationVar(&duration, "duration", 10*time.Second, "run this long (0 with --ops: until the count)")
	cmd.Flags().Int64Var(&ops, "ops", 0, "stop after this many operations (0: until --duration)")
	cmd.Flags().IntVar(&neurons, "neurons", 1000, "neuron ids 1..N, created first")
	cmd.Flags().StringVar(&mix, "mix", "", "operation weights, e.g. stimulate=50,read-neuron=50 (default: every operation, write-heavy)")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed of the operation draw")
	cmd.Flags().DurationVar(&opTimeout, "op-timeout", 10*time.Second, "give up on one operation after this long")
	cmd.Flags().StringVar(&jsonOut, "json", "", "write the report as JSON to FILE (- : stdout, instead of the table)")
	cmd.Flags().BoolVar(&noProgress, "no-progress", false, "no progress bar (it is shown only on a terminal anyway)")
	cmd.Flags().StringVar(&level, "log-level", "error", "log level: debug, info, warn, error")
	cmd.Flags().StringVar(&tlsFiles.CAFile, "tls-ca", "", "PEM file of the CA that signed the daemon's transport certificate (enables TLS)")
	cmd.Flags().StringVar(&tlsFiles.CertFile, "tls-cert", "", "PEM client certificate, when the daemon requires one")
	cmd.Flags().StringVar(&tlsFiles.KeyFile, "tls-key", "", "PEM key of --tls-cert")
	return cmd
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
