package sim

import (
	"territory/linearizability"
	"territory/model"
	"territory/sim/invariants"
	"territory/sim/netsim"
)

// Outcome is what one run found.
type Outcome struct {
	TraceHash     uint64
	Ops           int
	UnknownOps    int
	AckedWrites   int
	Sagas         SagaStats
	Workload      WorkloadStats
	Events        uint64
	SimMs         int64
	Violations    []invariants.Violation
	History       *linearizability.Recorder
	RTOUs         []int64
	OutageUs      []int64
	Durability    DurabilityStats
	LogEntries    int
	NetStats      netsim.Stats
	MaxOpsPerKey  int
	MaxOpsKeyName string
	Logs          []linearizability.SubgraphLog // the committed logs, for the log checker
	Progress      ProgressStats
	Deposed       DeposedStats
	Egress        EgressStats
	Stale         StaleStats
	Migration     MigrationStats
	// BadCoordValues are the coordination values the core reported unusable.
	BadCoordValues []model.FactBadCoordValue
}

// finish asks every checker for its final verdict and figures.
func (w *World) finish() *Outcome {
	now := w.k.NowUs()
	for _, c := range w.checkers {
		w.violations = append(w.violations, c.Final(w.view)...)
	}
	invariants.Sort(w.violations)
	entries := 0
	for _, s := range w.log.Streams() {
		entries += len(w.log.Committed(s))
	}
	w.mix(uint64(len(w.violations)))
	o := &Outcome{TraceHash: w.trace, Ops: w.ops, Events: w.k.Steps(), SimMs: now / 1000,
		LogEntries: entries, NetStats: w.net.Stats()}
	for _, c := range w.checkers {
		if r, ok := c.(Reporter); ok {
			r.Report(o)
		}
	}
	o.Violations = w.violations
	o.Durability.DiskFaults = w.diskFaults
	o.Deposed = w.deposed
	return o
}
