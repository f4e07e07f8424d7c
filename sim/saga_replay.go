package sim

import (
	"fmt"

	"territory/faults"
	"territory/model"
	"territory/sim/invariants"
)

// SagaReplay runs the simulator's saga checker (saga_checker.go: saga-atomic,
// saga-compensate, saga-no-leak, saga-timeout, saga-terminates) on a history
// that did not come from a World: the chaos driver's real logs and clients.
// The driver feeds it, in an order of its choosing, the events the checker
// reads on the bus (an entry the reference fold applied, a connect called or
// returned, a fault started or ended), each at the instant it names; the
// checker is the same code, not a copy. Which order and which instants are
// honest for a real run is the driver's to argue (chaos/sagas.go).
type SagaReplay struct {
	c          *sagaChecker
	cfg        Config
	nowUs      int64
	violations []invariants.Violation
}

// NewSagaReplay is a replay for a cluster of cfg.Subgraphs subgraphs whose
// faults are cfg.Schedule (its last end is the heal saga-terminates counts
// from), with cfg.LivenessMs and the territories' saga timeout
// (cfg.SagaTimeoutMs()) as the checker's bounds.
func NewSagaReplay(cfg Config) *SagaReplay { return &SagaReplay{c: newSagaState(), cfg: cfg} }

// NowUs, Config and Violate are the checker's view of the replay.
func (r *SagaReplay) NowUs() int64    { return r.nowUs }
func (r *SagaReplay) Config() *Config { return &r.cfg }
func (r *SagaReplay) Violate(name, format string, args ...any) {
	r.violations = append(r.violations, invariants.Violation{Invariant: name, AtUs: r.nowUs, Detail: fmt.Sprintf(format, args...)})
}

// Fault: a fault started or ended at atUs.
func (r *SagaReplay) Fault(atUs int64, f faults.Fault, started bool) {
	r.nowUs = atUs
	r.c.observe(r, FaultChanged{Fault: f, Started: started})
}

// Folded: the reference fold applied entry lsn of subgraph sg (ev decoded,
// res its result, applied false for a duplicate), fold its state after it
// (read during the call only) at atUs.
func (r *SagaReplay) Folded(atUs int64, sg model.SubgraphID, lsn uint64, ev model.Event, res model.Result, applied bool, fold *model.SubgraphState) {
	r.nowUs = atUs
	r.c.observe(r, EntryFolded{Entry: EntryCommitted{Stream: uint32(sg), LSN: lsn}, Subgraph: sg, Event: ev, Result: res, Applied: applied, Fold: fold})
}

// Called: a client called req at atUs.
func (r *SagaReplay) Called(atUs int64, req model.Request) {
	r.nowUs = atUs
	r.c.observe(r, OpCalled{Req: req})
}

// Returned: a client's operation ended at atUs (done.Unknown: without a
// final answer).
func (r *SagaReplay) Returned(atUs int64, done model.FactOpDone) {
	r.nowUs = atUs
	r.c.observe(r, OpReturned{Done: done})
}

// Final runs the checker's end-of-run judgement at atUs and returns every
// violation found, sorted.
func (r *SagaReplay) Final(atUs int64) []invariants.Violation {
	r.nowUs = atUs
	out := append(r.violations, r.c.final(r)...)
	invariants.Sort(out)
	return out
}

// Stats is what the sagas did, from the folds.
func (r *SagaReplay) Stats() SagaStats {
	var o Outcome
	r.c.Report(&o)
	return o.Sagas
}
