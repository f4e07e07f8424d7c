package telemetry

import (
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"territory/model"
)

// supernodeMetrics is the replica lag per proxy and supernode (issue 11),
// from FactProxyApplied: each supernode of a replica has the replica's lag.
// A neuron that is no longer a supernode of the replica, and every
// supernode of a replica the proxy dropped (FactProxyDropped), loses its
// series.
type supernodeMetrics struct {
	lag   *prometheus.GaugeVec
	lagMs *prometheus.GaugeVec
	last  map[subKey][]model.NeuronID // the supernodes of each replica last reported
}

func newSupernodeMetrics() *supernodeMetrics {
	labels := []string{"territory", "subgraph", "supernode"}
	return &supernodeMetrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "territory_supernode_replica_lag_events",
			Help: "Entries a territory's proxy replica of a supernode is behind its subgraph's committed tail, as the egress stream last told it (the replica of its subgraph's lag).",
		}, labels),
		lagMs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "territory_supernode_replica_lag_ms",
			Help: "Milliseconds, on the territory's clock, its proxy replica of a supernode has been behind that tail (0: caught up).",
		}, labels),
		last: map[subKey][]model.NeuronID{},
	}
}

func (s *supernodeMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.lag, s.lagMs}
}

func neuronLabel(n model.NeuronID) string { return strconv.FormatUint(uint64(n), 10) }

// applied sets the lag of each supernode of the replica and deletes the
// series of those no longer among them. Called under FactMetrics.mu.
func (s *supernodeMetrics) applied(f model.FactProxyApplied) {
	k := subKey{f.Territory, f.Subgraph}
	t, sg := territoryLabel(f.Territory), subgraphLabel(f.Subgraph)
	for _, n := range s.last[k] {
		if !slices.Contains(f.Supernodes, n) {
			s.lag.DeleteLabelValues(t, sg, neuronLabel(n))
			s.lagMs.DeleteLabelValues(t, sg, neuronLabel(n))
		}
	}
	for _, n := range f.Supernodes {
		s.lag.WithLabelValues(t, sg, neuronLabel(n)).Set(float64(f.LagEvents))
		s.lagMs.WithLabelValues(t, sg, neuronLabel(n)).Set(float64(f.LagMs))
	}
	if len(f.Supernodes) == 0 {
		delete(s.last, k)
	} else {
		s.last[k] = slices.Clone(f.Supernodes)
	}
}

// dropped deletes the series of a replica the proxy dropped.
func (s *supernodeMetrics) dropped(t model.HostID, sg model.SubgraphID) {
	s.applied(model.FactProxyApplied{Territory: t, Subgraph: sg})
}
