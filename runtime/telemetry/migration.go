package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"territory/model"
)

// Migration outcomes (the label of territory_migrations_total).
const (
	OutcomeCommitted = "committed" // the record reached COMMITTED
	OutcomeFailed    = "failed"    // an attempt went FAILED (it is retried, up to model.MigrationMaxAttempts)
	OutcomeAbandoned = "abandoned" // deleted as FAILED after the last attempt
	OutcomeRecovered = "recovered" // deleted as FAILED with retries left: the route named its T_dest, which took the subgraph up from the log (the move was made)
)

// migrationMetrics are the series of phased migrations: the manager's
// records (FactMigrationRecord) and signals (FactMigrationSignal), and the
// source territory's view of the catch-up (FactMigration, MigStepAcked).
type migrationMetrics struct {
	outcomes *prometheus.CounterVec
	phase    *prometheus.HistogramVec
	pause    prometheus.Histogram
	lag      *prometheus.GaugeVec

	entered map[model.SubgraphID]migEntered // the phase each record is in, since when (by this observer's clock)
	held    map[migKey]time.Time            // MigReady heard, MigLive not yet
}

type migEntered struct {
	state model.MigrationState
	epoch uint64
	at    time.Time
}

type migKey struct {
	sg    model.SubgraphID
	epoch uint64
}

func newMigrationMetrics() *migrationMetrics {
	return &migrationMetrics{entered: map[model.SubgraphID]migEntered{}, held: map[migKey]time.Time{},
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "territory_migrations_total",
			Help: "Migration attempts by outcome: committed, failed (FAILED; retried up to the attempt bound), abandoned (deleted after the last failed attempt) or recovered (a FAILED record deleted because its route names its T_dest, which recovered the subgraph from the log). Counted by the manager.",
		}, []string{"outcome"}),
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "territory_migration_phase_seconds",
			Help:    "Seconds a migration record spent in a phase (PENDING, SNAPSHOT_STREAMING, ROUTE_FLIPPED, CATCHUP_STREAMING, SYNC_COMPLETE, COMMITTED, FAILED), on the manager's clock, from the write that entered it to the write that left it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18), // 1 ms .. 131 s
		}, []string{"phase"}),
		pause: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "territory_migration_write_pause_seconds",
			Help:    "The write pause of a migration on the manager's clock: from T_src's MigReady (it holds the subgraph's writes) to T_dest's MigLive (operational).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms .. 33 s
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "territory_migration_catchup_lag_events",
			Help: "Catch-up entries T_dest has yet to acknowledge, as the source territory last heard (the catch-up target minus the LSN acknowledged; 0 once caught up).",
		}, []string{"territory", "subgraph"}),
	}
}

func (m *migrationMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.outcomes, m.phase, m.pause, m.lag}
}

// observe takes one fact (under FactMetrics.mu).
func (m *migrationMetrics) observe(now time.Time, f model.Fact) {
	switch f := f.(type) {
	case model.FactMigrationRecord:
		r := f.Record
		if f.Loaded {
			// A (re)started manager read it: its phase started before we
			// watched, so it is timed from the next write only.
			if e, ok := m.entered[r.Subgraph]; !ok || e.state != r.State || e.epoch != r.Epoch {
				m.entered[r.Subgraph] = migEntered{state: r.State, epoch: r.Epoch}
			}
			return
		}
		if e, ok := m.entered[r.Subgraph]; ok && !e.at.IsZero() && e.state == f.Prev && e.state != r.State {
			m.phase.WithLabelValues(e.state.String()).Observe(now.Sub(e.at).Seconds())
		}
		switch {
		case r.State == model.MigCommitted && f.Prev != model.MigCommitted:
			m.outcomes.WithLabelValues(OutcomeCommitted).Inc()
		case r.State == model.MigFailed && f.Prev != model.MigFailed:
			m.outcomes.WithLabelValues(OutcomeFailed).Inc()
		case r.State == 0 && f.Prev == model.MigFailed && r.RetriesLeft():
			m.outcomes.WithLabelValues(OutcomeRecovered).Inc()
		case r.State == 0 && f.Prev == model.MigFailed:
			m.outcomes.WithLabelValues(OutcomeAbandoned).Inc()
		}
		if r.State == 0 {
			delete(m.entered, r.Subgraph)
			return
		}
		if e := m.entered[r.Subgraph]; e.state != r.State || e.at.IsZero() {
			m.entered[r.Subgraph] = migEntered{state: r.State, epoch: r.Epoch, at: now}
		}
	case model.FactMigrationSignal:
		k := migKey{f.Subgraph, f.Epoch}
		if !f.Live {
			if _, ok := m.held[k]; !ok {
				m.held[k] = now
			}
			return
		}
		if at, ok := m.held[k]; ok {
			m.pause.Observe(now.Sub(at).Seconds())
			delete(m.held, k)
		}
		for h := range m.held { // order: deletions only
			if h.sg == f.Subgraph && h.epoch < f.Epoch {
				delete(m.held, h) // an earlier attempt that never went live
			}
		}
	case model.FactMigration:
		if f.Step == model.MigStepAcked {
			lag := uint64(0)
			if f.Target > f.LSN {
				lag = f.Target - f.LSN
			}
			m.lag.WithLabelValues(territoryLabel(f.Territory), subgraphLabel(f.Subgraph)).Set(float64(lag))
		}
	}
}
