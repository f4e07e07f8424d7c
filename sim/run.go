package sim

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"territory/linearizability"
	"territory/sim/invariants"
)

// Result is one run, checked.
type Result struct {
	Scenario     string                  `json:"scenario"`
	Seed         uint64                  `json:"seed"`
	Pass         bool                    `json:"pass"`
	Trace        string                  `json:"trace"`
	Linearizable linearizability.Verdict `json:"linearizable"`
	Invariants   string                  `json:"invariants"`
	// LogCheck is the log checker's verdict: "ok", or the failed checks
	// (e.g. "log-answer,log-read"); LogViolations are its first findings.
	LogCheck      string                 `json:"logcheck"`
	LogViolations []string               `json:"log_violations,omitempty"`
	LogResolved   int                    `json:"log_resolved_unknown"`
	LogVanished   int                    `json:"log_vanished_unknown"`
	Ops           int                    `json:"ops"`
	UnknownOps    int                    `json:"unknown_ops"`
	AckedWrites   int                    `json:"acked_writes"`
	Sagas         SagaStats              `json:"sagas"`
	Workload      WorkloadStats          `json:"workload"`
	Events        uint64                 `json:"events"`
	LogEntries    int                    `json:"log_entries"`
	SimMs         int64                  `json:"sim_ms"`
	WallMs        float64                `json:"wall_ms"`
	CheckMs       float64                `json:"check_ms"`
	MaxOpsPerKey  int                    `json:"max_ops_per_key"`
	ViolatingKeys []string               `json:"violating_keys,omitempty"`
	Violations    []invariants.Violation `json:"violations"`
	RTOMs         []float64              `json:"rto_ms,omitempty"`
	RTOP50Ms      float64                `json:"rto_p50_ms"`
	RTOMaxMs      float64                `json:"rto_max_ms"`
	OutageP50Ms   float64                `json:"outage_p50_ms"`
	OutageMaxMs   float64                `json:"outage_max_ms"`
	Durability    DurabilityStats        `json:"durability"`
	Deposed       DeposedStats           `json:"deposed"` // what deposed primaries were asked and answered
	Progress      ProgressStats          `json:"progress"`
	Migration     MigrationStats         `json:"migration"`
	Egress        EgressStats            `json:"egress"` // the supernode path: stream, lags, the replicas held at the end
	Stale         StaleStats             `json:"stale"`
	Config        Config                 `json:"config"`

	lin linearizability.Result
}

// Run simulates one seed of a configuration and checks it. linTimeout bounds
// the linearizability check (porcupine); past it the verdict is "unknown".
func Run(cfg Config, seed uint64, linTimeout time.Duration) (*Result, error) {
	start := time.Now()
	w, err := NewWorld(cfg, seed)
	if err != nil {
		return nil, err
	}
	out, err := w.Run()
	if err != nil {
		return nil, fmt.Errorf("run %s seed %d: %w", cfg.Scenario, seed, err)
	}
	simWall := time.Since(start)
	checkStart := time.Now()
	ops := out.History.Operations()
	lin := linearizability.Check(LinConfig(cfg), linearizability.PruneUnknown(ops, out.Logs), linTimeout)
	logRes := linearizability.LogCheck(LinBounds(), ops, out.Logs)
	r := &Result{
		Scenario: cfg.Scenario, Seed: seed, Trace: fmt.Sprintf("%016x", out.TraceHash),
		Linearizable: lin.Verdict, Ops: out.Ops, UnknownOps: out.UnknownOps, AckedWrites: out.AckedWrites, Sagas: out.Sagas, Workload: out.Workload,
		Events: out.Events, LogEntries: out.LogEntries, SimMs: out.SimMs,
		WallMs: float64(simWall.Microseconds()) / 1000, CheckMs: float64(time.Since(checkStart).Microseconds()) / 1000,
		MaxOpsPerKey: out.MaxOpsPerKey, ViolatingKeys: lin.ViolatingKeys, Violations: out.Violations,
		Config: cfg, lin: lin,
		LogCheck: logRes.LogSummary(), LogResolved: logRes.Resolved, LogVanished: logRes.Vanished,
	}
	for i, v := range logRes.Violations {
		if i == maxLogViolations {
			r.LogViolations = append(r.LogViolations, fmt.Sprintf("... and %d more", len(logRes.Violations)-i))
			break
		}
		r.LogViolations = append(r.LogViolations, v.String())
	}
	if r.Violations == nil {
		r.Violations = []invariants.Violation{}
	}
	for _, us := range out.RTOUs {
		r.RTOMs = append(r.RTOMs, float64(us)/1000)
	}
	if len(r.RTOMs) > 0 {
		sorted := slices.Clone(r.RTOMs)
		slices.Sort(sorted)
		r.RTOP50Ms, r.RTOMaxMs = sorted[len(sorted)/2], sorted[len(sorted)-1]
	}
	if len(out.OutageUs) > 0 {
		sorted := slices.Clone(out.OutageUs)
		slices.Sort(sorted)
		r.OutageP50Ms, r.OutageMaxMs = float64(sorted[len(sorted)/2])/1000, float64(sorted[len(sorted)-1])/1000
	}
	r.Durability, r.Progress = out.Durability, out.Progress
	r.Deposed = out.Deposed
	r.Migration = out.Migration
	r.Egress, r.Stale = out.Egress, out.Stale
	r.Invariants = "ok"
	if len(r.Violations) > 0 {
		names := map[string]bool{}
		for _, v := range r.Violations {
			names[v.Invariant] = true
		}
		var list []string
		for n := range names {
			list = append(list, n)
		}
		sort.Strings(list)
		r.Invariants = strings.Join(list, ",")
	}
	r.Pass = r.Linearizable == linearizability.VerdictOK && logRes.Verdict == linearizability.VerdictOK && len(r.Violations) == 0
	return r, nil
}

// maxLogViolations bounds the log checker's findings kept in a Result.
const maxLogViolations = 20

// Line is the machine-readable summary line that ends run and replay.
func (r *Result) Line() string {
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	return fmt.Sprintf("%s scenario=%s seed=%d trace=%s linearizable=%s invariants=%s logcheck=%s ops=%d events=%d sim=%gs wall=%.2fs",
		verdict, r.Scenario, r.Seed, r.Trace, r.Linearizable, r.Invariants, r.LogCheck, r.Ops, r.Events,
		float64(r.SimMs)/1000, (r.WallMs+r.CheckMs)/1000)
}

// Linearizability is the linearizability checker's full result, for
// porcupine's picture of the history (reports write it; sim does no file I/O).
func (r *Result) Linearizability() linearizability.Result { return r.lin }
