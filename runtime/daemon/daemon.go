// Package daemon assembles territoryd: territories, each under its own driver,
// on a coordination store, a log, an object store and a transport. Dev mode
// (Dev) puts all of it in one process under one data directory.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"territory/model"
	"territory/runtime/driver"
	"territory/runtime/localdisk"
	"territory/runtime/transport"
)

// Services are the executors every territory of a process shares.
type Services struct {
	Coord driver.Coord
	Log   driver.Log
	Blob  driver.Blob
}

// Bootstrap creates the cluster if it does not exist yet (model.BootstrapPlan:
// the plan, the routes in transactions within etcd's limits, then the
// policy). It reports whether this call wrote the plan and the cluster's
// policy (on an existing cluster, the one stored there, which may differ from
// policy), and checks that an existing cluster has `subgraphs` routes.
//
// Every step is safe to repeat: a bootstrap interrupted by a crash or an
// unknown outcome is finished by the next call (of this or another process),
// which carries out the stored plan, not its own.
func Bootstrap(ctx context.Context, coord driver.Coord, subgraphs uint32, territories []model.HostID, policy model.Policy) (bool, model.Policy, error) {
	plan, err := model.NewBootstrapPlan(subgraphs, territories, policy)
	if err != nil {
		return false, model.Policy{}, err
	}
	txn := func(what string, req model.CoordRequest) (bool, error) {
		resp, se, err := coord.Do(ctx, req)
		if err != nil {
			return false, fmt.Errorf("bootstrap: %s: outcome unknown: %w", what, err)
		}
		if se != model.ErrNone {
			return false, fmt.Errorf("bootstrap: %s: %s", what, se)
		}
		return resp.Succeeded, nil
	}
	created, err := txn("writing the plan", plan.PlanTxn())
	if err != nil {
		return false, model.Policy{}, err
	}
	if !created {
		existing, found, err := ReadPolicy(ctx, coord)
		if err != nil {
			return false, model.Policy{}, fmt.Errorf("bootstrap: %w", err)
		}
		if found {
			return false, existing, checkRouteCount(ctx, coord, subgraphs)
		}
		// A bootstrap is under way or was interrupted: finish its plan.
		r, se, err := coord.Do(ctx, model.CoordRequest{Kind: model.CoordGet, Key: model.BootstrapPlanKey})
		if err != nil || se != model.ErrNone {
			return false, model.Policy{}, fmt.Errorf("bootstrap: reading %s: %v %v", model.BootstrapPlanKey, se, err)
		}
		if len(r.KVs) == 0 {
			return false, model.Policy{}, fmt.Errorf("bootstrap: the plan transaction failed but there is neither a plan nor a policy")
		}
		stored, err := model.ParseBootstrapPlan(r.KVs[0].Value)
		if err != nil {
			return false, model.Policy{}, fmt.Errorf("bootstrap: %s: %w", model.BootstrapPlanKey, err)
		}
		if stored.Subgraphs != subgraphs {
			return false, model.Policy{}, fmt.Errorf("bootstrap: the stored plan has %d subgraphs, the configuration says %d: %w", stored.Subgraphs, subgraphs, ErrSubgraphCount)
		}
		plan = stored
	}
	for i, req := range plan.RouteTxns() {
		// A chunk that fails its compares was written before: nothing to do.
		if _, err := txn(fmt.Sprintf("routes chunk %d", i), req); err != nil {
			return false, model.Policy{}, err
		}
	}
	if _, err := txn("writing the policy", plan.PolicyTxn()); err != nil {
		return false, model.Policy{}, err
	}
	final, found, err := ReadPolicy(ctx, coord)
	if err != nil || !found {
		return false, model.Policy{}, fmt.Errorf("bootstrap: reading the policy back: found %v: %v", found, err)
	}
	return created, final, checkRouteCount(ctx, coord, subgraphs)
}

func checkRouteCount(ctx context.Context, coord driver.Coord, subgraphs uint32) error {
	r, se, err := coord.Do(ctx, model.CoordRequest{Kind: model.CoordRange, Key: model.RoutesPrefix})
	if err != nil || se != model.ErrNone {
		return fmt.Errorf("bootstrap: reading the routes: %v %v", se, err)
	}
	if uint32(len(r.KVs)) != subgraphs {
		return fmt.Errorf("bootstrap: the cluster has %d routes, the configuration says %d subgraphs: %w", len(r.KVs), subgraphs, ErrSubgraphCount)
	}
	return nil
}

// ErrSubgraphCount: the existing cluster has another number of subgraphs.
var ErrSubgraphCount = errors.New("the subgraph count is fixed when the cluster is created")

// ReadPolicy reads the cluster's policy (model.PolicyKey); found is false if
// the cluster has not been bootstrapped yet.
func ReadPolicy(ctx context.Context, coord driver.Coord) (model.Policy, bool, error) {
	r, se, err := coord.Do(ctx, model.CoordRequest{Kind: model.CoordGet, Key: model.PolicyKey})
	if err != nil {
		return model.Policy{}, false, fmt.Errorf("reading %s: %w", model.PolicyKey, err)
	}
	if se != model.ErrNone {
		return model.Policy{}, false, fmt.Errorf("reading %s: %s", model.PolicyKey, se)
	}
	if len(r.KVs) == 0 {
		return model.Policy{}, false, nil
	}
	p, err := model.ParsePolicy(r.KVs[0].Value)
	if err != nil {
		return model.Policy{}, false, fmt.Errorf("%s: %w", model.PolicyKey, err)
	}
	return p, true, nil
}

// WaitPolicy polls ReadPolicy until the cluster is bootstrapped or ctx ends;
// waiting is called once per poll that finds no cluster yet.
func WaitPolicy(ctx context.Context, coord driver.Coord, every time.Duration, waiting func()) (model.Policy, error) {
	for {
		cctx, cancel := context.WithTimeout(ctx, every)
		p, found, err := ReadPolicy(cctx, coord)
		cancel()
		if err == nil && found {
			return p, nil
		}
		if err == nil && waiting != nil {
			waiting()
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return model.Policy{}, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
			}
			return model.Policy{}, fmt.Errorf("no cluster yet (%s absent): %w", model.PolicyKey, ctx.Err())
		case <-time.After(every):
		}
	}
}

// Territories runs a set of territories in this process.
type Territories struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	errs    []error
	drivers []*driver.Driver
}

// TerritoryOptions configures StartTerritories.
type TerritoryOptions struct {
	IDs       []model.HostID
	Subgraphs uint32
	Services  Services
	Transport *transport.Transport
	Logger    *slog.Logger
	Metrics   *driver.Metrics
	// Observer sees every fact of every territory (on its driver's goroutine).
	Observer func(model.HostID, model.Fact)
	// Policy is the cluster's policy (nil: model.DefaultPolicy); a subgraph
	// starts from it before its log is replayed, so every territory of a
	// cluster must use the same one (read it from the cluster: ReadPolicy).
	Policy *model.Policy
	// Config adjusts each territory's configuration (nil: the defaults).
	Config func(*model.TerritoryConfig)
	// Manager is the control-plane host that commits recovery events (0: none).
	Manager model.HostID
	// DiskRoot holds each territory's cache files, under DiskRoot/territory-<id>
	// ("" : no local disk; disk calls fail and the core falls back to the object store).
	DiskRoot string
}

// StartTerritories starts one driver per territory id and registers each with
// the transport.
func StartTerritories(o TerritoryOptions) (*Territories, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &Territories{cancel: cancel}
	for _, id := range o.IDs {
		cfg := model.DefaultTerritoryConfig(id, o.Subgraphs)
		cfg.Manager = o.Manager
		if o.Policy != nil {
			cfg.Policy = *o.Policy
		}
		if o.Config != nil {
			o.Config(&cfg)
		}
		t, err := model.NewTerritory(cfg)
		if err != nil {
			ts.Stop()
			return nil, err
		}
		logger := o.Logger.With("territory", id)
		var disk driver.Disk
		if o.DiskRoot != "" {
			ld, err := localdisk.Open(filepath.Join(o.DiskRoot, fmt.Sprintf("territory-%d", id)))
			if err != nil {
				ts.Stop()
				return nil, err
			}
			disk = ld
		}
		d, err := driver.New(driver.Config{ID: id, Node: t, Transport: o.Transport,
			Coord: o.Services.Coord, Log: o.Services.Log, Blob: o.Services.Blob, Disk: disk,
			Observer: func(h model.HostID, f model.Fact) {
				logFact(logger, f)
				if o.Observer != nil {
					o.Observer(h, f)
				}
			},
			Logger: logger, Metrics: o.Metrics})
		if err != nil {
			ts.Stop()
			return nil, err
		}
		o.Transport.Register(id, d.Deliver)
		ts.drivers = append(ts.drivers, d)
		ts.wg.Add(1)
		go func() {
			defer ts.wg.Done()
			defer o.Transport.Unregister(id)
			if err := d.Run(ctx); err != nil {
				ts.mu.Lock()
				ts.errs = append(ts.errs, err)
				ts.mu.Unlock()
			}
		}()
	}
	return ts, nil
}

func logFact(l *slog.Logger, f model.Fact) {
	switch f := f.(type) {
	case model.FactAdopted:
		l.Info("adopted", "subgraph", f.Subgraph)
	case model.FactOperational:
		l.Info("operational", "subgraph", f.Subgraph, "epoch", f.Epoch, "applied_lsn", f.AppliedLSN)
	case model.FactSteppedDown:
		l.Info("stepped down", "subgraph", f.Subgraph, "epoch", f.Epoch, "why", f.Why())
	case model.FactSnapshotLoaded:
		l.Info("snapshot loaded", "subgraph", f.Subgraph, "uuid", f.UUID, "lsn", f.LSN, "rejected", f.Rejected, "from_cache", f.FromCache)
	case model.FactSnapshotStarted:
		l.Debug("snapshot started", "subgraph", f.Subgraph, "uuid", f.UUID, "lsn", f.LSN)
	case model.FactSnapshotCommitted:
		l.Info("snapshot committed", "subgraph", f.Subgraph, "uuid", f.UUID, "lsn", f.LSN, "superseded", f.Superseded)
	case model.FactBadCoordValue:
		l.Warn("coordination value not written by the core: ignored", "reader", f.Reader, "key", f.Key, "err", f.Err)
	case model.FactMandateFailed:
		e := f.Failure()
		l.Warn(e.EventType, "event_id", e.EventID, "event_type", e.EventType, "source_territory", e.SourceTerritory,
			"mandate_id", e.MandateID, "reason_code", e.ReasonCode, "details", e.Details, "subgraph", f.Subgraph)
	case model.FactCommitted:
		l.Debug("committed", "subgraph", f.Subgraph, "lsn", f.LSN, "epoch", f.Epoch, "type", f.Type.String())
	case model.FactEgressLeader:
		l.Info("egress leadership", "leader", f.Leader, "epoch", f.Epoch, "tail_offset", f.TailOffset)
	case model.FactEgressCursor:
		l.Debug("egress cursor", "subgraph", f.Subgraph, "lsn", f.LSN, "tail", f.Tail)
	case model.FactProxyApplied:
		l.Debug("proxy applied", "subgraph", f.Subgraph, "lsn", f.LSN, "lag_events", f.LagEvents, "lag_ms", f.LagMs)
	case model.FactMigration:
		l.Info("migration step", "subgraph", f.Subgraph, "migration_epoch", f.Epoch, "step", f.Step.String(), "lsn", f.LSN,
			"image_bytes", f.Bytes, "target", f.Target, "replayed", f.Replayed)
	case model.FactMigrationRecord:
		r := f.Record
		state := "deleted"
		if r.State != 0 {
			state = r.State.String()
		}
		l.Info("migration record", "subgraph", r.Subgraph, "state", state, "migration_epoch", r.Epoch, "from", r.From, "to", r.To,
			"attempts", r.Attempts, "snapshot_lsn", r.SnapshotLSN, "acked_lsn", r.AckedLSN, "target_lsn", r.TargetLSN, "loaded", f.Loaded)
	case model.FactMigrationSignal:
		what := "held"
		if f.Live {
			what = "live"
		}
		l.Info("migration signal", "subgraph", f.Subgraph, "migration_epoch", f.Epoch, "signal", what)
	case model.FactProxyGap:
		l.Error("proxy: the egress stream skips an event", "subgraph", f.Subgraph, "applied", f.Applied, "lsn", f.LSN)
	default:
		l.Debug("fact", "fact", fmt.Sprintf("%T", f))
	}
}

// Stop shuts every territory down gracefully and waits for them.
func (ts *Territories) Stop() error {
	ts.cancel()
	ts.wg.Wait()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return errors.Join(ts.errs...)
}

// WaitOperational waits until every subgraph has an operational primary
// according to the facts seen by Watcher (see OperationalWatcher).
func WaitOperational(ctx context.Context, w *OperationalWatcher, subgraphs uint32) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if w.Count() >= int(subgraphs) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d subgraphs operational: %w", w.Count(), subgraphs, ctx.Err())
		case <-tick.C:
		}
	}
}

// OperationalWatcher tracks which subgraphs have an operational primary.
type OperationalWatcher struct {
	mu  sync.Mutex
	ops map[model.SubgraphID]model.HostID
}

// NewOperationalWatcher returns an empty watcher.
func NewOperationalWatcher() *OperationalWatcher {
	return &OperationalWatcher{ops: map[model.SubgraphID]model.HostID{}}
}

// Observe is a driver observer.
func (w *OperationalWatcher) Observe(_ model.HostID, f model.Fact) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch f := f.(type) {
	case model.FactOperational:
		w.ops[f.Subgraph] = f.Territory
	case model.FactSteppedDown:
		if w.ops[f.Subgraph] == f.Territory {
			delete(w.ops, f.Subgraph)
		}
	}
}

// Count is the number of operational subgraphs.
func (w *OperationalWatcher) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ops)
}

// StartManager runs the control plane (model.Manager) under a driver until
// ctx is cancelled; the returned channel yields Run's result.
// StartEgress runs a log egress node (model.Egress) until ctx ends: it
// campaigns for the egress leadership itself (a lease and a leader key), so
// several processes may run one each, the others standing by. observer (may
// be nil) sees every fact.
func StartEgress(ctx context.Context, cfg model.EgressConfig, svc Services, logger *slog.Logger, metrics *driver.Metrics, observer func(model.HostID, model.Fact)) (<-chan error, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e, err := model.NewEgress(cfg)
	if err != nil {
		return nil, err
	}
	logger = logger.With("egress", cfg.ID)
	d, err := driver.New(driver.Config{ID: cfg.ID, Node: e, Coord: svc.Coord, Log: svc.Log,
		Observer: func(h model.HostID, f model.Fact) {
			logFact(logger, f)
			if observer != nil {
				observer(h, f)
			}
		}, Logger: logger, Metrics: metrics})
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return done, nil
}

// observer (may be nil) sees every fact of the manager.
func StartManager(ctx context.Context, cfg model.ManagerConfig, svc Services, tr *transport.Transport, logger *slog.Logger, metrics *driver.Metrics, observer func(model.HostID, model.Fact)) (<-chan error, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := model.NewManager(cfg)
	if err != nil {
		return nil, err
	}
	logger = logger.With("manager", cfg.ID)
	d, err := driver.New(driver.Config{ID: cfg.ID, Node: m, Transport: tr, Coord: svc.Coord, Blob: svc.Blob,
		Observer: func(h model.HostID, f model.Fact) {
			logFact(logger, f)
			if observer != nil {
				observer(h, f)
			}
		}, Logger: logger, Metrics: metrics})
	if err != nil {
		return nil, err
	}
	tr.Register(cfg.ID, d.Deliver)
	done := make(chan error, 1)
	go func() {
		err := d.Run(ctx)
		// Unregister before reporting: a re-elected manager in this process
		// registers again as soon as it hears this one is done.
		tr.Unregister(cfg.ID)
		done <- err
	}()
	return done, nil
}
