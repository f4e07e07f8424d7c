// Package telemetry turns what the protocol core reports into Prometheus
// metrics (FactMetrics, a driver observer) and sets up OpenTelemetry tracing
// (Setup, Span), which stays off and costs nothing unless the standard OTLP
// environment variables ask for it.
package telemetry

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"territory/model"
)

// Observer is the driver's observer signature (driver.Config.Observer,
// daemon.TerritoryOptions.Observer).
type Observer = func(model.HostID, model.Fact)

var _ Observer = (*FactMetrics)(nil).Observe

// Observers calls each non-nil observer in turn.
func Observers(obs ...Observer) Observer {
	var live []Observer
	for _, o := range obs {
		if o != nil {
			live = append(live, o)
		}
	}
	return func(h model.HostID, f model.Fact) {
		for _, o := range live {
			o(h, f)
		}
	}
}

// Fencing reason classes (the label of territory_fencing_events_total).
const (
	ReasonLogFenced    = "log_fenced"    // a writer at a higher epoch opened the log
	ReasonRouteMoved   = "route_moved"   // the route names another primary or a newer epoch
	ReasonRouteDeleted = "route_deleted" // the route is gone
	ReasonOther        = "other"
)

// ReasonClass maps a step-down reason to a short, bounded label value,
// whether the route was seen by the route poll or by a read barrier.
func ReasonClass(r model.StepDownReason) string {
	switch r {
	case model.StepDownFenced:
		return ReasonLogFenced
	case model.StepDownRouteDeleted:
		return ReasonRouteDeleted
	case model.StepDownRouteMoved:
		return ReasonRouteMoved
	}
	return ReasonOther
}

// Recovery sources (the label of territory_recoveries_total).
const (
	SourceSnapshot = "snapshot" // a committed snapshot from the object store
	SourceCache    = "cache"    // the snapshot cached on local disk
	SourceLog      = "log"      // no usable snapshot: the whole log is replayed
)

// FactMetrics turns model.Facts into Prometheus series. Its Observe method is
// a driver observer; it is safe for concurrent use by several drivers and
// cheap on the hot path (FactCommitted and FactOpDone return at once).
//
// Timing comes from the observer's clock, at the moment each fact is
// observed: facts carry no timestamps.
type FactMetrics struct {
	now func() time.Time

	fencing           *prometheus.CounterVec
	recoveries        *prometheus.CounterVec
	rejected          prometheus.Counter
	snapCommitted     prometheus.Counter
	snapInterval      prometheus.Histogram
	snapDuration      prometheus.Histogram
	replayEvents      prometheus.Counter
	replayPerRecovery prometheus.Histogram
	replaySeconds     prometheus.Histogram
	replayRate        *prometheus.GaugeVec
	recoverySeconds   prometheus.Histogram
	operational       *prometheus.GaugeVec
	replicaLag        *prometheus.GaugeVec
	replicaLagMs      *prometheus.GaugeVec
	replicaLSN        *prometheus.GaugeVec
	egressLag         *prometheus.GaugeVec
	egressCursor      *prometheus.GaugeVec
	mig               *migrationMetrics
	sn                *supernodeMetrics

	mu   sync.Mutex
	subs map[subKey]*subState
}

type subKey struct {
	t  model.HostID
	sg model.SubgraphID
}

// subState is what FactMetrics remembers about one (territory, subgraph).
type subState struct {
	recovering  bool      // FactAdopted seen, FactOperational not yet
	adoptedAt   time.Time // FactAdopted
	loaded      bool      // FactSnapshotLoaded seen in this recovery
	loadedAt    time.Time
	loadedLSN   uint64
	operational bool
	snapFrom    time.Time // FactOperational or the last FactSnapshotCommitted
	snapUUID    string    // the snapshot attempt in progress (FactSnapshotStarted)
	snapStarted time.Time
}

// NewFactMetrics registers the series with reg. now is the clock (nil: time.Now).
func NewFactMetrics(reg prometheus.Registerer, now func() time.Time) *FactMetrics {
	if now == nil {
		now = time.Now
	}
	m := &FactMetrics{now: now, subs: map[subKey]*subState{}, mig: newMigrationMetrics(), sn: newSupernodeMetrics(),
		fencing: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "territory_fencing_events_total",
			Help: "Territories that stopped serving a subgraph, by reason class: log_fenced (a newer writer opened the log), route_moved, route_deleted, other.",
		}, []string{"reason"}),
		recoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "territory_recoveries_total",
			Help: "Subgraph recoveries (every adoption, a cluster's first start included) by where the state came from: snapshot (object store), cache (local disk) or log (no usable snapshot: full replay).",
		}, []string{"source"}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "territory_snapshots_rejected_total",
			Help: "Committed snapshots skipped during recovery because their blob was missing or failed its checksum.",
		}),
		snapCommitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "territory_snapshots_committed_total",
			Help: "Snapshots committed (each supersedes the previous committed one).",
		}),
		snapDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "territory_snapshot_duration_seconds",
			Help:    "From the start of a snapshot attempt (encode, record UPLOADING) to its commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		snapInterval: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "territory_snapshot_interval_seconds",
			Help: "Seconds from a subgraph becoming operational, or from its previous snapshot commit, to the next snapshot commit. " +
				"An upper bound on a snapshot's own duration: the core does not report when a snapshot starts.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 16), // 50 ms .. 27 min
		}),
		replayEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "territory_replay_events_total",
			Help: "Log entries replayed by recoveries (applied LSN when operational minus the loaded snapshot's LSN).",
		}),
		replayPerRecovery: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "territory_replay_events",
			Help:    "Log entries replayed per recovery.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 12), // 1 .. 4M
		}),
		replaySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "territory_replay_seconds",
			Help:    "Seconds from a recovery's snapshot load to the subgraph being operational (log open and replay).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16), // 5 ms .. 164 s
		}),
		replayRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "territory_replay_rate_events_per_second",
			Help: "Replay rate of the territory's last recovery that replayed anything: entries replayed / territory_replay_seconds.",
		}, []string{"territory"}),
		recoverySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "territory_recovery_seconds",
			Help:    "Seconds from a territory adopting a subgraph (claim, load, open, replay) to serving it.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
		}),
		operational: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "territory_operational_subgraphs",
			Help: "Subgraphs this process's territories currently serve as operational primary.",
		}, []string{"territory"}),
		// The supernode path (model/proxy_component.go, model/egress.go):
		// from FactProxyApplied and FactEgressCursor.
		replicaLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "territory_replica_lag_events",
			Help: "Entries a territory's proxy replica of a supernode subgraph is behind the subgraph's committed tail, as the egress stream last told it.",
		}, []string{"territory", "subgraph"}),
		replicaLagMs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "territory_replica_lag_ms",
			Help: "Milliseconds, on the territory's clock, its proxy replica of a subgraph has been behind that tail (0: caught up).",
		}, []string{"territory", "subgraph"}),
		replicaLSN: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "territory_replica_lsn",
			Help: "The LSN a territory's proxy replica of a subgraph has applied (stale reads it serves reflect it).",
		}, []string{"territory", "subgraph"}),
		egressLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "territory_egress_lag_events",
			Help: "Entries of a supernode subgraph's committed log the egress had not yet published when it last persisted its cursor.",
		}, []string{"subgraph"}),
		egressCursor: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "territory_egress_cursor_lsn",
			Help: "The last LSN of a subgraph the egress stream acknowledged and the egress persisted.",
		}, []string{"subgraph"}),
	}
	reg.MustRegister(m.fencing, m.recoveries, m.rejected, m.snapCommitted, m.snapInterval, m.snapDuration,
		m.replayEvents, m.replayPerRecovery, m.replaySeconds, m.replayRate, m.recoverySeconds,
		m.operational, m.replicaLag, m.replicaLagMs, m.replicaLSN, m.egressLag, m.egressCursor)
	reg.MustRegister(m.mig.collectors()...)
	reg.MustRegister(m.sn.collectors()...)
	return m
}

func subgraphLabel(sg model.SubgraphID) string { return strconv.FormatUint(uint64(sg), 10) }

func (m *FactMetrics) state(k subKey) *subState {
	s := m.subs[k]
	if s == nil {
		s = &subState{}
		m.subs[k] = s
	}
	return s
}

func territoryLabel(t model.HostID) string { return strconv.FormatUint(uint64(t), 10) }

// Observe is a driver observer (see Observer).
func (m *FactMetrics) Observe(_ model.HostID, f model.Fact) {
	switch f.(type) {
	case model.FactCommitted, model.FactOpDone:
		return // per-write facts: the driver's own metrics cover them
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	switch f := f.(type) {
	case model.FactMigrationRecord, model.FactMigrationSignal, model.FactMigration:
		m.mig.observe(now, f)

	case model.FactAdopted:
		s := m.state(subKey{f.Territory, f.Subgraph})
		if s.operational { // a restarted incarnation adopts again: the old one is gone
			s.operational = false
			m.operational.WithLabelValues(territoryLabel(f.Territory)).Dec()
		}
		*s = subState{recovering: true, adoptedAt: now}

	case model.FactSnapshotLoaded:
		src := SourceSnapshot
		switch {
		case f.FromCache:
			src = SourceCache
		case f.UUID == "":
			src = SourceLog
		}
		m.recoveries.WithLabelValues(src).Inc()
		m.rejected.Add(float64(f.Rejected))
		if s := m.state(subKey{f.Territory, f.Subgraph}); s.recovering {
			s.loaded, s.loadedAt, s.loadedLSN = true, now, f.LSN
		}

	case model.FactOperational:
		s := m.state(subKey{f.Territory, f.Subgraph})
		if s.recovering {
			m.recoverySeconds.Observe(now.Sub(s.adoptedAt).Seconds())
			if s.loaded && f.AppliedLSN >= s.loadedLSN {
				n := f.AppliedLSN - s.loadedLSN
				d := now.Sub(s.loadedAt).Seconds()
				m.replayEvents.Add(float64(n))
				m.replayPerRecovery.Observe(float64(n))
				m.replaySeconds.Observe(d)
				if n > 0 && d > 0 {
					m.replayRate.WithLabelValues(territoryLabel(f.Territory)).Set(float64(n) / d)
				}
			}
			s.recovering, s.loaded = false, false
		}
		if !s.operational {
			s.operational = true
			m.operational.WithLabelValues(territoryLabel(f.Territory)).Inc()
		}
		s.snapFrom = now

	case model.FactProxyApplied:
		t, sg := territoryLabel(f.Territory), subgraphLabel(f.Subgraph)
		m.replicaLag.WithLabelValues(t, sg).Set(float64(f.LagEvents))
		m.replicaLagMs.WithLabelValues(t, sg).Set(float64(f.LagMs))
		m.replicaLSN.WithLabelValues(t, sg).Set(float64(f.LSN))
		m.sn.applied(f)

	case model.FactProxyDropped:
		t, sg := territoryLabel(f.Territory), subgraphLabel(f.Subgraph)
		m.replicaLag.DeleteLabelValues(t, sg)
		m.replicaLagMs.DeleteLabelValues(t, sg)
		m.replicaLSN.DeleteLabelValues(t, sg)
		m.sn.dropped(f.Territory, f.Subgraph)

	case model.FactEgressCursor:
		sg := subgraphLabel(f.Subgraph)
		m.egressCursor.WithLabelValues(sg).Set(float64(f.LSN))
		if f.Tail >= f.LSN {
			m.egressLag.WithLabelValues(sg).Set(float64(f.Tail - f.LSN))
		}

	case model.FactSnapshotStarted:
		s := m.state(subKey{f.Territory, f.Subgraph})
		s.snapUUID, s.snapStarted = f.UUID, now

	case model.FactSnapshotCommitted:
		m.snapCommitted.Inc()
		s := m.state(subKey{f.Territory, f.Subgraph})
		if s.snapUUID == f.UUID && !s.snapStarted.IsZero() {
			m.snapDuration.Observe(now.Sub(s.snapStarted).Seconds())
		}
		s.snapUUID = ""
		if !s.snapFrom.IsZero() {
			m.snapInterval.Observe(now.Sub(s.snapFrom).Seconds())
		}
		s.snapFrom = now

	case model.FactSteppedDown:
		m.fencing.WithLabelValues(ReasonClass(f.Reason)).Inc()
		k := subKey{f.Territory, f.Subgraph}
		if s := m.subs[k]; s != nil && s.operational {
			m.operational.WithLabelValues(territoryLabel(f.Territory)).Dec()
		}
		delete(m.subs, k)
	}
}
