package chaos

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"territory/linearizability"
	"territory/model"
	"territory/sim"
	"territory/sim/invariants"
)

// finalRead is one read of the end-of-run sweep and its answer.
type finalRead struct {
	req model.Request
	res model.Result
	ok  bool // answered finally
}

// verdicts are the simulator's checks run on a real history and the real logs.
type verdicts struct {
	lin        linearizability.Result
	log        linearizability.LogResult
	violations []invariants.Violation
	progress   sim.ProgressStats
	entries    int
	decays     int
	sagas      sim.SagaStats
	// The clients' cross-subgraph connects, and how many ended unknown.
	crossConnects, crossUnknown int
}

// check runs, on the history and the logs read back from Pulsar:
//   - both linearizability checkers: porcupine (on the history pruned of
//     the unknown outcomes the logs rule out, as sim.Run does) and the log
//     checker (the Pulsar topics are the truth);
//   - no-acked-write-lost (invariants.AckedWrites over the real logs);
//   - state-is-fold-of-log and degree-policy: the logs folded by
//     invariants.Folds, and every key the final sweep read compared with the
//     fold of the whole log;
//   - progress (sim.CheckProgress);
//   - the saga checks (sim.SagaReplay over a causal merge of the logs:
//     sagas.go).
//
// Real topics carry no commit time: each entry's CommitUs is a lower bound,
// the call time of the client write at that LSN (an entry cannot commit
// before its write was called; the log checker takes the prefix maximum),
// 0 for entries no client wrote. A TerritoryRecovered decay becomes one
// operation over its subgraph from the latest call of a write below it in
// the log to the earliest return of an acknowledged write above it (open if
// none): its effect lies in between.
func check(h *History, logs map[model.SubgraphID][]model.LogEntry, finals []finalRead, pol model.Policy, subgraphs uint32,
	linTimeout time.Duration, prog sim.ProgressRecord, sagaCfg sim.Config, recs []FaultRecord) (verdicts, error) {
	var v verdicts
	nowUs := h.nowUs()
	folds := invariants.NewFolds(subgraphs, model.GenesisPolicy())
	h.mu.Lock()
	defer h.mu.Unlock()

	// Decode every log and bound each entry's commit (sagas.go).
	merged := make([][]sagaEntry, subgraphs)
	for sg := model.SubgraphID(0); uint32(sg) < subgraphs; sg++ {
		entries := logs[sg]
		xs := make([]sagaEntry, len(entries))
		var maxCall int64
		for i, e := range entries {
			ev, err := model.DecodeEvent(e.Data)
			xs[i] = sagaEntry{e: e, ev: ev, ok: err == nil}
			if err == nil {
				c, ok := h.callUs[ev.UUID]
				if ev.Type == model.EvSagaReserve {
					c, ok = h.callUs[ev.Saga.ID] // the client's connect
				}
				if ok {
					maxCall = max(maxCall, c)
				}
			}
			xs[i].lowUs = maxCall
		}
		minRet := nowUs
		for i := len(xs) - 1; i >= 0; i-- {
			if r, ok := h.returnUs[xs[i].ev.UUID]; ok && xs[i].ok {
				minRet = min(minRet, r)
			}
			xs[i].highUs = max(minRet, xs[i].lowUs)
		}
		merged[sg] = xs
	}

	// Fold the logs in a causal merge, the saga checker watching, and record
	// every saga step that changed its subgraph as a SagaEffect operation
	// from the lower to the upper bound of its commit (the simulator records
	// it from its first send to its commit).
	replay := sim.NewSagaReplay(sagaCfg)
	fevs := faultEvents(recs)
	nextFault := 0
	sagas := map[model.SubgraphID]map[uint64]linearizability.Input{}
	newMerger(subgraphs, merged, folds).run(func(sg model.SubgraphID, x *sagaEntry, ev model.Event, res model.Result, applied bool) {
		for ; nextFault < len(fevs) && fevs[nextFault].atUs <= x.highUs; nextFault++ {
			replay.Fault(fevs[nextFault].atUs, fevs[nextFault].f, fevs[nextFault].started)
		}
		replay.Folded(x.lowUs, sg, x.e.LSN, ev, res, applied, folds.State(sg))
		if !applied || !ev.Type.IsSaga() {
			return
		}
		if in, ok := sim.SagaEffectInput(&ev, res, sg, subgraphs); ok {
			id := h.rec.Call(recorderDecayClient, in, x.lowUs)
			h.rec.Return(id, linearizability.Output{Status: linearizability.StatusOK}, x.highUs)
			if sagas[sg] == nil {
				sagas[sg] = map[uint64]linearizability.Input{}
			}
			sagas[sg][x.e.LSN] = in
		}
	})
	for ; nextFault < len(fevs); nextFault++ {
		replay.Fault(fevs[nextFault].atUs, fevs[nextFault].f, fevs[nextFault].started)
	}
	// The clients' cross-subgraph connects, after every log is folded: an
	// answer is checked against every outcome pre's log recorded for the
	// connect (the logs carry no commit times to say which came before it).
	slices.SortStableFunc(h.cross, func(a, b crossConnect) int { return cmp.Compare(a.retUs, b.retUs) })
	for _, x := range h.cross {
		replay.Called(x.callUs, x.req)
	}
	for _, x := range h.cross {
		replay.Returned(x.retUs, model.FactOpDone{Request: x.req, Result: x.res, Unknown: x.unknown, Tries: 1})
	}
	v.violations = append(v.violations, replay.Final(nowUs)...)
	v.sagas = replay.Stats()
	v.crossConnects, v.crossUnknown = len(h.cross), h.crossUnknown

	var lins []linearizability.SubgraphLog
	for sg := model.SubgraphID(0); uint32(sg) < subgraphs; sg++ {
		entries := logs[sg]
		sl := linearizability.SubgraphLog{Subgraph: uint32(sg)}
		var maxCall int64
		for _, e := range entries {
			ev, err := model.DecodeEvent(e.Data)
			if err != nil {
				return v, fmt.Errorf("subgraph %d LSN %d: %w", sg, e.LSN, err)
			}
			le, err := sim.LinEntry(e, subgraphs, sagas[sg])
			if err != nil {
				return v, fmt.Errorf("subgraph %d: %w", sg, err)
			}
			if c, ok := h.callUs[ev.UUID]; ok && le.Kind == linearizability.EntryWrite {
				le.CommitUs = c
				maxCall = max(maxCall, c)
			}
			if le.Kind == linearizability.EntryDecay {
				v.decays++
				id := h.rec.Call(recorderDecayClient, le.Op, maxCall)
				ret := int64(-1)
				for _, later := range entries[e.LSN:] {
					lev, err := model.DecodeEvent(later.Data)
					if err != nil {
						continue
					}
					if r, ok := h.returnUs[lev.UUID]; ok && (ret < 0 || r < ret) {
						ret = r
					}
				}
				if ret >= maxCall {
					h.rec.Return(id, linearizability.Output{Status: linearizability.StatusOK}, ret)
				} // else open: no acknowledged write after it
			}
			sl.Entries = append(sl.Entries, le)
			v.entries++
		}
		lins = append(lins, sl)
	}
	ops := h.rec.Operations()
	cfg := linearizability.Config{Bounds: sim.LinBounds(), Policy: sim.LinPolicy(pol)}
	v.lin = linearizability.Check(cfg, linearizability.PruneUnknown(ops, lins), linTimeout)
	v.log = linearizability.LogCheck(sim.LinBounds(), ops, lins)

	v.violations = append(v.violations, h.acked.Check(nowUs,
		func(sg model.SubgraphID) []model.LogEntry { return logs[sg] },
		func(model.SubgraphID) (uint64, bool) { return 0, false })...)

	folds.CheckDigests(nowUs)
	v.violations = append(v.violations, folds.Violations()...)
	for _, f := range finals {
		if !f.ok {
			continue
		}
		sg := model.SubgraphOf(f.req.RoutingNeuron(), subgraphs)
		st := folds.State(sg)
		var exists bool
		var value int64
		what := ""
		switch f.req.Op {
		case model.OpReadNeuron:
			n, ok := st.Neuron(f.req.Neuron)
			exists, value, what = ok, n.Potential, fmt.Sprintf("neuron %d", f.req.Neuron)
		case model.OpReadSynapse:
			value, exists = st.Synapse(model.SynapseKey{Pre: f.req.Pre, Post: f.req.Post})
			what = fmt.Sprintf("synapse %d->%d", f.req.Pre, f.req.Post)
		}
		if f.res.Status != model.StatusOK || f.res.Exists != exists || (exists && f.res.Value != value) {
			v.violations = append(v.violations, invariants.Violation{Invariant: invariants.StateIsFoldOfLog, AtUs: nowUs,
				Detail: fmt.Sprintf("subgraph %d: the served %s is %s exists=%v value=%d, the fold of the log at LSN %d says exists=%v value=%d",
					sg, what, f.res.Status, f.res.Exists, f.res.Value, st.AppliedLSN, exists, value)})
		}
	}

	prog.Called, prog.Unknown, prog.Stats = h.progress.Called, h.progress.Unknown, h.progress.Stats
	prog.Answers = h.progress.Answers
	var pv []invariants.Violation
	v.progress, pv = sim.CheckProgress(prog)
	v.violations = append(v.violations, pv...)
	invariants.Sort(v.violations)
	return v, nil
}

// recorderDecayClient is the client id decay operations are recorded under.
const recorderDecayClient = 1 << 20

// invariantNames lists the distinct invariants violated, sorted; "ok" if none.
func invariantNames(vs []invariants.Violation) string {
	var names []string
	for _, v := range vs {
		names = append(names, v.Invariant)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		return "ok"
	}
	out := names[0]
	for _, n := range names[1:] {
		out += "," + n
	}
	return out
}

// topicFencing is single-writer-epoch over a stream's raw topic, message by
// message (what the e2e fencing test checks): once an open at epoch E is in
// the topic, no data message of an epoch below E follows it.
func topicFencing(atUs int64, sg model.SubgraphID, msgs []RawMsg) []invariants.Violation {
	var out []invariants.Violation
	var maxOpen uint64
	for i, m := range msgs {
		switch m.Kind {
		case "open":
			maxOpen = max(maxOpen, m.Epoch)
		case "data":
			if m.Epoch < maxOpen {
				out = append(out, invariants.Violation{Invariant: invariants.SingleWriterEpoch, AtUs: atUs,
					Detail: fmt.Sprintf("subgraph %d: topic message %d is data at epoch %d (lsn %d) after an open at epoch %d", sg, i, m.Epoch, m.LSN, maxOpen)})
			}
		}
	}
	return out
}
