package driver

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"territory/model"
)

// Metrics are the driver's Prometheus series. A nil *Metrics records nothing.
type Metrics struct {
	calls  *prometheus.HistogramVec
	commit prometheus.Histogram
	drops  *prometheus.CounterVec
	ops    *prometheus.HistogramVec
}

// NewMetrics registers the series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := prometheus.ExponentialBuckets(0.0005, 2, 16) // 0.5 ms .. 16 s
	m := &Metrics{
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "territory_service_call_seconds", Help: "Latency of service calls by service, operation and outcome.", Buckets: buckets,
		}, []string{"service", "op", "outcome"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "territory_commit_latency_seconds", Help: "Latency of log appends that committed (the write path's commit).", Buckets: buckets,
		}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "territory_mailbox_dropped_total", Help: "Inputs dropped because a node's mailbox was full.",
		}, []string{"host"}),
		ops: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "territory_client_op_seconds", Help: "Client operations from submit to answer, by operation and status.", Buckets: buckets,
		}, []string{"op", "status"}),
	}
	reg.MustRegister(m.calls, m.commit, m.drops, m.ops)
	return m
}

func (m *Metrics) dropped(host string) {
	if m != nil {
		m.drops.WithLabelValues(host).Inc()
	}
}

func (m *Metrics) observe(service, op string, in model.Input, d time.Duration) {
	if m == nil {
		return
	}
	var o model.Outcome
	switch r := in.(type) {
	case model.CoordResult:
		o = r.Outcome
	case model.LogResult:
		o = r.Outcome
	case model.BlobResult:
		o = r.Outcome
	case model.DiskResult:
		o = r.Outcome
	}
	m.calls.WithLabelValues(service, op, o.String()).Observe(d.Seconds())
	if service == "log" && op == "append" && o == model.OutcomeOK {
		m.commit.Observe(d.Seconds())
	}
}

func (m *Metrics) op(op, status string, d time.Duration) {
	if m != nil {
		m.ops.WithLabelValues(op, status).Observe(d.Seconds())
	}
}

func coordOp(k model.CoordOpKind) string {
	switch k {
	case model.CoordGet:
		return "get"
	case model.CoordRange:
		return "range"
	case model.CoordTxn:
		return "txn"
	case model.CoordLeaseGrant:
		return "lease_grant"
	case model.CoordLeaseKeepAlive:
		return "lease_keepalive"
	case model.CoordLeaseRevoke:
		return "lease_revoke"
	case model.CoordWatch:
		return "watch"
	}
	return "unknown"
}

func logOp(k model.LogOpKind) string {
	switch k {
	case model.LogOpen:
		return "open"
	case model.LogAppend:
		return "append"
	case model.LogRead:
		return "read"
	}
	return "unknown"
}

func blobOp(k model.BlobOpKind) string {
	switch k {
	case model.BlobPut:
		return "put"
	case model.BlobGet:
		return "get"
	case model.BlobExists:
		return "exists"
	case model.BlobDelete:
		return "delete"
	case model.BlobList:
		return "list"
	}
	return "unknown"
}

func diskOp(k model.DiskOpKind) string {
	switch k {
	case model.DiskWrite:
		return "write"
	case model.DiskSync:
		return "sync"
	case model.DiskRead:
		return "read"
	case model.DiskDelete:
		return "delete"
	}
	return "unknown"
}
