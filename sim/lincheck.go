package sim

import (
	"fmt"

	"territory/linearizability"
	"territory/model"
)

// linChecks is the recording glue of the two linearizability checkers: it
// records each recovery's decay as one operation over its subgraph, from its
// first append to the moment a primary's state holds it, and the commit time
// of every log entry, and converts the committed log into the log checker's
// neutral form.
type linChecks struct {
	w        *World
	rec      *linearizability.Recorder
	commitUs map[uint32][]int64 // by stream, LSN-1
	decays   map[model.SubgraphID][]openDecay
	sagas    map[uint32]map[uint64]linearizability.Input // by stream and LSN: the saga steps that changed something
}

// openDecay is a recorded decay not yet visible at any primary.
type openDecay struct {
	id   linearizability.OpID
	lsn  uint64
	uuid model.EventUUID
}

func newLinChecks(w *World, rec *linearizability.Recorder) *linChecks {
	return &linChecks{w: w, rec: rec, commitUs: map[uint32][]int64{}, decays: map[model.SubgraphID][]openDecay{}, sagas: map[uint32]map[uint64]linearizability.Input{}}
}

// LinConfig is the porcupine model's configuration: the scenario's policy
// (every stream adopts it first), the domain's clamp bounds.
func LinConfig(cfg Config) linearizability.Config {
	return linearizability.Config{Bounds: LinBounds(), Policy: linPolicy(cfg.Policy)}
}

// LinBounds are the domain's clamp bounds in the checkers' form.
func LinBounds() linearizability.Bounds {
	return linearizability.Bounds{PotentialMin: model.PotentialMin, PotentialMax: model.PotentialMax, WeightMin: model.WeightMin, WeightMax: model.WeightMax}
}

func linPolicy(p model.Policy) linearizability.Policy {
	return linearizability.Policy{Epoch: p.Epoch, MaxOutDegree: p.MaxOutDegree, MaxInDegree: p.MaxInDegree, DecayPerSecondPM: p.DecayPerSecondPM}
}

// committed is the log's commit hook: entries commit in LSN order per stream.
func (l *linChecks) committed(stream uint32, lsn uint64, nowUs int64) {
	ts := l.commitUs[stream]
	if uint64(len(ts))+1 != lsn {
		panic(fmt.Sprintf("sim: stream %d commits LSN %d after %d entries", stream, lsn, len(ts)))
	}
	l.commitUs[stream] = append(ts, nowUs)
}

// recordDecay records a committed TerritoryRecovered event as one Decay
// operation of its subgraph. Its input is the logged timestamps; the checkers
// recompute the factor. It was called when first appended (the commit time
// if unknown) and returns when a primary holds it.
func (l *linChecks) recordDecay(sg model.SubgraphID, ev *model.Event, firstAppendUs, nowUs int64) {
	call := nowUs
	if firstAppendUs > 0 {
		call = firstAppendUs
	}
	in := linearizability.Input{Kind: linearizability.Decay, ID: linUUID(ev.UUID), Subgraph: uint32(sg), RecoveryMs: ev.TimestampMs, HeartbeatMs: ev.Recovery.LastHeartbeatMs}
	id := l.rec.Call(recorderManagerClient, in, call)
	l.decays[sg] = append(l.decays[sg], openDecay{id: id, lsn: ev.LSN, uuid: ev.UUID})
}

// recordSaga records a saga step that changed its subgraph as one closed
// SagaEffect operation, from its first append to its commit: its only
// observers are later entries of the same log (connects, through degrees;
// synapse reads, through the commit), so the commit is a sound return.
func (l *linChecks) recordSaga(e EntryFolded, nowUs int64) {
	in, ok := SagaEffectInput(&e.Event, e.Result, e.Subgraph, l.w.cfg.Subgraphs)
	if !ok {
		return // changed nothing a client can see
	}
	call := nowUs
	if e.Entry.FirstSentUs > 0 {
		call = e.Entry.FirstSentUs
	}
	id := l.rec.Call(recorderManagerClient, in, call)
	l.rec.Return(id, linearizability.Output{Status: linearizability.StatusOK}, nowUs)
	if l.sagas[e.Entry.Stream] == nil {
		l.sagas[e.Entry.Stream] = map[uint64]linearizability.Input{}
	}
	l.sagas[e.Entry.Stream][e.Entry.LSN] = in
}

// visible closes the decays of sg that a primary's state holds: its state is
// at appliedLSN, or it applied the decay itself.
func (l *linChecks) visible(sg model.SubgraphID, appliedLSN uint64, uuid model.EventUUID) {
	open := l.decays[sg]
	kept := open[:0]
	for _, d := range open {
		if d.lsn <= appliedLSN || d.uuid == uuid {
			l.rec.Return(d.id, linearizability.Output{Status: linearizability.StatusOK}, l.w.k.NowUs())
			continue
		}
		kept = append(kept, d)
	}
	l.decays[sg] = kept
}

func (l *linChecks) observe(f model.Fact) {
	switch f := f.(type) {
	case model.FactCommitted:
		if f.Type == model.EvTerritoryRecovered {
			l.visible(f.Subgraph, 0, f.UUID)
		}
	case model.FactOperational:
		l.visible(f.Subgraph, f.AppliedLSN, model.EventUUID{})
	}
}

// finish closes the decays no primary ever held at the end of the run.
func (l *linChecks) finish() {
	for sg := model.SubgraphID(0); uint32(sg) < l.w.cfg.Subgraphs; sg++ {
		l.visible(sg, ^uint64(0), model.EventUUID{})
	}
}

// logs converts every committed stream into the log checker's form.
func (l *linChecks) logs() ([]linearizability.SubgraphLog, error) {
	var out []linearizability.SubgraphLog
	for _, s := range l.w.log.Streams() {
		committed := l.w.log.Committed(s)
		sl := linearizability.SubgraphLog{Subgraph: s, Entries: make([]linearizability.Entry, 0, len(committed))}
		for i, e := range committed {
			le, err := LinEntry(e, l.w.cfg.Subgraphs, l.sagas[s])
			if err != nil {
				return nil, fmt.Errorf("stream %d: %w", s, err)
			}
			if i < len(l.commitUs[s]) {
				le.CommitUs = l.commitUs[s][i]
			}
			sl.Entries = append(sl.Entries, le)
		}
		out = append(out, sl)
	}
	return out, nil
}

// SagaEffectInput is the SagaEffect operation of a saga step of subgraph sg
// that the reference fold applied with result res (of a cluster of n
// subgraphs), or false if the step changed nothing a client can see. Both
// drivers record one per such step (the chaos driver from the real logs).
func SagaEffectInput(ev *model.Event, res model.Result, sg model.SubgraphID, n uint32) (linearizability.Input, bool) {
	in := linearizability.Input{Kind: linearizability.SagaEffect, ID: linUUID(sagaEntryUUID(ev)), Subgraph: uint32(sg)}
	switch {
	case ev.Type == model.EvSagaReserve && res.Status == model.StatusOK:
		in.Neuron, in.DOut = uint64(ev.Pre), 1
	case ev.Type == model.EvSagaCompensate && res.Status == model.StatusRejected:
		in.Neuron, in.DOut = uint64(ev.Pre), -1
	case ev.Type == model.EvSagaAccept && res.Status == model.StatusOK:
		in.Neuron, in.DIn = uint64(ev.Post), 1
	case ev.Type == model.EvSagaSettle && ev.Saga.Release && res.Exists:
		in.Neuron, in.DIn = uint64(ev.Post), -1
	case ev.Type == model.EvSagaCommit && res.Exists:
		in.Pre, in.Post, in.Weight = uint64(ev.Pre), uint64(ev.Post), res.Value
		in.PostSubgraph = uint32(model.SubgraphOf(ev.Post, n))
	default:
		return in, false
	}
	return in, true
}

// sagaEntryUUID is a saga step's id for the log checker: its event_uuid,
// except a Reserve's, which is the same for every saga a client's connect
// opens (a connect sent again after the dedup window opens a second one:
// Workload.ResendPM); it is named by the saga it opens, so that log-once
// still flags a step applied twice but not a saga opened again.
func sagaEntryUUID(ev *model.Event) model.EventUUID {
	if ev.Type == model.EvSagaReserve && ev.Saga.Instance {
		return model.SagaStepUUID(ev.SagaID(), model.SagaStepReserve)
	}
	return ev.UUID
}

// LinEntry converts one committed log entry of a cluster of n subgraphs into
// the log checker's form, CommitUs left zero. sagas holds the SagaEffect
// inputs of the stream's saga steps that changed its subgraph, by LSN; a saga
// step without one changed nothing a client can see.
func LinEntry(e model.LogEntry, n uint32, sagas map[uint64]linearizability.Input) (linearizability.Entry, error) {
	ev, err := model.DecodeEvent(e.Data)
	if err != nil {
		return linearizability.Entry{}, fmt.Errorf("LSN %d: %w", e.LSN, err)
	}
	le := linearizability.Entry{LSN: e.LSN, ID: linUUID(ev.UUID)}
	switch ev.Type {
	case model.EvHeartbeat:
		le.Kind = linearizability.EntryHeartbeat
	case model.EvSagaReserve, model.EvSagaAccept, model.EvSagaCommit, model.EvSagaCompensate, model.EvSagaUnlinked, model.EvSagaSettle:
		le.Kind = linearizability.EntryHeartbeat // a step that changed nothing a client sees
		if in, ok := sagas[e.LSN]; ok {
			le.Kind, le.Op, le.ID = linearizability.EntrySaga, in, linUUID(sagaEntryUUID(&ev))
		} else {
			le.ID = linearizability.UUID{}
		}
	case model.EvAdoptPolicy:
		le.Kind, le.Policy = linearizability.EntryAdoptPolicy, linPolicy(ev.Policy)
	case model.EvTerritoryRecovered:
		le.Kind = linearizability.EntryDecay
		le.Op = linearizability.Input{Kind: linearizability.Decay, ID: le.ID, Subgraph: uint32(ev.Subgraph), RecoveryMs: ev.TimestampMs, HeartbeatMs: ev.Recovery.LastHeartbeatMs}
	default:
		op, ok := writeOps[ev.Type]
		if !ok {
			return le, fmt.Errorf("LSN %d: event type %s", e.LSN, ev.Type)
		}
		req := model.Request{ID: ev.UUID, Op: op, Neuron: ev.Neuron, Pre: ev.Pre, Post: ev.Post, Value: ev.Value}
		le.Kind, le.Op = linearizability.EntryWrite, LinInput(&req, n)
	}
	return le, nil
}

var writeOps = map[model.EventType]model.OpKind{
	model.EvCreateNeuron: model.OpCreateNeuron,
	model.EvStimulate:    model.OpStimulate,
	model.EvConnect:      model.OpConnect,
	model.EvAdjustWeight: model.OpAdjustWeight,
	model.EvPrune:        model.OpPrune,
}

func linUUID(u model.EventUUID) linearizability.UUID { return linearizability.UUID{Hi: u.Hi, Lo: u.Lo} }

// LinPolicy is a policy in the checkers' form.
func LinPolicy(p model.Policy) linearizability.Policy { return linPolicy(p) }
