package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"territory/model"
	pb "territory/proto/territorypb"
	"territory/runtime/blob"
	"territory/runtime/daemon"
	"territory/runtime/driver"
	"territory/runtime/etcdcoord"
	"territory/runtime/locallog"
	"territory/runtime/transport"
)

func dialEtcd(c *Config, logger *slog.Logger) (*etcdcoord.Coord, error) {
	tlsCfg, err := c.Etcd.TLS.tlsConfig(false)
	if err != nil {
		return nil, fmt.Errorf("etcd.tls: %v", err)
	}
	pw, err := secret("TERRITORY_ETCD_PASSWORD", c.Etcd.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("etcd.password_file: %v", err)
	}
	return etcdcoord.Dial(etcdcoord.Config{Endpoints: c.Etcd.Endpoints, TLS: tlsCfg, Username: c.Etcd.Username, Password: pw}, logger)
}

// newTransport serves c.Listen with c's host table and TLS.
func newTransport(c *Config, logger *slog.Logger, coord *etcdcoord.Coord) (*transport.Transport, error) {
	serverTLS, err := c.TLS.tlsConfig(true)
	if err != nil {
		return nil, exitf(2, "tls: %v", err)
	}
	clientTLS, err := c.TLS.tlsConfig(false)
	if err != nil {
		return nil, exitf(2, "tls: %v", err)
	}
	hosts := map[model.HostID]string{}
	info := &pb.InfoResponse{Subgraphs: c.Subgraphs, Hosts: map[uint32]string{}}
	for id, addr := range c.Hosts {
		hosts[model.HostID(id)] = addr
		if id != c.Manager {
			info.Hosts[id] = addr
		}
	}
	tr, err := transport.New(transport.Config{Listen: c.Listen, Hosts: hosts, ServerTLS: serverTLS, ClientTLS: clientTLS,
		Logger: logger, Info: info, CoordRead: coord.Do})
	if err != nil {
		return nil, exitf(1, "listen: %v", err)
	}
	return tr, nil
}

func runCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "run territories against external etcd, log and object store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(path, "run")
			if err != nil {
				return exitf(2, "%v", err)
			}
			logger := newLogger(c.LogLevel)
			ms, err := startMetrics(c.MetricsListen, logger)
			if err != nil {
				return exitf(2, "metrics_listen: %v", err)
			}
			defer ms.Close()
			ctx, stop := signalContext()
			defer stop()

			coord, err := dialEtcd(c, logger)
			if err != nil {
				return exitf(1, "%v", err)
			}
			defer coord.Close()
			var logSvc driver.Log
			switch c.Log.Backend {
			case "local":
				logger.Warn("log.backend local: an UNREPLICATED single-disk log; for development only")
				l, err := locallog.Open(c.Log.Local.Path)
				if err != nil {
					return exitf(1, "log.local.path: %v", err)
				}
				defer l.Close()
				logSvc = l
			case "pulsar":
				return exitf(2, "log.backend: pulsar is not wired into territoryd yet (runtime/pulsarlog is in progress)")
			}
			objConf, err := os.ReadFile(c.Objstore.ConfigFile)
			if err != nil {
				return exitf(2, "objstore.config_file: %v", err)
			}
			bs, err := blob.Open(ctx, objConf, logger)
			if err != nil {
				return exitf(1, "objstore.config_file: %v", err)
			}
			defer bs.Close()
			tr, err := newTransport(c, logger, coord)
			if err != nil {
				return err
			}
			defer tr.Close()
			ts, err := daemon.StartTerritories(daemon.TerritoryOptions{IDs: hostIDs(c.Territories), Subgraphs: c.Subgraphs,
				Services: daemon.Services{Coord: coord, Log: logSvc, Blob: bs}, Transport: tr, Logger: logger, Metrics: ms.Metrics,
				Manager: model.HostID(c.Manager), DiskRoot: c.CacheDir})
			if err != nil {
				return exitf(1, "%v", err)
			}
			logger.Info("territoryd run: listening", "addr", tr.Addr(), "territories", c.Territories, "metrics", ms.Addr)
			fmt.Fprintf(cmd.OutOrStdout(), "territoryd run: listening on %s\n", tr.Addr())
			<-ctx.Done()
			logger.Info("shutting down")
			if err := ts.Stop(); err != nil {
				return exitf(1, "shutdown: %v", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "YAML configuration file (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func managerCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "manager --config FILE",
		Short: "the control plane: bootstraps a new cluster, then runs model.Manager (failure detection, recovery events, snapshot GC)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(path, "manager")
			if err != nil {
				return exitf(2, "%v", err)
			}
			logger := newLogger(c.LogLevel)
			ms, err := startMetrics(c.MetricsListen, logger)
			if err != nil {
				return exitf(2, "metrics_listen: %v", err)
			}
			defer ms.Close()
			ctx, stop := signalContext()
			defer stop()
			coord, err := dialEtcd(c, logger)
			if err != nil {
				return exitf(1, "%v", err)
			}
			defer coord.Close()
			bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			created, err := daemon.Bootstrap(bctx, coord, c.Subgraphs, hostIDs(c.BootstrapTerritories))
			cancel()
			if err != nil {
				return exitf(1, "%v", err)
			}
			objConf, err := os.ReadFile(c.Objstore.ConfigFile)
			if err != nil {
				return exitf(2, "objstore.config_file: %v", err)
			}
			bs, err := blob.Open(ctx, objConf, logger)
			if err != nil {
				return exitf(1, "objstore.config_file: %v", err)
			}
			defer bs.Close()
			tr, err := newTransport(c, logger, coord)
			if err != nil {
				return err
			}
			defer tr.Close()
			mcfg := model.DefaultManagerConfig(model.HostID(c.Manager), c.Subgraphs, hostIDs(c.BootstrapTerritories))
			done, err := daemon.StartManager(ctx, mcfg, daemon.Services{Coord: coord, Blob: bs}, tr, logger, ms.Metrics)
			if err != nil {
				return exitf(2, "manager: %v", err)
			}
			logger.Info("territoryd manager: running", "bootstrapped", created, "subgraphs", c.Subgraphs, "addr", tr.Addr(), "metrics", ms.Addr)
			fmt.Fprintf(cmd.OutOrStdout(), "territoryd manager: listening on %s (bootstrapped now: %v)\n", tr.Addr(), created)
			if err := <-done; err != nil {
				return exitf(1, "manager: shutdown: %v", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "YAML configuration file (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
