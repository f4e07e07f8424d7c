package telemetry

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"territory/model"
)

// The manager's records and signals become outcomes, phase durations and the
// write pause; the source's acks the catch-up lag.
func TestMigrationMetrics(t *testing.T) {
	now := time.Unix(1000, 0)
	reg := prometheus.NewRegistry()
	m := NewFactMetrics(reg, func() time.Time { return now })
	rec := model.MigrationRecord{Subgraph: 3, Epoch: 40, From: 1, To: 2, Attempts: 1}
	write := func(prev, state model.MigrationState, after time.Duration) {
		now = now.Add(after)
		r := rec
		r.State = state
		m.Observe(100, model.FactMigrationRecord{Manager: 100, Record: r, Prev: prev})
	}
	write(0, model.MigPending, 0)
	write(model.MigPending, model.MigSnapshotStreaming, 10*time.Millisecond)
	now = now.Add(200 * time.Millisecond)
	m.Observe(100, model.FactMigrationSignal{Subgraph: 3, Epoch: 40})
	write(model.MigSnapshotStreaming, model.MigRouteFlipped, 5*time.Millisecond)
	write(model.MigRouteFlipped, model.MigCatchupStreaming, 5*time.Millisecond)
	m.Observe(1, model.FactMigration{Territory: 1, Subgraph: 3, Epoch: 40, Step: model.MigStepAcked, LSN: 20, Target: 27})
	if got := testutil.ToFloat64(m.mig.lag.WithLabelValues("1", "3")); got != 7 {
		t.Fatalf("catch-up lag %v, want 7", got)
	}
	m.Observe(1, model.FactMigration{Territory: 1, Subgraph: 3, Epoch: 40, Step: model.MigStepAcked, LSN: 27, Target: 27})
	if got := testutil.ToFloat64(m.mig.lag.WithLabelValues("1", "3")); got != 0 {
		t.Fatalf("catch-up lag %v once caught up", got)
	}
	now = now.Add(30 * time.Millisecond)
	m.Observe(100, model.FactMigrationSignal{Subgraph: 3, Epoch: 40, Live: true})
	write(model.MigCatchupStreaming, model.MigSyncComplete, time.Millisecond)
	write(model.MigSyncComplete, model.MigCommitted, time.Millisecond)
	write(model.MigCommitted, 0, time.Millisecond)
	// A second migration's first attempt fails after its flip, and the
	// manager deletes it since the route names T_dest: recovered, not
	// abandoned.
	write(0, model.MigPending, 0)
	write(model.MigPending, model.MigSnapshotStreaming, 0)
	write(model.MigSnapshotStreaming, model.MigRouteFlipped, 0)
	write(model.MigRouteFlipped, model.MigCatchupStreaming, 0)
	write(model.MigCatchupStreaming, model.MigFailed, 0)
	write(model.MigFailed, 0, 0)
	// A third one's last attempt fails: abandoned.
	rec.Attempts = model.MigrationMaxAttempts
	write(0, model.MigPending, 0)
	write(model.MigPending, model.MigSnapshotStreaming, 0)
	write(model.MigSnapshotStreaming, model.MigFailed, 0)
	write(model.MigFailed, 0, 0)

	if c := testutil.ToFloat64(m.mig.outcomes.WithLabelValues(OutcomeCommitted)); c != 1 {
		t.Errorf("committed %v", c)
	}
	if c := testutil.ToFloat64(m.mig.outcomes.WithLabelValues(OutcomeFailed)); c != 2 {
		t.Errorf("failed %v", c)
	}
	if c := testutil.ToFloat64(m.mig.outcomes.WithLabelValues(OutcomeAbandoned)); c != 1 {
		t.Errorf("abandoned %v", c)
	}
	if c := testutil.ToFloat64(m.mig.outcomes.WithLabelValues(OutcomeRecovered)); c != 1 {
		t.Errorf("recovered %v", c)
	}
	if n := testutil.CollectAndCount(m.mig.phase); n != 7 {
		t.Errorf("%d phases timed, want 7 (every state)", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "territory_migration_write_pause_seconds":
			h := mf.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != 1 || h.GetSampleSum() < 0.039 || h.GetSampleSum() > 0.041 {
				t.Errorf("write pause: %d samples, sum %v (want one of 40 ms)", h.GetSampleCount(), h.GetSampleSum())
			}
		case "territory_migration_phase_seconds":
			for _, s := range mf.GetMetric() {
				if s.GetLabel()[0].GetValue() == "SNAPSHOT_STREAMING" && s.GetHistogram().GetSampleCount() != 3 {
					t.Errorf("SNAPSHOT_STREAMING timed %d times, want 3 (once per migration)", s.GetHistogram().GetSampleCount())
				}
			}
		}
	}
}
