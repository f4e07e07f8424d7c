package chaos

import (
	"cmp"
	"slices"

	"territory/faults"
	"territory/model"
	"territory/sim"
	"territory/sim/invariants"
)

// The handshake sagas of a real run, judged by the simulator's saga checker
// (sim.SagaReplay: saga-atomic, saga-compensate, saga-no-leak, saga-timeout,
// saga-terminates). The checker reads the reference folds of every log as
// they advance together (a step at pre is judged against post's fold at that
// moment), and the simulator hands it one global commit order. A real run
// has none: each Pulsar topic orders its own subgraph only, and its entries
// carry no commit time. So the folds advance in a causal merge of the logs:
// a step waits until the step of the other side it answers has been folded
// (an Accept its Reserve, a Commit its Accept, a Settle pre's decision or
// unlink, an Unlinked post's release), which every real execution satisfies,
// since a side takes a step only after the other's step committed and its
// message arrived. When no log can advance, the head of the lowest
// blocked subgraph is folded anyway: a step whose cause is missing from the
// other log, or comes after it there, is exactly what the checker flags. The
// merge is the most favourable causal order the logs allow, so a check of
// the interleaving fails only where no causal order explains the logs: a
// bug whose real interleaving broke the protocol but whose logs admit a
// correct one is not seen (the logs cannot tell them apart).
//
// Instants: a merged entry is folded at a lower bound of its commit time
// (the latest call of a client write at or below it in its log: an entry
// commits after every entry below it was appended, and those after their
// calls), and every fault event up to an upper bound of it (the earliest
// return of an acknowledged client write at or above it in its log, or the
// time the logs were read) is fed before it. saga-timeout flags a timeout
// only if no fault was active from the liveness bound before the
// reservation's lower bound to the compensation's upper bound: the window
// is wider than the true one, so no false alarm comes from the bounds.
// saga-terminates counts a record open at the end from its step's lower
// bound; during the workload every log has client writes a few
// milliseconds apart, so the bound is tight there, and a record opened
// after the workload stopped is within the checker's bound of the read.

// sagaEntry is one decoded entry of a subgraph's log, with its instants.
type sagaEntry struct {
	e      model.LogEntry
	ev     model.Event
	ok     bool  // decoded
	lowUs  int64 // a lower bound of its commit
	highUs int64 // an upper bound of its commit
}

// stepKey names one step of one saga.
type stepKey struct {
	id   model.EventUUID
	step uint64 // model.SagaStep*
}

// stepOf is a saga event's step; 0 for other events.
func stepOf(ev *model.Event) uint64 {
	switch ev.Type {
	case model.EvSagaReserve:
		return model.SagaStepReserve
	case model.EvSagaAccept:
		return model.SagaStepAccept
	case model.EvSagaCommit:
		return model.SagaStepCommit
	case model.EvSagaCompensate:
		return model.SagaStepCompensate
	case model.EvSagaSettle:
		if ev.Saga.Release {
			return model.SagaStepSettleRelease
		}
		return model.SagaStepSettleCommit
	case model.EvSagaUnlinked:
		return model.SagaStepUnlinked
	}
	return 0
}

// merger folds the logs of every subgraph in a causal merge (see above).
type merger struct {
	n      uint32
	logs   [][]sagaEntry // by subgraph
	next   []int         // by subgraph: the index of its next entry
	exists map[stepKey]bool
	seen   map[stepKey]bool
	folds  *invariants.Folds
}

func newMerger(n uint32, logs [][]sagaEntry, folds *invariants.Folds) *merger {
	m := &merger{n: n, logs: logs, next: make([]int, len(logs)), exists: map[stepKey]bool{}, seen: map[stepKey]bool{}, folds: folds}
	for _, l := range logs {
		for i := range l {
			if s := stepOf(&l[i].ev); s != 0 && l[i].ok {
				m.exists[stepKey{l[i].ev.SagaID(), s}] = true
			}
		}
	}
	return m
}

// after: the step's cause is folded, or is in no log.
func (m *merger) after(id model.EventUUID, step uint64) bool {
	k := stepKey{id, step}
	return m.seen[k] || !m.exists[k]
}

// ready says whether an entry's cause in another log has been folded.
func (m *merger) ready(x *sagaEntry) bool {
	if !x.ok {
		return true
	}
	ev := &x.ev
	id := ev.SagaID()
	switch stepOf(ev) {
	case model.SagaStepAccept:
		return m.after(id, model.SagaStepReserve)
	case model.SagaStepCommit:
		return m.after(id, model.SagaStepAccept)
	case model.SagaStepCompensate:
		return ev.Saga.Reason == model.ReasonSagaTimeout || m.after(id, model.SagaStepAccept)
	case model.SagaStepSettleCommit:
		return m.after(id, model.SagaStepCommit)
	case model.SagaStepSettleRelease:
		// Post releases once pre's log shows the saga neither pending nor
		// holding the synapse: compensated, or unlinked by a prune.
		if !m.after(id, model.SagaStepReserve) {
			return false
		}
		pre := m.folds.State(model.SubgraphOf(ev.Pre, m.n))
		if _, pending := pre.OutSaga(id); pending {
			return false
		}
		c, held := pre.CrossSaga(model.SynapseKey{Pre: ev.Pre, Post: ev.Post})
		return !held || c != id
	case model.SagaStepUnlinked:
		return m.after(id, model.SagaStepSettleRelease)
	}
	return true
}

// run folds every entry in a causal merge, calling fold(sg, entry) after
// folding each.
func (m *merger) run(fold func(sg model.SubgraphID, x *sagaEntry, ev model.Event, res model.Result, applied bool)) {
	step := func(sg int) {
		x := &m.logs[sg][m.next[sg]]
		m.next[sg]++
		ev, res, applied := m.folds.Committed(x.lowUs, model.SubgraphID(sg), x.e)
		if s := stepOf(&ev); s != 0 && x.ok {
			m.seen[stepKey{ev.SagaID(), s}] = true
		}
		fold(model.SubgraphID(sg), x, ev, res, applied)
	}
	for {
		progressed, left := false, -1
		for sg := range m.logs {
			for m.next[sg] < len(m.logs[sg]) && m.ready(&m.logs[sg][m.next[sg]]) {
				step(sg)
				progressed = true
			}
			if left < 0 && m.next[sg] < len(m.logs[sg]) {
				left = sg
			}
		}
		if left < 0 {
			return
		}
		if !progressed {
			step(left) // no causal order explains the logs here: the checker judges it
		}
	}
}

// faultEvent is a fault's start or end on the run's clock.
type faultEvent struct {
	atUs    int64
	f       faults.Fault
	started bool
}

// span is when an executed fault really started and healed; a fault
// without a heal (a loss) ends when its schedule says.
func span(r FaultRecord) (startUs, endUs int64) {
	startUs, endUs = int64(r.AppliedMs*1000), int64(r.HealedMs*1000)
	if r.HealedMs == 0 {
		endUs = startUs + r.Fault.DurationMs*1000
	}
	return startUs, max(endUs, startUs)
}

// faultEvents lists the executed faults' starts and heals, in time order.
func faultEvents(recs []FaultRecord) []faultEvent {
	var out []faultEvent
	for _, r := range recs {
		start, end := span(r)
		out = append(out, faultEvent{start, r.Fault, true}, faultEvent{end, r.Fault, false})
	}
	slices.SortStableFunc(out, func(a, b faultEvent) int { return cmp.Compare(a.atUs, b.atUs) })
	return out
}

// healedSchedule is a schedule of the executed faults at the instants they
// really started and healed (saga-terminates counts from the last heal).
func healedSchedule(recs []FaultRecord) faults.Schedule {
	var s faults.Schedule
	for _, r := range recs {
		start, end := span(r)
		f := r.Fault
		f.AtMs = start / 1000
		f.DurationMs = (end+999)/1000 - f.AtMs
		s.Faults = append(s.Faults, f)
	}
	s.Sort()
	return s
}

// sagaConfig is the saga checker's configuration for a real run.
func sagaConfig(subgraphs uint32, livenessMs int64, recs []FaultRecord) sim.Config {
	return sim.Config{Subgraphs: subgraphs, LivenessMs: livenessMs, Schedule: healedSchedule(recs)}
}
