package model

import (
	"fmt"
	"maps"
	"slices"
)

// The synaptic handshake saga, as folded from the logs (the driver is
// saga_component.go). A synapse whose post neuron lives in another subgraph
// is made in four logged steps, each in the log of the side that takes it:
//
//	pre's log   EvSagaReserve     out-slot of pre reserved (or the connect refused there)
//	post's log  EvSagaAccept      in-slot of post taken (or refused: the reason is logged)
//	pre's log   EvSagaCommit      the synapse exists; the client's answer is ok
//	            EvSagaCompensate  the reservation is released; the client's answer is a refusal
//	post's log  EvSagaSettle      commit: the in-slot is final; release: it is given back
//
// Pre is the coordinator: its log decides (whichever of Commit and
// Compensate comes first there wins; the other folds to nothing). Post
// reconciles to pre's decision. A cross-subgraph prune removes the synapse
// in pre's log (EvPrune), asks post to release its in-slot (EvSagaSettle),
// and closes with EvSagaUnlinked in pre's log once post has.
//
// Reserved and prepared slots count against the degree limits, so the
// policy holds on both sides at every LSN, mid-saga included.

// SagaBody is the saga part of a saga event: the saga's id, the refusal or
// compensation reason, and for EvSagaSettle the decision.
//
// A saga's id is not the client's connect event_uuid: the client may send
// the same event_uuid again after the dedup window (territoryd import's
// re-run does), and that starts a new saga, whose steps must not be
// confused with the first one's late messages (a settle(release) of the
// first would give back the second's committed in-slot). So EvSagaReserve
// carries the client's event_uuid and the saga it opens is named
// SagaInstanceID(event_uuid, the Reserve's LSN): unique, since pre's log
// gives each LSN once, and known to every fold of that log. Every later
// step (Accept, Commit, Compensate, Settle, Unlinked) and every message
// carries that name.
type SagaBody struct {
	ID      EventUUID // EvSagaReserve: the client's event_uuid; every other step: the saga's id
	Reason  Reason
	Release bool // EvSagaSettle: give the in-slot back (false: keep it, committed)
	// Instance (EvSagaReserve) names the saga SagaInstanceID(ID, LSN).
	// Logs written before instances have it false: the saga is named ID.
	Instance bool
}

// SagaID is the id of the saga a saga event belongs to (see SagaBody).
func (ev *Event) SagaID() EventUUID {
	if ev.Type == EvSagaReserve && ev.Saga.Instance {
		return SagaInstanceID(ev.Saga.ID, ev.LSN)
	}
	return ev.Saga.ID
}

// uuidSagaInstance marks saga ids derived by SagaInstanceID.
const uuidSagaInstance = 1<<63 | 1<<58

// SagaInstanceID names the saga a client's connect (event_uuid client)
// opened at LSN lsn of pre's log: a 120-bit mix, so two sagas colliding is
// a 2^-120 event.
func SagaInstanceID(client EventUUID, lsn uint64) EventUUID {
	a := mix64(client.Hi ^ mix64(client.Lo+lsn*0xd1b54a32d192ed03))
	b := mix64(client.Lo ^ mix64(client.Hi^lsn))
	return EventUUID{Hi: uuidSagaInstance | a>>8, Lo: b}
}

// OutSaga is a reservation at pre: a saga that has not decided yet.
type OutSaga struct {
	Client       EventUUID // the connect's event_uuid: the client's answer is recorded under it
	Pre, Post    NeuronID
	Weight       int64
	ReservedAtMs int64 // the Reserve event's clock: the saga's timeout runs from it
}

// InSlot is post's side of a saga: an in-slot of Post, prepared until
// settled, and kept (Committed) while the synapse exists.
type InSlot struct {
	Pre, Post NeuronID
	Committed bool
}

// sagaState is the saga part of a subgraph's state.
type sagaState struct {
	out      map[EventUUID]OutSaga    // pre side: reserved, undecided
	reserved map[SynapseKey]EventUUID // pre side: the saga holding each reserved key
	cross    map[SynapseKey]EventUUID // pre side: committed synapses whose post is elsewhere
	unlinks  map[EventUUID]SynapseKey // pre side: pruned cross synapses post has not released
	in       map[EventUUID]InSlot     // post side
	open     map[EventUUID]EventUUID  // pre side: the client's event_uuid -> its open saga (derived from out)
	seq      uint64                   // bumped by every saga transition: the driver's cue
}

func newSagaState() sagaState {
	return sagaState{out: map[EventUUID]OutSaga{}, reserved: map[SynapseKey]EventUUID{}, cross: map[SynapseKey]EventUUID{},
		unlinks: map[EventUUID]SynapseKey{}, in: map[EventUUID]InSlot{}, open: map[EventUUID]EventUUID{}}
}

func (g *sagaState) clone() sagaState {
	return sagaState{out: maps.Clone(g.out), reserved: maps.Clone(g.reserved), cross: maps.Clone(g.cross),
		unlinks: maps.Clone(g.unlinks), in: maps.Clone(g.in), open: maps.Clone(g.open), seq: g.seq}
}

// SagaStep* name the steps of a saga: the part of a step's event_uuid that
// says which step it is (SagaStepUUID).
const (
	SagaStepReserve uint64 = iota + 1
	SagaStepAccept
	SagaStepCommit
	SagaStepCompensate
	SagaStepSettleCommit
	SagaStepSettleRelease
	SagaStepUnlinked
)

// uuidSaga marks the event_uuids of saga steps (beside heartbeat, recovery
// and policy; client sessions are below 1<<62).
const uuidSaga = 1<<63 | 1<<59

// SagaStepUUID is the event_uuid of one step of a saga: a retried step is
// the same event, which the dedup table answers. It is a 120-bit mix of the
// saga id and the step; two sagas' steps colliding is a 2^-120 event.
func SagaStepUUID(saga EventUUID, step uint64) EventUUID {
	a := mix64(saga.Hi ^ mix64(saga.Lo^step*0x9e3779b97f4a7c15))
	b := mix64(saga.Lo ^ mix64(saga.Hi+step))
	return EventUUID{Hi: uuidSaga | step<<52 | a>>12, Lo: b}
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// IsSaga reports the saga event types.
func (t EventType) IsSaga() bool { return t >= EvSagaReserve && t <= EvSagaSettle }

// ---- reading the saga state ----

// OutSaga returns a reservation of this subgraph (pre side).
func (s *SubgraphState) OutSaga(id EventUUID) (OutSaga, bool) {
	o, ok := s.saga.out[id]
	return o, ok
}

// OpenSaga returns the undecided saga a client's connect (its event_uuid)
// opened at this subgraph (pre side), and the saga's id.
func (s *SubgraphState) OpenSaga(client EventUUID) (EventUUID, OutSaga, bool) {
	id, ok := s.saga.open[client]
	return id, s.saga.out[id], ok
}

// InSlot returns post's side of a saga.
func (s *SubgraphState) InSlot(id EventUUID) (InSlot, bool) {
	x, ok := s.saga.in[id]
	return x, ok
}

// CrossSaga returns the saga that made a committed cross-subgraph synapse.
func (s *SubgraphState) CrossSaga(k SynapseKey) (EventUUID, bool) {
	id, ok := s.saga.cross[k]
	return id, ok
}

// ReservedBy returns the saga holding a reserved synapse key.
func (s *SubgraphState) ReservedBy(k SynapseKey) (EventUUID, bool) {
	id, ok := s.saga.reserved[k]
	return id, ok
}

// Unlink returns the key of a pruned cross synapse post has not released.
func (s *SubgraphState) Unlink(id EventUUID) (SynapseKey, bool) {
	k, ok := s.saga.unlinks[id]
	return k, ok
}

// SagaSeq changes whenever a saga transition is applied.
func (s *SubgraphState) SagaSeq() uint64 { return s.saga.seq }

// OutSagas, InSlots and Unlinks list the open saga records, sorted by id.
func (s *SubgraphState) OutSagas() []EventUUID {
	return slices.SortedFunc(maps.Keys(s.saga.out), compareUUID)
}

func (s *SubgraphState) InSlots() []EventUUID {
	return slices.SortedFunc(maps.Keys(s.saga.in), compareUUID)
}

func (s *SubgraphState) Unlinks() []EventUUID {
	return slices.SortedFunc(maps.Keys(s.saga.unlinks), compareUUID)
}

// CrossSynapses lists the committed cross-subgraph synapses (pre side), sorted.
func (s *SubgraphState) CrossSynapses() []SynapseKey {
	return slices.SortedFunc(maps.Keys(s.saga.cross), compareSynapse)
}

func compareUUID(a, b EventUUID) int {
	switch {
	case a.Hi != b.Hi:
		if a.Hi < b.Hi {
			return -1
		}
		return 1
	case a.Lo < b.Lo:
		return -1
	case a.Lo > b.Lo:
		return 1
	}
	return 0
}

// ---- the fold ----

// cross reports a synapse whose post neuron lives in another subgraph.
func (s *SubgraphState) crossKey(k SynapseKey) bool { return SubgraphOf(k.Post, s.Count) != s.ID }

// mutateSaga folds a saga event. Each step is idempotent by its event_uuid
// (the dedup table) and by the records: a step whose record is gone folds to
// nothing and answers ok.
func (s *SubgraphState) mutateSaga(ev *Event) Result {
	g, id := &s.saga, ev.SagaID()
	k := SynapseKey{ev.Pre, ev.Post}
	g.seq++
	switch ev.Type {
	case EvSagaReserve:
		r := s.reserve(ev, id, k)
		if r.Status != StatusOK {
			s.dedup.put(ev.Saga.ID, r, ev.TimestampMs) // refused at pre: that is the client's answer
		}
		return r
	case EvSagaAccept:
		post, ok := s.neurons[ev.Post]
		switch {
		case SubgraphOf(ev.Post, s.Count) != s.ID:
			return Result{Status: StatusRejected, Reason: ReasonNoSuchNeuron}
		case !ok:
			return Result{Status: StatusRejected, Reason: ReasonNoSuchNeuron}
		case post.InDegree >= s.Policy.MaxInDegree:
			return Result{Status: StatusRejected, Reason: ReasonMaxInDegree}
		}
		if _, dup := g.in[id]; !dup {
			g.in[id] = InSlot{Pre: ev.Pre, Post: ev.Post}
			s.setDegree(ev.Post, +1, 0)
		}
		return Result{Status: StatusOK}
	case EvSagaCommit:
		o, ok := g.out[id]
		if !ok {
			return Result{Status: StatusOK}
		}
		ok2 := SynapseKey{o.Pre, o.Post}
		s.closeOut(id, o)
		s.setSynapse(ok2, o.Weight)
		g.cross[ok2] = id
		r := Result{Status: StatusOK, Value: o.Weight, Exists: true}
		s.dedup.put(o.Client, r, ev.TimestampMs)
		return r
	case EvSagaCompensate:
		o, ok := g.out[id]
		if !ok {
			return Result{Status: StatusOK}
		}
		s.closeOut(id, o)
		s.setDegree(o.Pre, 0, -1)
		r := Result{Status: StatusRejected, Reason: ev.Saga.Reason}
		s.dedup.put(o.Client, r, ev.TimestampMs)
		return r // released: a change (a late compensation folds to ok)
	case EvSagaSettle:
		x, ok := g.in[id]
		switch {
		case !ok:
		case ev.Saga.Release:
			delete(g.in, id)
			s.setDegree(x.Post, -1, 0)
			return Result{Status: StatusOK, Exists: true} // released: a change
		default:
			x.Committed = true
			g.in[id] = x
		}
		return Result{Status: StatusOK}
	case EvSagaUnlinked:
		delete(g.unlinks, id)
		return Result{Status: StatusOK}
	}
	panic(fmt.Sprintf("model: subgraph %d: unknown saga event %s", s.ID, ev.Type))
}

// closeOut removes a decided reservation's records.
func (s *SubgraphState) closeOut(id EventUUID, o OutSaga) {
	g := &s.saga
	delete(g.out, id)
	delete(g.reserved, SynapseKey{o.Pre, o.Post})
	if g.open[o.Client] == id {
		delete(g.open, o.Client)
	}
}

// reserve is the Reserve step of saga id, checked in the order of a local
// connect: the synapse exists; a reservation of it (or one under the same
// client event_uuid) is in flight; pre is missing; pre's out-degree
// (reservations included) is at the maximum.
func (s *SubgraphState) reserve(ev *Event, id EventUUID, k SynapseKey) Result {
	g := &s.saga
	if _, ok := s.synapses[k]; ok {
		return Result{Status: StatusAlreadyExists}
	}
	_, busy := g.reserved[k]
	_, open := g.open[ev.Saga.ID]
	if _, taken := g.out[id]; busy || open || taken { // taken: only a legacy log's id clash
		return Result{Status: StatusRejected, Reason: ReasonSagaInProgress}
	}
	pre, ok := s.neurons[ev.Pre]
	if !ok || SubgraphOf(ev.Pre, s.Count) != s.ID || !s.crossKey(k) {
		return Result{Status: StatusRejected, Reason: ReasonNoSuchNeuron}
	}
	if pre.OutDegree >= s.Policy.MaxOutDegree {
		return Result{Status: StatusRejected, Reason: ReasonMaxOutDegree}
	}
	g.out[id] = OutSaga{Client: ev.Saga.ID, Pre: ev.Pre, Post: ev.Post, Weight: clamp(ev.Value, WeightMin, WeightMax), ReservedAtMs: ev.TimestampMs}
	g.reserved[k] = id
	g.open[ev.Saga.ID] = id
	s.setDegree(ev.Pre, 0, +1)
	return Result{Status: StatusOK}
}

// pruneCross removes a committed cross-subgraph synapse at pre; post's
// in-slot is released by the unlink that follows.
func (s *SubgraphState) pruneCross(k SynapseKey, saga EventUUID) Result {
	s.delSynapse(k)
	delete(s.saga.cross, k)
	s.saga.unlinks[saga] = k
	s.saga.seq++
	s.setDegree(k.Pre, 0, -1)
	return Result{Status: StatusOK}
}

// digestSaga adds the saga records to a digest, in sorted order.
func (s *SubgraphState) digestSaga(h *digest) {
	g := &s.saga
	for _, id := range s.OutSagas() {
		o := g.out[id]
		h.u64(id.Hi)
		h.u64(id.Lo)
		h.u64(o.Client.Hi)
		h.u64(o.Client.Lo)
		h.u64(uint64(o.Pre))
		h.u64(uint64(o.Post))
		h.u64(uint64(o.Weight))
		h.u64(uint64(o.ReservedAtMs))
	}
	for _, k := range s.CrossSynapses() {
		id := g.cross[k]
		h.u64(uint64(k.Pre) ^ 0x5a)
		h.u64(uint64(k.Post))
		h.u64(id.Hi)
		h.u64(id.Lo)
	}
	for _, id := range s.Unlinks() {
		k := g.unlinks[id]
		h.u64(id.Hi ^ 0xa5)
		h.u64(id.Lo)
		h.u64(uint64(k.Pre))
		h.u64(uint64(k.Post))
	}
	for _, id := range s.InSlots() {
		x := g.in[id]
		h.u64(id.Hi ^ 0x33)
		h.u64(id.Lo)
		h.u64(uint64(x.Pre))
		h.u64(uint64(x.Post))
		if x.Committed {
			h.u64(1)
		} else {
			h.u64(0)
		}
	}
}
