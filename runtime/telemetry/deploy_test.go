package telemetry

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"territory/model"
	"territory/runtime/driver"
)

// exportedMetrics is every metric name a territoryd exports: FactMetrics'
// and the driver's, each series made to exist once.
func exportedMetrics(t *testing.T) map[string]bool {
	reg := prometheus.NewRegistry()
	m := NewFactMetrics(reg, time.Now)
	driver.NewMetrics(reg)
	for _, f := range []model.Fact{
		model.FactProxyApplied{Territory: 1, Subgraph: 1, Supernodes: []model.NeuronID{1}},
		model.FactEgressCursor{Subgraph: 1},
		model.FactOperational{Territory: 1, Subgraph: 1},
	} {
		m.Observe(1, f)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	return names
}

var metricName = regexp.MustCompile(`\bterritory_[a-z_]+`)

// checkNames fails for every territory_* name in expr the daemon does not
// export (a histogram's _bucket, _sum and _count series belong to it).
func checkNames(t *testing.T, where, expr string, names map[string]bool) {
	t.Helper()
	for _, n := range metricName.FindAllString(expr, -1) {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if !names[n] && !names[base] {
			t.Errorf("%s: %s is not a metric territoryd exports", where, n)
		}
	}
}

// TestDeployFilesNameRealMetrics: the alert rules parse as a Prometheus rule
// file (groups of rules, each with an alert name, an expression, a duration,
// a severity and a summary), and they and the Grafana dashboard name only
// metrics territoryd exports (promtool does not install with go install:
// prometheus' go.mod has exclude directives).
func TestDeployFilesNameRealMetrics(t *testing.T) {
	names := exportedMetrics(t)
	for _, want := range []string{"territory_replica_lag_events", "territory_replica_lag_ms", "territory_egress_lag_events"} {
		if !names[want] {
			t.Fatalf("%s is not exported", want)
		}
	}
	raw, err := os.ReadFile("../../deploy/prometheus/supernodes-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("alert rules: %v", err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if _, err := time.ParseDuration(r.For); err != nil || r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: alert, expr, for (%q: %v) and a summary are required", r.Alert, r.For, err)
			}
			switch r.Labels["severity"] {
			case "info", "warning", "critical":
			default:
				t.Errorf("rule %q: severity %q", r.Alert, r.Labels["severity"])
			}
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") {
				t.Errorf("rule %q: unbalanced parentheses in %q", r.Alert, r.Expr)
			}
			checkNames(t, "rule "+r.Alert, r.Expr, names)
		}
	}
	if n < 3 {
		t.Fatalf("%d alert rules", n)
	}

	raw, err = os.ReadFile("../../deploy/grafana/supernodes-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if dash.UID == "" || len(dash.Panels) < 3 {
		t.Fatalf("dashboard: uid %q, %d panels", dash.UID, len(dash.Panels))
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			checkNames(t, "panel "+p.Title, q.Expr, names)
		}
	}
}
