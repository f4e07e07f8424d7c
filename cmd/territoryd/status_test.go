package main

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"territory/model"
	"territory/runtime/telemetry"
)

// TestStatusShowsReplicaLag: status scrapes a daemon's /metrics and prints
// each proxy replica's LSN and lag, and the egress lag; --max-lag-events
// fails when a replica is further behind.
func TestStatusShowsReplicaLag(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := telemetry.NewFactMetrics(reg, time.Now)
	m.Observe(2, model.FactProxyApplied{Territory: 2, Subgraph: 5, LSN: 30, Tail: 42, LagEvents: 12, LagMs: 250, Supernodes: []model.NeuronID{1061, 77}})
	m.Observe(3, model.FactProxyApplied{Territory: 3, Subgraph: 5, LSN: 42, Tail: 42})
	m.Observe(9, model.FactEgressCursor{Egress: 9, Subgraph: 5, LSN: 40, Tail: 47})
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	run := func(args ...string) (string, error) {
		cmd := statusCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(args)
		err := cmd.Execute()
		return out.String(), err
	}
	out, err := run("--metrics", addr)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"2                5         30           12          250", "3                5         42           0           0", "5                40          7"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	// Per proxy and supernode, sorted by territory, subgraph, supernode (as text).
	if i, j := strings.Index(out, "2                1061       5         12          250"), strings.Index(out, "2                77         5         12          250"); i < 0 || j < i {
		t.Errorf("status output lacks the supernode lines of territory 2 (1061 then 77):\n%s", out)
	}
	if _, err := run("--metrics", addr, "--max-lag-events", "20"); err != nil {
		t.Errorf("lag 12 under a bound of 20: %v", err)
	}
	if _, err := run("--metrics", addr, "--max-lag-events", "10"); err == nil {
		t.Error("lag 12 over a bound of 10 passed")
	}
}
