package sim

import (
	"fmt"
	"slices"

	"territory/model"
	"territory/sim/invariants"
)

// sagaChecker guards the handshake saga's promises over the reference folds
// of the logs (the truth), not over what territories say:
//
//   - saga-atomic: at every step, pre holds a committed cross synapse only
//     while post holds its in-slot; post commits or keeps a slot only while
//     pre holds the synapse (or the unlink of it); post releases only a slot
//     pre does not hold; and a client's final answer to a cross-subgraph
//     connect is the answer pre's log recorded for it.
//   - saga-compensate: no saga is both committed and compensated.
//   - saga-no-leak: at the end every degree is explained by synapses,
//     reservations and in-slots (the snapshot decoder's own check).
//   - saga-timeout: a saga is compensated for a timeout only if a fault was
//     active between the liveness bound before its reservation and the
//     compensation (a store that let every saga time out would otherwise
//     pass: every answer a refusal, every refusal logged).
//   - saga-terminates: at the end, no reservation, unsettled in-slot or
//     unlink is older than the bound, counted from the later of its creation
//     and the last fault's end.
type sagaChecker struct {
	folds   map[model.SubgraphID]*model.SubgraphState
	opened  map[sagaRecord]int64 // open records and when their step committed
	decided map[model.EventUUID]uint8
	stats   SagaStats
	// Faults: how many are active, and the last instant one was.
	activeFaults int
	lastFaultUs  int64
	calledUs     map[model.EventUUID]int64 // connects in flight
	sagaUs       []int64                   // latencies of ok cross-subgraph connects
	localUs      []int64                   // and of ok same-subgraph ones
	// Every outcome pre's log recorded under a client's connect id (its
	// sagas' decisions and its refusals at reserve), and the client id of
	// each saga: an answer near the end of the dedup window may be the
	// outcome of an earlier saga under that id whose entry the reference
	// fold has evicted since (Workload.ResendPM).
	outcomes map[model.EventUUID][]model.Result
	clientOf map[model.EventUUID]model.EventUUID
}

// SagaStats counts what the handshake sagas of a run did, from the folds.
type SagaStats struct {
	Answers     int `json:"answers"`     // final answers to cross-subgraph connects, each checked against pre's log
	Reserved    int `json:"reserved"`    // reservations taken at pre
	Committed   int `json:"committed"`   // sagas committed
	Compensated int `json:"compensated"` // sagas compensated (refused by post, or timed out)
	TimedOut    int `json:"timed_out"`   // of those, timed out
	Released    int `json:"released"`    // in-slots given back at post (compensations and unlinks)
	Unlinked    int `json:"unlinked"`    // cross-subgraph prunes closed
	// Latency (virtual time, call to final ok answer) of connects made by a
	// saga and of same-subgraph connects, for comparison.
	SagaP50Ms  float64 `json:"saga_p50_ms"`
	SagaP99Ms  float64 `json:"saga_p99_ms"`
	LocalP50Ms float64 `json:"local_connect_p50_ms"`
	LocalP99Ms float64 `json:"local_connect_p99_ms"`
}

type sagaRecord struct {
	id   model.EventUUID
	kind uint8 // recReserve, recInSlot, recUnlink
}

const (
	recReserve uint8 = iota + 1
	recInSlot
	recUnlink
	decidedCommit     uint8 = 1
	decidedCompensate uint8 = 2
)

// sagaView is what the saga checker reads of the world: the simulator's
// View, or a SagaReplay's (a real run's logs, saga_replay.go).
type sagaView interface {
	NowUs() int64
	Config() *Config
	Violate(name, format string, args ...any)
}

func newSagaChecker(*View) Checker { return newSagaState() }

func newSagaState() *sagaChecker {
	return &sagaChecker{folds: map[model.SubgraphID]*model.SubgraphState{}, opened: map[sagaRecord]int64{}, decided: map[model.EventUUID]uint8{},
		calledUs: map[model.EventUUID]int64{}, outcomes: map[model.EventUUID][]model.Result{}, clientOf: map[model.EventUUID]model.EventUUID{}}
}

// recordOutcome notes an outcome pre's log recorded under a client's id.
func (c *sagaChecker) recordOutcome(client model.EventUUID, r model.Result) {
	if !slices.Contains(c.outcomes[client], r) {
		c.outcomes[client] = append(c.outcomes[client], r)
	}
}

func (*sagaChecker) Name() string { return "saga" }

func (c *sagaChecker) fold(sg model.SubgraphID) *model.SubgraphState { return c.folds[sg] }

func (c *sagaChecker) Observe(v *View, e BusEvent) { c.observe(v, e) }

func (c *sagaChecker) observe(v sagaView, e BusEvent) {
	switch e := e.(type) {
	case EntryFolded:
		c.folds[e.Subgraph] = e.Fold
		if e.Applied {
			c.folded(v, e)
		}
	case OpCalled:
		if e.Req.Op == model.OpConnect {
			c.calledUs[e.Req.ID] = v.NowUs()
		}
	case OpReturned:
		c.latency(v, e.Done)
		c.returned(v, e.Done)
	case FaultChanged:
		if e.Started {
			c.activeFaults++
		} else {
			c.activeFaults--
		}
		c.lastFaultUs = v.NowUs()
	}
}

func (c *sagaChecker) folded(v sagaView, e EntryFolded) {
	ev, n := &e.Event, v.Config().Subgraphs
	id, now := ev.SagaID(), v.NowUs()
	key := model.SynapseKey{Pre: ev.Pre, Post: ev.Post}
	post := func() *model.SubgraphState { return c.fold(model.SubgraphOf(ev.Post, n)) }
	pre := func() *model.SubgraphState { return c.fold(model.SubgraphOf(ev.Pre, n)) }
	switch ev.Type {
	case model.EvSagaReserve:
		if e.Result.Status != model.StatusOK {
			c.recordOutcome(ev.Saga.ID, e.Result)
		}
		c.clientOf[id] = ev.Saga.ID
		if _, ok := e.Fold.OutSaga(id); ok {
			c.opened[sagaRecord{id, recReserve}] = now
			c.stats.Reserved++
		}
	case model.EvSagaAccept:
		if _, ok := e.Fold.InSlot(id); ok {
			c.opened[sagaRecord{id, recInSlot}] = now
		}
	case model.EvSagaCommit:
		if !e.Result.Exists {
			return // decided before: folds to nothing
		}
		delete(c.opened, sagaRecord{id, recReserve})
		c.recordOutcome(c.clientOf[id], e.Result)
		c.decide(v, id, decidedCommit)
		c.stats.Committed++
		if p := post(); p == nil || !hasSlot(p, id) {
			v.Violate(invariants.SagaAtomic, "saga %s n%d->n%d committed at pre with no in-slot at post", id, ev.Pre, ev.Post)
		}
	case model.EvSagaCompensate:
		if e.Result.Status != model.StatusRejected {
			return
		}
		reservedUs, known := c.opened[sagaRecord{id, recReserve}]
		if ev.Saga.Reason == model.ReasonSagaTimeout && known && c.activeFaults == 0 && c.lastFaultUs < reservedUs-v.Config().LivenessMs*1000 {
			v.Violate(invariants.SagaTimeout, "saga %s n%d->n%d timed out with no fault since %d ms before its reservation", id, ev.Pre, ev.Post, v.Config().LivenessMs)
		}
		delete(c.opened, sagaRecord{id, recReserve})
		c.recordOutcome(c.clientOf[id], e.Result)
		c.decide(v, id, decidedCompensate)
		c.stats.Compensated++
		if ev.Saga.Reason == model.ReasonSagaTimeout {
			c.stats.TimedOut++
		}
	case model.EvSagaSettle:
		p := pre()
		held := p != nil && crossHeld(p, key, id)
		x, slot := e.Fold.InSlot(id)
		switch {
		case ev.Saga.Release && held:
			v.Violate(invariants.SagaAtomic, "saga %s n%d->n%d: post released its in-slot while pre holds the synapse", id, ev.Pre, ev.Post)
		case !ev.Saga.Release && slot && x.Committed && !held && (p == nil || !unlinkOf(p, id)):
			v.Violate(invariants.SagaAtomic, "saga %s n%d->n%d: post committed its in-slot, pre holds no such synapse", id, ev.Pre, ev.Post)
		}
		if ev.Saga.Release && e.Result.Exists {
			c.stats.Released++
		}
		if !slot || x.Committed {
			delete(c.opened, sagaRecord{id, recInSlot})
		}
	case model.EvPrune:
		for _, u := range e.Fold.Unlinks() {
			if k, _ := e.Fold.Unlink(u); k == key {
				if _, seen := c.opened[sagaRecord{u, recUnlink}]; !seen {
					c.opened[sagaRecord{u, recUnlink}] = now
				}
			}
		}
	case model.EvSagaUnlinked:
		delete(c.opened, sagaRecord{id, recUnlink})
		c.stats.Unlinked++
		if p := post(); p != nil && hasSlot(p, id) {
			v.Violate(invariants.SagaAtomic, "saga %s n%d->n%d: pre closed the unlink while post still holds the in-slot", id, ev.Pre, ev.Post)
		}
	}
}

func hasSlot(s *model.SubgraphState, id model.EventUUID) bool {
	_, ok := s.InSlot(id)
	return ok
}

func unlinkOf(s *model.SubgraphState, id model.EventUUID) bool {
	_, ok := s.Unlink(id)
	return ok
}

func crossHeld(s *model.SubgraphState, k model.SynapseKey, id model.EventUUID) bool {
	c, ok := s.CrossSaga(k)
	return ok && c == id
}

func (c *sagaChecker) decide(v sagaView, id model.EventUUID, d uint8) {
	if prev := c.decided[id]; prev != 0 && prev != d {
		v.Violate(invariants.SagaCompensate, "saga %s was both committed and compensated", id)
	}
	c.decided[id] |= d
}

// returned checks a client's final answer to a cross-subgraph connect
// against pre's log: the answer recorded under the connect's event_uuid.
func (c *sagaChecker) returned(v sagaView, done model.FactOpDone) {
	req, n := &done.Request, v.Config().Subgraphs
	if req.Op != model.OpConnect || done.Unknown || model.SubgraphOf(req.Pre, n) == model.SubgraphOf(req.Post, n) {
		return
	}
	if _, sent := toLinOutput(done); !sent || !done.Result.Status.Final() {
		return
	}
	c.stats.Answers++
	p := c.fold(model.SubgraphOf(req.Pre, n))
	var logged model.Result
	ok := false
	if p != nil {
		logged, ok = p.Deduped(req.ID)
	}
	if (!ok || logged != done.Result) && !slices.Contains(c.outcomes[req.ID], done.Result) {
		v.Violate(invariants.SagaAtomic, "cross-subgraph connect %s %s answered %+v, pre's log says %+v (recorded: %v)", req.ID, req, done.Result, logged, ok)
	}
}

func (c *sagaChecker) latency(v sagaView, done model.FactOpDone) {
	at, ok := c.calledUs[done.Request.ID]
	if !ok {
		return
	}
	delete(c.calledUs, done.Request.ID)
	if done.Unknown || done.Result.Status != model.StatusOK {
		return
	}
	if isCrossConnect(&done.Request, v.Config().Subgraphs) {
		c.sagaUs = append(c.sagaUs, v.NowUs()-at)
	} else {
		c.localUs = append(c.localUs, v.NowUs()-at)
	}
}

// quantileMs is the q-quantile of latencies in µs, in ms (0 if none).
func quantileMs(us []int64, q float64) float64 {
	if len(us) == 0 {
		return 0
	}
	s := slices.Clone(us)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(q*float64(len(s))))]) / 1000
}

func (c *sagaChecker) Final(v *View) []invariants.Violation { return c.final(v) }

func (c *sagaChecker) final(v sagaView) []invariants.Violation {
	now := v.NowUs()
	healUs := v.Config().Schedule.LastEndMs() * 1000
	boundUs := (2*v.Config().SagaTimeoutMs() + v.Config().LivenessMs) * 1000
	var out []invariants.Violation
	recs := make([]sagaRecord, 0, len(c.opened))
	for r := range c.opened {
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b sagaRecord) int {
		if a.id != b.id {
			if a.id.Hi != b.id.Hi {
				return cmpU64(a.id.Hi, b.id.Hi)
			}
			return cmpU64(a.id.Lo, b.id.Lo)
		}
		return int(a.kind) - int(b.kind)
	})
	names := [...]string{"", "reservation", "in-slot", "unlink"}
	for _, r := range recs {
		since := max(c.opened[r], healUs)
		if now-since > boundUs {
			out = append(out, invariants.Violation{Invariant: invariants.SagaTerminates, AtUs: now,
				Detail: fmt.Sprintf("saga %s: %s open for %d ms after the later of its step and the last heal (bound %d ms)", r.id, names[r.kind], (now-since)/1000, boundUs/1000)})
		}
	}
	sgs := make([]model.SubgraphID, 0, len(c.folds))
	for sg := range c.folds {
		sgs = append(sgs, sg)
	}
	slices.Sort(sgs)
	n := v.Config().Subgraphs
	for _, sg := range sgs {
		s := c.folds[sg]
		if _, err := model.DecodeSnapshot(model.EncodeSnapshot(s)); err != nil {
			out = append(out, invariants.Violation{Invariant: invariants.SagaNoLeak, AtUs: now, Detail: fmt.Sprintf("subgraph %d: %v", sg, err)})
		}
		for _, k := range s.CrossSynapses() {
			id, _ := s.CrossSaga(k)
			if p := c.fold(model.SubgraphOf(k.Post, n)); p == nil || !hasSlot(p, id) {
				out = append(out, invariants.Violation{Invariant: invariants.SagaAtomic, AtUs: now, Detail: fmt.Sprintf("subgraph %d holds n%d->n%d (saga %s), post holds no in-slot", sg, k.Pre, k.Post, id)})
			}
		}
		for _, id := range s.InSlots() {
			x, _ := s.InSlot(id)
			p := c.fold(model.SubgraphOf(x.Pre, n))
			if x.Committed && (p == nil || (!crossHeld(p, model.SynapseKey{Pre: x.Pre, Post: x.Post}, id) && !unlinkOf(p, id))) {
				out = append(out, invariants.Violation{Invariant: invariants.SagaAtomic, AtUs: now, Detail: fmt.Sprintf("subgraph %d holds a committed in-slot n%d->n%d (saga %s), pre holds neither the synapse nor its unlink", sg, x.Pre, x.Post, id)})
			}
		}
	}
	return out
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (c *sagaChecker) Report(o *Outcome) {
	c.stats.SagaP50Ms, c.stats.SagaP99Ms = quantileMs(c.sagaUs, 0.5), quantileMs(c.sagaUs, 0.99)
	c.stats.LocalP50Ms, c.stats.LocalP99Ms = quantileMs(c.localUs, 0.5), quantileMs(c.localUs, 0.99)
	o.Sagas = c.stats
}
