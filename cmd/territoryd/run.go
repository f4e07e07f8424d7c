package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/spf13/cobra"

	"territory/model"
	pb "territory/proto/territorypb"
	"territory/runtime/blob"
	"territory/runtime/daemon"
	"territory/runtime/driver"
	"territory/runtime/election"
	"territory/runtime/etcdcoord"
	"territory/runtime/locallog"
	"territory/runtime/pulsarlog"
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
	return etcdcoord.Dial(etcdcoord.Config{Endpoints: c.Etcd.Endpoints, DialTimeout: c.Etcd.dialTimeout, TLS: tlsCfg, Username: c.Etcd.Username, Password: pw}, logger)
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
	info := &pb.InfoResponse{Subgraphs: c.Subgraphs, Hosts: map[uint32]string{}, Manager: c.Manager, ManagerAddr: c.Hosts[c.Manager]}
	for id, addr := range c.Hosts {
		hosts[model.HostID(id)] = addr
		if id != c.Manager {
			info.Hosts[id] = addr
		}
	}
	tr, err := transport.New(transport.Config{Listen: c.Listen, Hosts: hosts, ServerTLS: serverTLS, ClientTLS: clientTLS,
		Logger: logger, Info: info, CoordRead: coord.Do, CoordWatch: coord.Watch})
	if err != nil {
		return nil, exitf(1, "listen: %v", err)
	}
	return tr, nil
}

// checkEtcd reads the cluster's policy within etcd.dial_timeout: etcd's
// client connects lazily, so this is the reachability check at start.
func checkEtcd(ctx context.Context, c *Config, coord *etcdcoord.Coord) (model.Policy, bool, error) {
	cctx, cancel := context.WithTimeout(ctx, c.Etcd.dialTimeout)
	defer cancel()
	p, found, err := daemon.ReadPolicy(cctx, coord)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return model.Policy{}, false, fmt.Errorf("etcd.endpoints %v: no answer within %s (etcd.dial_timeout): %v", c.Etcd.Endpoints, c.Etcd.dialTimeout, err)
	case err != nil:
		return model.Policy{}, false, fmt.Errorf("etcd.endpoints %v: %v", c.Etcd.Endpoints, err)
	}
	return p, found, nil
}

// openLog opens the configured log backend.
func openLog(ctx context.Context, c *Config, logger *slog.Logger) (driver.Log, func(), error) {
	switch c.Log.Backend {
	case "local":
		logger.Warn("log.backend local: an UNREPLICATED single-disk log; for development only")
		l, err := locallog.Open(c.Log.Local.Path)
		if err != nil {
			return nil, nil, exitf(1, "log.local.path: %v", err)
		}
		return l, func() { l.Close() }, nil
	case "pulsar":
		l, err := openPulsar(ctx, c, logger)
		if err != nil {
			return nil, nil, err
		}
		return l, func() { l.Close() }, nil
	}
	return nil, nil, exitf(2, "log.backend: %q is not local or pulsar", c.Log.Backend)
}

// openPulsar connects the Pulsar log and checks that both the admin API and
// the broker answer within log.pulsar.operation_timeout.
func openPulsar(ctx context.Context, c *Config, logger *slog.Logger) (*pulsarlog.Log, error) {
	pc := c.Log.Pulsar
	token, err := secret("TERRITORY_PULSAR_TOKEN", pc.TokenFile)
	if err != nil {
		return nil, exitf(2, "log.pulsar.token_file: %v", err)
	}
	// The Pulsar client's own messages go to the same JSON log, from warnings up.
	plogger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: max(levelOf(c.LogLevel), slog.LevelWarn)})).With("component", "pulsar-client")
	cfg := pulsarlog.Config{
		ServiceURL: pc.ServiceURL, AdminURL: pc.AdminURL,
		Tenant: pc.Tenant, Namespace: pc.Namespace, TopicPrefix: pc.TopicPrefix,
		EnsembleSize: pc.EnsembleSize, WriteQuorum: pc.WriteQuorum, AckQuorum: pc.AckQuorum,
		OperationTimeout: pc.operationTimeout, AuthToken: token, TLSTrustCertsFile: pc.TLSTrustCertsFile,
		SkipNamespaceSetup: pc.SkipNamespaceSetup, Logger: plog.NewLoggerWithSlog(plogger),
	}
	cctx, cancel := context.WithTimeout(ctx, pc.operationTimeout)
	defer cancel()
	l, err := pulsarlog.New(cctx, cfg)
	if err != nil {
		return nil, exitf(1, "log.pulsar (service_url %s, admin_url %s): %v", pc.ServiceURL, pc.AdminURL, err)
	}
	if err := l.Ping(cctx); err != nil {
		l.Close()
		return nil, exitf(1, "log.pulsar.service_url %s: unreachable within %s (log.pulsar.operation_timeout): %v", pc.ServiceURL, pc.operationTimeout, err)
	}
	logger.Info("pulsar log ready", "service_url", pc.ServiceURL, "namespace", l.Namespace(), "topic", l.Topic(0))
	return l, nil
}

// openBlob opens the bucket and checks that it answers.
func openBlob(ctx context.Context, c *Config, logger *slog.Logger) (*blob.Store, error) {
	objConf, err := os.ReadFile(c.Objstore.ConfigFile)
	if err != nil {
		return nil, exitf(2, "objstore.config_file: %v", err)
	}
	bs, err := blob.Open(ctx, objConf, logger)
	if err != nil {
		return nil, exitf(1, "objstore.config_file: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, se, err := bs.Do(cctx, model.BlobRequest{Kind: model.BlobExists, Key: model.SnapshotBlobPrefix + "reachability-check.probe"})
	if err == nil && se != model.ErrNone {
		err = fmt.Errorf("%s", se)
	}
	if err != nil {
		bs.Close()
		return nil, exitf(1, "objstore.config_file %s: the bucket does not answer: %v", c.Objstore.ConfigFile, err)
	}
	return bs, nil
}

// session is what run and manager share: the validated configuration, the
// logger, metrics, tracing, the signal context and the etcd connection.
type session struct {
	c       *Config
	logger  *slog.Logger
	ms      *metricsServer
	ctx     context.Context
	coord   *etcdcoord.Coord
	closers []func()
}

// openSession starts what a daemon role needs before its own work; on an
// error it closes what it had opened and returns an exit error.
func openSession(path, role string) (_ *session, err error) {
	s := &session{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.c, err = loadConfig(path, role); err != nil {
		return nil, exitf(2, "%v", err)
	}
	s.logger = newLogger(s.c.LogLevel)
	if s.ms, err = startMetrics(s.c.MetricsListen, s.logger); err != nil {
		return nil, exitf(2, "metrics_listen: %v", err)
	}
	s.closers = append(s.closers, s.ms.Close)
	ctx, stop := signalContext()
	s.ctx = ctx
	s.closers = append(s.closers, stop)
	stopTracing, err := startTracing(ctx, role)
	if err != nil {
		return nil, exitf(2, "tracing (OTEL_* environment): %v", err)
	}
	s.closers = append(s.closers, stopTracing)
	if s.coord, err = dialEtcd(s.c, s.logger); err != nil {
		return nil, exitf(1, "%v", err)
	}
	s.closers = append(s.closers, func() { _ = s.coord.Close() })
	return s, nil
}

// Close releases what openSession started, last first.
func (s *session) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

func runCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "run territories against external etcd, log and object store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sess, err := openSession(path, "run")
			if err != nil {
				return err
			}
			defer sess.Close()
			c, logger, ms, ctx, coord := sess.c, sess.logger, sess.ms, sess.ctx, sess.coord
			policy, found, err := checkEtcd(ctx, c, coord)
			if err != nil {
				return exitf(1, "%v", err)
			}
			if !found {
				wctx, cancel := context.WithTimeout(ctx, c.bootstrapWait)
				policy, err = daemon.WaitPolicy(wctx, coord, 500*time.Millisecond, func() {
					logger.Info("waiting for the manager to bootstrap the cluster", "key", model.PolicyKey, "bootstrap_wait", c.bootstrapWait.String())
				})
				cancel()
				if err != nil {
					return exitf(1, "no cluster within bootstrap_wait (%s): start `territoryd manager` first: %v", c.bootstrapWait, err)
				}
			}
			if c.Policy != nil && c.policy != policy {
				logger.Warn("policy: the cluster's policy differs from this configuration's; the cluster's applies (the configuration's is only used by the manager's bootstrap)",
					"cluster", string(model.EncodePolicy(policy)), "config", string(model.EncodePolicy(c.policy)))
			}
			if err := checkRoutes(ctx, c, coord); err != nil {
				return err
			}
			logSvc, closeLog, err := openLog(ctx, c, logger)
			if err != nil {
				return err
			}
			defer closeLog()
			bs, err := openBlob(ctx, c, logger)
			if err != nil {
				return err
			}
			defer bs.Close()
			tr, err := newTransport(c, logger, coord)
			if err != nil {
				return err
			}
			defer tr.Close()
			ts, err := daemon.StartTerritories(daemon.TerritoryOptions{IDs: hostIDs(c.Territories), Subgraphs: c.Subgraphs,
				Services: daemon.Services{Coord: coord, Log: logSvc, Blob: bs}, Transport: tr, Logger: logger, Metrics: ms.Metrics,
				Observer: ms.Facts.Observe, Manager: model.HostID(c.Manager), DiskRoot: c.CacheDir, Policy: &policy,
				Config: func(tc *model.TerritoryConfig) { tc.Proxy = c.Proxy }})
			if err != nil {
				return exitf(1, "%v", err)
			}
			logger.Info("territoryd run: listening", "addr", tr.Addr(), "territories", c.Territories, "metrics", ms.Addr,
				"log", c.Log.Backend, "policy", string(model.EncodePolicy(policy)))
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

// checkRoutes compares the cluster's subgraph count with the configuration's:
// a territory that hashed neurons with another N would serve the wrong ones.
func checkRoutes(ctx context.Context, c *Config, coord *etcdcoord.Coord) error {
	cctx, cancel := context.WithTimeout(ctx, c.Etcd.dialTimeout)
	defer cancel()
	r, se, err := coord.Do(cctx, model.CoordRequest{Kind: model.CoordRange, Key: model.RoutesPrefix})
	if err == nil && se != model.ErrNone {
		err = fmt.Errorf("%s", se)
	}
	if err != nil {
		return exitf(1, "etcd.endpoints %v: reading the routes: %v", c.Etcd.Endpoints, err)
	}
	if uint32(len(r.KVs)) != c.Subgraphs {
		return exitf(2, "subgraphs: the cluster has %d subgraphs (routes), the configuration says %d", len(r.KVs), c.Subgraphs)
	}
	return nil
}

func managerCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "manager --config FILE",
		Short: "the control plane: bootstraps a new cluster, then runs model.Manager (failure detection, recovery events, snapshot GC)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sess, err := openSession(path, "manager")
			if err != nil {
				return err
			}
			defer sess.Close()
			c, logger, ms, ctx, coord := sess.c, sess.logger, sess.ms, sess.ctx, sess.coord
			if _, _, err := checkEtcd(ctx, c, coord); err != nil {
				return exitf(1, "%v", err)
			}
			bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			created, policy, err := daemon.Bootstrap(bctx, coord, c.Subgraphs, hostIDs(c.BootstrapTerritories), c.policy)
			cancel()
			if err != nil {
				if errors.Is(err, daemon.ErrSubgraphCount) {
					return exitf(2, "subgraphs: %v", err)
				}
				return exitf(1, "%v", err)
			}
			if !created && c.Policy != nil && policy != c.policy {
				logger.Warn("policy: the cluster exists with another policy; the configuration's only applies when the cluster is created",
					"cluster", string(model.EncodePolicy(policy)), "config", string(model.EncodePolicy(c.policy)))
			}
			bs, err := openBlob(ctx, c, logger)
			if err != nil {
				return err
			}
			defer bs.Close()
			tr, err := newTransport(c, logger, coord)
			if err != nil {
				return err
			}
			defer tr.Close()
			mcfg := model.DefaultManagerConfig(model.HostID(c.Manager), c.Subgraphs, hostIDs(c.BootstrapTerritories))
			if err := c.ControlPlane.apply(&mcfg); err != nil {
				return exitf(2, "%v", err)
			}
			if err := mcfg.Validate(); err != nil {
				return exitf(2, "manager: %v", err)
			}
			logger.Info("territoryd manager: campaigning", "bootstrapped", created, "subgraphs", c.Subgraphs, "addr", tr.Addr(), "metrics", ms.Addr,
				"policy", string(model.EncodePolicy(policy)))
			fmt.Fprintf(cmd.OutOrStdout(), "territoryd manager: listening on %s (bootstrapped now: %v)\n", tr.Addr(), created)
			// Only the elected manager acts. Leadership by lease is not
			// fencing, but every write the manager makes is a compare-and-swap
			// or a transaction with compares, so a brief overlap of two
			// leaders cannot corrupt anything (runtime/election).
			err = election.Run(ctx, coord.Client(), election.Config{Prefix: "election/manager",
				Identity: fmt.Sprintf("%d@%s", c.Manager, tr.Addr()), Logger: logger},
				func(lctx context.Context) error {
					logger.Info("territoryd manager: elected; running the control plane")
					done, err := daemon.StartManager(lctx, mcfg, daemon.Services{Coord: coord, Blob: bs}, tr, logger, ms.Metrics, ms.Facts.Observe)
					if err != nil {
						return err
					}
					return <-done
				})
			if err != nil {
				return exitf(1, "manager: %v", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "YAML configuration file (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
