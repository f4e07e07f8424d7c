package telemetry

import (
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"territory/model"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) set(d time.Duration) { c.t = time.Unix(1_000_000, 0).Add(d) }
func newFake() *fakeClock                { c := &fakeClock{}; c.set(0); return c }
func sec(s float64) time.Duration        { return time.Duration(s * float64(time.Second)) }
func label(id model.HostID) string       { return strconv.FormatUint(uint64(id), 10) }
func eq(t *testing.T, what string, got, want float64) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// histogram returns a histogram's sample count and sum from reg.
func histogram(t *testing.T, reg *prometheus.Registry, name string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0, 0
}

func TestFactMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	clk := newFake()
	m := NewFactMetrics(reg, clk.now)
	obs := m.Observe

	// Territory 1 recovers subgraph 3 from a snapshot at LSN 100 (one bad
	// snapshot skipped) and replays 50 entries in 2 s: 25/s.
	clk.set(0)
	obs(1, model.FactAdopted{Territory: 1, Subgraph: 3})
	clk.set(sec(1))
	obs(1, model.FactSnapshotLoaded{Territory: 1, Subgraph: 3, UUID: "s1", LSN: 100, Rejected: 1})
	clk.set(sec(3))
	obs(1, model.FactOperational{Territory: 1, Subgraph: 3, Epoch: 2, AppliedLSN: 150})
	// Writes are ignored; two snapshots commit 10 s and 5 s apart.
	obs(1, model.FactCommitted{Territory: 1, Subgraph: 3, LSN: 151})
	obs(9, model.FactOpDone{Client: 9})
	clk.set(sec(13))
	obs(1, model.FactSnapshotCommitted{Territory: 1, Subgraph: 3, UUID: "s2", LSN: 160, Superseded: "s1"})
	clk.set(sec(17.5))
	obs(1, model.FactSnapshotStarted{Territory: 1, Subgraph: 3, UUID: "s3", LSN: 170})
	clk.set(sec(18))
	obs(1, model.FactSnapshotCommitted{Territory: 1, Subgraph: 3, UUID: "s3", LSN: 170, Superseded: "s2"})

	// Territory 1 recovers subgraph 4 from an empty log: nothing replayed,
	// the rate gauge keeps the last recovery that replayed anything.
	obs(1, model.FactAdopted{Territory: 1, Subgraph: 4})
	obs(1, model.FactSnapshotLoaded{Territory: 1, Subgraph: 4})
	clk.set(sec(18.5))
	obs(1, model.FactOperational{Territory: 1, Subgraph: 4, Epoch: 1})

	// Territory 2 recovers subgraph 5 from its disk cache: 30 entries in 1 s.
	clk.set(sec(20))
	obs(2, model.FactAdopted{Territory: 2, Subgraph: 5})
	obs(2, model.FactSnapshotLoaded{Territory: 2, Subgraph: 5, UUID: "c1", LSN: 10, FromCache: true})
	clk.set(sec(21))
	obs(2, model.FactOperational{Territory: 2, Subgraph: 5, Epoch: 3, AppliedLSN: 40})

	eq(t, "recoveries{snapshot}", testutil.ToFloat64(m.recoveries.WithLabelValues(SourceSnapshot)), 1)
	eq(t, "recoveries{log}", testutil.ToFloat64(m.recoveries.WithLabelValues(SourceLog)), 1)
	eq(t, "recoveries{cache}", testutil.ToFloat64(m.recoveries.WithLabelValues(SourceCache)), 1)
	eq(t, "snapshots rejected", testutil.ToFloat64(m.rejected), 1)
	eq(t, "snapshots committed", testutil.ToFloat64(m.snapCommitted), 2)
	eq(t, "replay events", testutil.ToFloat64(m.replayEvents), 80)
	eq(t, "replay rate{1}", testutil.ToFloat64(m.replayRate.WithLabelValues(label(1))), 25)
	eq(t, "replay rate{2}", testutil.ToFloat64(m.replayRate.WithLabelValues(label(2))), 30)
	eq(t, "operational{1}", testutil.ToFloat64(m.operational.WithLabelValues(label(1))), 2)
	eq(t, "operational{2}", testutil.ToFloat64(m.operational.WithLabelValues(label(2))), 1)

	for _, h := range []struct {
		name  string
		count uint64
		sum   float64
	}{
		{"territory_snapshot_interval_seconds", 2, 15},  // 13-3, 18-13
		{"territory_snapshot_duration_seconds", 1, 0.5}, // s3: started 17.5, committed 18 (s2 had no start)
		{"territory_recovery_seconds", 3, 3 + 0.5 + 1},  // adopted -> operational
		{"territory_replay_seconds", 3, 2 + 0.5 + 1},    // loaded -> operational
		{"territory_replay_events", 3, 50 + 0 + 30},     // per recovery
	} {
		n, s := histogram(t, reg, h.name)
		if n != h.count || s != h.sum {
			t.Errorf("%s: count %d sum %v, want %d and %v", h.name, n, s, h.count, h.sum)
		}
	}

	// Step-downs: each counts by reason class; only operational ones leave
	// the gauge.
	obs(1, model.FactSteppedDown{Territory: 1, Subgraph: 3, Epoch: 2, Reason: model.StepDownFenced})
	obs(2, model.FactSteppedDown{Territory: 2, Subgraph: 5, Epoch: 3, Reason: model.StepDownRouteMoved, Barrier: true, Primary: 1, RouteEpoch: 4})
	obs(1, model.FactSteppedDown{Territory: 1, Subgraph: 9, Epoch: 1, Reason: model.StepDownRouteDeleted}) // never operational
	eq(t, "fencing{log_fenced}", testutil.ToFloat64(m.fencing.WithLabelValues(ReasonLogFenced)), 1)
	eq(t, "fencing{route_moved}", testutil.ToFloat64(m.fencing.WithLabelValues(ReasonRouteMoved)), 1)
	eq(t, "fencing{route_deleted}", testutil.ToFloat64(m.fencing.WithLabelValues(ReasonRouteDeleted)), 1)
	eq(t, "operational{1}", testutil.ToFloat64(m.operational.WithLabelValues(label(1))), 1)
	eq(t, "operational{2}", testutil.ToFloat64(m.operational.WithLabelValues(label(2))), 0)

	// A new incarnation adopting an operational subgraph replaces the old one.
	obs(1, model.FactAdopted{Territory: 1, Subgraph: 4})
	eq(t, "operational{1} after re-adopt", testutil.ToFloat64(m.operational.WithLabelValues(label(1))), 0)
	// A recovery that ends in a step-down records no replay.
	obs(1, model.FactSteppedDown{Territory: 1, Subgraph: 4, Reason: model.StepDownRouteMoved, Primary: 2, RouteEpoch: 5})
	clk.set(sec(30))
	obs(1, model.FactOperational{Territory: 1, Subgraph: 4, Epoch: 6, AppliedLSN: 7})
	if n, _ := histogram(t, reg, "territory_recovery_seconds"); n != 3 {
		t.Errorf("an operational fact without an adoption must not count as a recovery: %d", n)
	}
	// The interval of a snapshot after a step-down starts at the new operational fact.
	clk.set(sec(32))
	obs(1, model.FactSnapshotCommitted{Territory: 1, Subgraph: 4, UUID: "s9", LSN: 7})
	if n, s := histogram(t, reg, "territory_snapshot_interval_seconds"); n != 3 || s != 17 {
		t.Errorf("snapshot interval: count %d sum %v, want 3 and 17", n, s)
	}

	// Replica lag has no samples until a proxy reports.
	if n := testutil.CollectAndCount(m.replicaLag); n != 0 {
		t.Errorf("replica lag: %d series before any proxy", n)
	}
	obs(2, model.FactProxyApplied{Territory: 2, Subgraph: 5, LSN: 30, Tail: 42, LagEvents: 12, LagMs: 250})
	eq(t, "replica lag{2,5}", testutil.ToFloat64(m.replicaLag.WithLabelValues("2", "5")), 12)
	eq(t, "replica lag ms{2,5}", testutil.ToFloat64(m.replicaLagMs.WithLabelValues("2", "5")), 250)
	eq(t, "replica lsn{2,5}", testutil.ToFloat64(m.replicaLSN.WithLabelValues("2", "5")), 30)
	obs(2, model.FactProxyApplied{Territory: 2, Subgraph: 5, LSN: 42, Tail: 42})
	eq(t, "replica lag{2,5} caught up", testutil.ToFloat64(m.replicaLag.WithLabelValues("2", "5")), 0)
	// Per proxy and supernode: each supernode of the replica has its lag; one
	// no longer a supernode loses its series, and so does a dropped replica.
	snLag := func(sn string) float64 { return testutil.ToFloat64(m.sn.lag.WithLabelValues("2", "5", sn)) }
	obs(2, model.FactProxyApplied{Territory: 2, Subgraph: 5, LSN: 44, Tail: 50, LagEvents: 6, LagMs: 120, Supernodes: []model.NeuronID{21, 37}})
	eq(t, "supernode lag{2,5,21}", snLag("21"), 6)
	eq(t, "supernode lag{2,5,37}", snLag("37"), 6)
	eq(t, "supernode lag ms{2,5,37}", testutil.ToFloat64(m.sn.lagMs.WithLabelValues("2", "5", "37")), 120)
	obs(2, model.FactProxyApplied{Territory: 2, Subgraph: 5, LSN: 50, Tail: 50, Supernodes: []model.NeuronID{37}})
	if n := testutil.CollectAndCount(m.sn.lag); n != 1 {
		t.Errorf("supernode lag: %d series after neuron 21 stopped being a supernode, want 1", n)
	}
	eq(t, "supernode lag{2,5,37} caught up", snLag("37"), 0)
	obs(2, model.FactProxyDropped{Territory: 2, Subgraph: 5, LSN: 50})
	if n, m2 := testutil.CollectAndCount(m.sn.lag), testutil.CollectAndCount(m.replicaLag); n != 0 || m2 != 0 {
		t.Errorf("after the drop: %d supernode series, %d replica series", n, m2)
	}
	obs(9, model.FactEgressCursor{Egress: 9, Subgraph: 5, LSN: 40, Tail: 47})
	eq(t, "egress lag{5}", testutil.ToFloat64(m.egressLag.WithLabelValues("5")), 7)
	eq(t, "egress cursor{5}", testutil.ToFloat64(m.egressCursor.WithLabelValues("5")), 40)
}

// TestReasonClassCoversEveryReason: every step-down reason the core names
// has a class of its own, so a new reason cannot fall silently into "other".
func TestReasonClassCoversEveryReason(t *testing.T) {
	n := 0
	for r := model.StepDownReason(1); r.String() != model.StepDownReason(0).String(); r++ {
		n++
		if c := ReasonClass(r); c == ReasonOther {
			t.Errorf("step-down reason %s has no class", r)
		}
	}
	if n < 3 {
		t.Errorf("found %d step-down reasons, expected at least 3", n)
	}
	if c := ReasonClass(0); c != ReasonOther {
		t.Errorf("the zero reason: class %s, want %s", c, ReasonOther)
	}
}

func TestObserversChain(t *testing.T) {
	var got []string
	o := Observers(nil, func(model.HostID, model.Fact) { got = append(got, "a") }, nil,
		func(model.HostID, model.Fact) { got = append(got, "b") })
	o(1, model.FactAdopted{})
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("got %v", got)
	}
}

// BenchmarkObserveCommitted: the per-write fact must stay cheap.
func BenchmarkObserveCommitted(b *testing.B) {
	m := NewFactMetrics(prometheus.NewRegistry(), nil)
	f := model.FactCommitted{Territory: 1, Subgraph: 2, LSN: 3}
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(1, f)
	}
}
