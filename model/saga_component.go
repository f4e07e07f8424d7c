package model

import (
	"maps"
	"slices"
)

// sagas drives the handshake saga (saga_state.go holds what the logs say).
// Everything it knows that matters is in the logs: its own maps are retry
// timers and the hosts waiting for an answer, rebuilt from the fold after a
// crash, a re-claim or a host loss. Messages may be lost, duplicated or
// reordered: every step is an event with a fixed event_uuid, so a retried
// step is answered from the dedup table, and a late one folds to nothing.
//
// Pre (the coordinator) retries Accept until post answers or the saga times
// out, and pushes its decision to post once. Post asks pre about every
// in-slot it holds unsettled until pre says committed or released; pre
// answers "released" only after a read barrier, so a deposed pre never
// makes post give back a slot of a saga the real primary committed. Pre
// retries the unlink of a pruned cross synapse until post acknowledges it.
type sagas struct {
	noHooks
	t    *Territory
	subs perSubgraph[sagaSub]
}

type sagaSub struct {
	waiters       map[EventUUID][]HostID // pre: clients waiting for a saga's answer
	acceptWaiters map[EventUUID][]HostID // post: pre hosts waiting for an Accept to commit
	unlinkWaiters map[EventUUID][]HostID // post: pre hosts waiting for an unlink's release
	nextMs        map[EventUUID]int64    // the next send of each open record's message
	tries         map[EventUUID]int
}

func newSagas(t *Territory) *sagas {
	s := &sagas{t: t, subs: make(perSubgraph[sagaSub])}
	t.register(s)
	return s
}

func (k *sagas) of(p *primary) *sagaSub {
	s := k.subs.of(p)
	if s.waiters == nil {
		s.waiters, s.acceptWaiters, s.unlinkWaiters = map[EventUUID][]HostID{}, map[EventUUID][]HostID{}, map[EventUUID][]HostID{}
		s.nextMs, s.tries = map[EventUUID]int64{}, map[EventUUID]int{}
	}
	return s
}

func addWaiter(m map[EventUUID][]HostID, id EventUUID, h HostID) {
	if !slices.Contains(m[id], h) {
		m[id] = append(m[id], h)
	}
}

func (k *sagas) send(to HostID, m SagaMsg) {
	if to == 0 {
		return
	}
	k.t.out.Add(Send{To: to, Msg: &Message{Saga: &m}})
}

// ---- pre: the client's connect ----

// onConnect starts (or joins) the saga of a cross-subgraph connect.
func (k *sagas) onConnect(from HostID, p *primary, req *Request) {
	s := k.of(p)
	if r, ok := p.state.Deduped(req.ID); ok {
		k.t.reply(from, req.ID, r)
		return
	}
	if _, _, ok := p.state.OpenSaga(req.ID); ok || len(s.waiters[req.ID]) > 0 {
		addWaiter(s.waiters, req.ID, from)
		return
	}
	if p.phase != phaseOperational {
		k.t.reply(from, req.ID, Result{Status: StatusUnavailable})
		return
	}
	if len(p.state.saga.out)+len(s.waiters) >= k.t.cfg.SagaLimit {
		k.t.reply(from, req.ID, Result{Status: StatusBusy})
		return
	}
	id := req.ID
	w := &write{req: Request{ID: SagaStepUUID(id, SagaStepReserve), Pre: req.Pre, Post: req.Post, Value: req.Value},
		internal: EvSagaReserve, saga: SagaBody{ID: id, Instance: true}}
	w.onDone = func(r Result) { k.reserved(p, id, r) }
	if !k.t.writes.submit(p, w) {
		k.t.reply(from, req.ID, Result{Status: StatusBusy})
		return
	}
	addWaiter(s.waiters, id, from)
}

// reserved: the Reserve step of a client's connect committed. Refused at
// pre: that is the answer.
func (k *sagas) reserved(p *primary, client EventUUID, r Result) {
	if r.Status != StatusOK {
		k.answer(p, client)
		return
	}
	if id, o, ok := p.state.OpenSaga(client); ok {
		k.sendAccept(p, id, o)
	}
}

func (k *sagas) sendAccept(p *primary, id EventUUID, o OutSaga) {
	s := k.of(p)
	s.tries[id]++
	s.nextMs[id] = k.t.nowMs + backoffMs(k.t.cfg.SagaRetryMs, 4*k.t.cfg.SagaRetryMs, s.tries[id])
	k.send(k.t.peerOf(SubgraphOf(o.Post, k.t.cfg.Subgraphs)), SagaMsg{Kind: SagaAccept, ID: id, Pre: o.Pre, Post: o.Post, Weight: o.Weight})
}

// answer replies to the clients waiting for a connect (its event_uuid), if
// its answer is known.
func (k *sagas) answer(p *primary, client EventUUID) {
	s := k.of(p)
	r, ok := p.state.Deduped(client)
	if !ok {
		return
	}
	for _, c := range s.waiters[client] {
		k.t.reply(c, client, r)
	}
	delete(s.waiters, client)
}

// decide logs pre's decision; whichever decision is logged first wins.
func (k *sagas) decide(p *primary, id EventUUID, commit bool, reason Reason) {
	o, ok := p.state.OutSaga(id)
	if !ok {
		return
	}
	step, ty := SagaStepCommit, EvSagaCommit
	if !commit {
		step, ty = SagaStepCompensate, EvSagaCompensate
	}
	w := &write{req: Request{ID: SagaStepUUID(id, step), Pre: o.Pre, Post: o.Post}, internal: ty, saga: SagaBody{ID: id, Reason: reason}}
	w.onDone = func(r Result) { k.decided(p, id, o, commit, r) }
	k.t.writes.submit(p, w)
}

func (k *sagas) decided(p *primary, id EventUUID, o OutSaga, commit bool, r Result) {
	s := k.of(p)
	delete(s.nextMs, id)
	delete(s.tries, id)
	k.answer(p, o.Client)
	committed := false
	if c, ok := p.state.CrossSaga(SynapseKey{o.Pre, o.Post}); ok && c == id {
		committed = true
	}
	// Tell post once; its own queries settle the slot if this is lost.
	k.send(k.t.peerOf(SubgraphOf(o.Post, k.t.cfg.Subgraphs)), SagaMsg{Kind: SagaSettle, ID: id, Pre: o.Pre, Post: o.Post, Release: !committed})
	if !commit && r.Status == StatusRejected {
		k.t.observe(mandateFailed(k.t.cfg.ID, p.sg, id, o, r.Reason))
	}
}

// ---- the messages ----

func (k *sagas) message(from HostID, m *Message) bool {
	g := m.Saga
	if g == nil {
		return false
	}
	n := k.t.cfg.Subgraphs
	side := g.Post // the messages pre sends go to post's subgraph
	switch g.Kind {
	case SagaAcceptReply, SagaSettled, SagaQuery:
		side = g.Pre
	case SagaAccept, SagaSettle, SagaQueryReply:
	default:
		return true // an unknown kind: dropped
	}
	p := k.t.subgraphs[SubgraphOf(side, n)]
	if p == nil || p.phase != phaseOperational {
		if g.Kind == SagaAccept {
			k.send(from, SagaMsg{Kind: SagaAcceptReply, ID: g.ID, Pre: g.Pre, Post: g.Post, Status: StatusWrongTerritory})
		}
		return true // pre retries; post's queries go on
	}
	switch g.Kind {
	case SagaAccept:
		k.onAccept(from, p, g)
	case SagaAcceptReply:
		switch g.Status {
		case StatusOK:
			k.decide(p, g.ID, true, ReasonNone)
		case StatusRejected:
			k.decide(p, g.ID, false, g.Reason)
		}
	case SagaSettle:
		k.onSettle(from, p, g)
	case SagaSettled:
		if _, ok := p.state.Unlink(g.ID); ok {
			k.t.writes.submit(p, &write{req: Request{ID: SagaStepUUID(g.ID, SagaStepUnlinked), Pre: g.Pre, Post: g.Post},
				internal: EvSagaUnlinked, saga: SagaBody{ID: g.ID}})
		}
	case SagaQuery:
		k.onQuery(from, p, g)
	case SagaQueryReply:
		x, ok := p.state.InSlot(g.ID)
		if ok && !x.Committed && g.Outcome != SagaPending {
			k.settle(p, g.ID, x, g.Outcome == SagaReleased, nil)
		}
	}
	return true
}

// onAccept is post's side: log the in-slot (or the refusal), then answer.
func (k *sagas) onAccept(from HostID, p *primary, g *SagaMsg) {
	step := SagaStepUUID(g.ID, SagaStepAccept)
	if r, ok := p.state.Deduped(step); ok {
		k.send(from, SagaMsg{Kind: SagaAcceptReply, ID: g.ID, Pre: g.Pre, Post: g.Post, Status: r.Status, Reason: r.Reason})
		return
	}
	s, id := k.of(p), g.ID
	addWaiter(s.acceptWaiters, id, from)
	w := &write{req: Request{ID: step, Pre: g.Pre, Post: g.Post, Value: g.Weight}, internal: EvSagaAccept, saga: SagaBody{ID: id}}
	pre, post := g.Pre, g.Post
	w.onDone = func(r Result) {
		for _, h := range s.acceptWaiters[id] {
			k.send(h, SagaMsg{Kind: SagaAcceptReply, ID: id, Pre: pre, Post: post, Status: r.Status, Reason: r.Reason})
		}
		delete(s.acceptWaiters, id)
	}
	k.t.writes.submit(p, w) // already queued: the waiter is added, the reply comes with it
}

func (k *sagas) onSettle(from HostID, p *primary, g *SagaMsg) {
	x, ok := p.state.InSlot(g.ID)
	switch {
	case !ok:
		if g.Unlink {
			k.send(from, SagaMsg{Kind: SagaSettled, ID: g.ID, Pre: g.Pre, Post: g.Post})
		}
	case g.Release:
		var to HostID
		if g.Unlink {
			to = from
		}
		k.settle(p, g.ID, x, true, &to)
	case !x.Committed:
		k.settle(p, g.ID, x, false, nil)
	}
}

// settle logs post's reconciliation to pre's decision; ackTo, if set, is a
// pre host waiting for an unlink's release.
func (k *sagas) settle(p *primary, id EventUUID, x InSlot, release bool, ackTo *HostID) {
	s := k.of(p)
	step := SagaStepSettleCommit
	if release {
		step = SagaStepSettleRelease
	}
	if ackTo != nil && *ackTo != 0 {
		addWaiter(s.unlinkWaiters, id, *ackTo)
	}
	w := &write{req: Request{ID: SagaStepUUID(id, step), Pre: x.Pre, Post: x.Post}, internal: EvSagaSettle, saga: SagaBody{ID: id, Release: release}}
	w.onDone = func(Result) {
		delete(s.nextMs, id)
		delete(s.tries, id)
		for _, h := range s.unlinkWaiters[id] {
			k.send(h, SagaMsg{Kind: SagaSettled, ID: id, Pre: x.Pre, Post: x.Post})
		}
		delete(s.unlinkWaiters, id)
	}
	k.t.writes.submit(p, w)
}

// onQuery is pre answering post. Committed and pending are facts of any
// prefix of pre's log; released is not (a deposed primary's prefix may lack
// the saga's later steps), so it waits for a read barrier.
func (k *sagas) onQuery(from HostID, p *primary, g *SagaMsg) {
	if out := sagaOutcome(p.state, g); out != SagaReleased {
		k.send(from, SagaMsg{Kind: SagaQueryReply, ID: g.ID, Pre: g.Pre, Post: g.Post, Outcome: out})
		return
	}
	k.t.enqueueBarrierWait(from, p, g)
}

// afterBarrier answers a query once a barrier showed p still ours.
func (k *sagas) afterBarrier(from HostID, p *primary, g *SagaMsg) {
	k.send(from, SagaMsg{Kind: SagaQueryReply, ID: g.ID, Pre: g.Pre, Post: g.Post, Outcome: sagaOutcome(p.state, g)})
}

func sagaOutcome(s *SubgraphState, g *SagaMsg) SagaOutcome {
	if _, ok := s.OutSaga(g.ID); ok {
		return SagaPending
	}
	if c, ok := s.CrossSaga(SynapseKey{g.Pre, g.Post}); ok && c == g.ID {
		return SagaCommitted
	}
	return SagaReleased
}

// ---- retries, timeouts and the lifecycle ----

// tick times out and retries: pre's Accepts and unlinks, post's queries.
func (k *sagas) tick(p *primary) {
	s, now := k.of(p), k.t.nowMs
	due := func(id EventUUID) bool { return now >= s.nextMs[id] }
	for _, id := range p.state.OutSagas() {
		o, _ := p.state.OutSaga(id)
		switch {
		case now >= o.ReservedAtMs+k.t.cfg.SagaTimeoutMs:
			k.decide(p, id, false, ReasonSagaTimeout)
		case due(id):
			k.sendAccept(p, id, o)
		}
	}
	for _, id := range p.state.Unlinks() {
		if due(id) {
			key, _ := p.state.Unlink(id)
			k.retried(s, id)
			k.send(k.t.peerOf(SubgraphOf(key.Post, k.t.cfg.Subgraphs)), SagaMsg{Kind: SagaSettle, ID: id, Pre: key.Pre, Post: key.Post, Release: true, Unlink: true})
		}
	}
	for _, id := range p.state.InSlots() {
		if x, _ := p.state.InSlot(id); !x.Committed && due(id) {
			k.retried(s, id)
			k.send(k.t.peerOf(SubgraphOf(x.Pre, k.t.cfg.Subgraphs)), SagaMsg{Kind: SagaQuery, ID: id, Pre: x.Pre, Post: x.Post})
		}
	}
}

func (k *sagas) retried(s *sagaSub, id EventUUID) {
	s.tries[id]++
	s.nextMs[id] = k.t.nowMs + backoffMs(k.t.cfg.SagaRetryMs, 4*k.t.cfg.SagaRetryMs, s.tries[id])
}

// operational: the fold holds every open saga; resume them all now.
func (k *sagas) operational(p *primary, _ bool) {
	s := k.of(p)
	clear(s.nextMs)
	clear(s.tries)
}

// claimStalled: waiting clients retry elsewhere or later.
func (k *sagas) claimStalled(p *primary) {
	s := k.of(p)
	for _, id := range slices.SortedFunc(maps.Keys(s.waiters), compareUUID) {
		for _, c := range s.waiters[id] {
			k.t.reply(c, id, Result{Status: StatusUnavailable})
		}
	}
	clear(s.waiters)
}

func (k *sagas) steppedDown(p *primary) {
	s := k.of(p)
	for _, id := range slices.SortedFunc(maps.Keys(s.waiters), compareUUID) {
		for _, c := range s.waiters[id] {
			k.t.reply(c, id, Result{Status: StatusWrongTerritory})
		}
	}
	delete(k.subs, p.sg)
}

// mandateFailed is the mandate.fulfillment.failed report of a compensated saga.
func mandateFailed(t HostID, sg SubgraphID, id EventUUID, o OutSaga, reason Reason) FactMandateFailed {
	code, details := mandateReason(o.Pre, o.Post, reason)
	return FactMandateFailed{EventID: SagaStepUUID(id, SagaStepCompensate), SourceTerritory: t, Subgraph: sg, Saga: o.Client,
		Pre: o.Pre, Post: o.Post, ReasonCode: code, Reason: reason, Details: details}
}
