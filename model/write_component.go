package model

import (
	"fmt"
	"slices"
)

// writer is the write pipeline: per subgraph a bounded queue of writes and at
// most one append in flight, at LSN = applied + 1. The result of a write
// depends on every write before it, and the log is the order. A write is
// answered only after the log reports its event committed; the answer is the
// fold's result, kept in the state's dedup table for retries.
type writer struct {
	noHooks
	t    *Territory
	id   compID
	subs perSubgraph[writeState]
}

type writeState struct {
	queue     []*write
	inflight  *write
	attempts  int                  // failed attempts of the append in flight
	byUUID    map[EventUUID]*write // queued or in flight
	idleTicks int64                // ticks since the last append: an idle subgraph logs heartbeats
	hbSeq     uint64               // heartbeats of this claim
}

// write is a queued write: a client request (with every client waiting for
// its answer) or an internal event (heartbeat, policy, recovery) with no waiter.
type write struct {
	req      Request
	internal EventType    // 0 for client requests
	tsMs     int64        // EvTerritoryRecovered: the control plane's clock
	policy   Policy       // EvAdoptPolicy: the policy adopted
	body     RecoveryBody // EvTerritoryRecovered
	saga     SagaBody     // saga steps; their Pre, Post and Value are in req
	onDone   func(Result) // an internal write's owner, told the fold's result (not if the write is dropped)
	waiters  []HostID
	lsn      uint64 // set once appended
	data     []byte
}

// The writer's calls and timers.
const (
	writeAppend      uint8 = iota
	writeAppendRetry       // timer
)

func newWriter(t *Territory) *writer {
	w := &writer{t: t, subs: make(perSubgraph[writeState])}
	w.id = t.register(w)
	return w
}

func (k *writer) of(p *primary) *writeState {
	s := k.subs.of(p)
	if s.byUUID == nil {
		s.byUUID = make(map[EventUUID]*write)
	}
	return s
}

func (k *writer) onRequest(from HostID, p *primary, req *Request) {
	s := k.of(p)
	if r, ok := p.state.Deduped(req.ID); ok {
		k.t.reply(from, req.ID, r)
		return
	}
	if w := s.byUUID[req.ID]; w != nil {
		if !slices.Contains(w.waiters, from) {
			w.waiters = append(w.waiters, from)
		}
		return
	}
	if len(s.queue) >= k.t.cfg.QueueLimit {
		k.t.reply(from, req.ID, Result{Status: StatusBusy})
		return
	}
	k.enqueue(p, s, &write{req: *req, waiters: []HostID{from}})
}

// submit queues an internal write unless one with its uuid is queued or in
// flight or the queue is full; false: not queued.
func (k *writer) submit(p *primary, w *write) bool {
	s := k.of(p)
	if s.byUUID[w.req.ID] != nil || len(s.queue) >= k.t.cfg.QueueLimit {
		return false
	}
	k.enqueue(p, s, w)
	return true
}

func (k *writer) enqueue(p *primary, s *writeState, w *write) {
	s.queue = append(s.queue, w)
	s.byUUID[w.req.ID] = w
	k.pump(p, s)
}

// claiming: the append in flight goes first again once we are operational.
func (k *writer) claiming(p *primary) {
	s := k.of(p)
	if s.inflight != nil {
		s.queue = slices.Insert(s.queue, 0, s.inflight)
		s.inflight = nil
	}
}

// claimStalled answers every queued client "unavailable" (not final: they
// retry, with the same event_uuid, wherever the routes send them). Queued
// internal events are dropped too; each is queued again when it is still due.
func (k *writer) claimStalled(p *primary) {
	s := k.of(p)
	for _, w := range s.queue {
		for _, c := range w.waiters {
			k.t.reply(c, w.req.ID, Result{Status: StatusUnavailable})
		}
		delete(s.byUUID, w.req.ID)
	}
	s.queue = s.queue[:0]
}

// steppedDown tells every waiting client to go elsewhere.
func (k *writer) steppedDown(p *primary) {
	s := k.of(p)
	for _, w := range s.queue {
		for _, c := range w.waiters {
			k.t.reply(c, w.req.ID, Result{Status: StatusWrongTerritory})
		}
	}
	if w := s.inflight; w != nil {
		for _, c := range w.waiters {
			k.t.reply(c, w.req.ID, Result{Status: StatusWrongTerritory})
		}
	}
	delete(k.subs, p.sg)
}

func (k *writer) operational(p *primary, _ bool) {
	s := k.of(p)
	s.attempts, s.idleTicks = 0, 0
	if cfg := k.t.cfg.Policy; p.state.Policy.Epoch < cfg.Epoch {
		// A new stream (or a newer configured policy): adopt it, first in line.
		w := &write{req: Request{ID: PolicyUUID(p.sg, cfg.Epoch)}, internal: EvAdoptPolicy, policy: cfg}
		if s.byUUID[w.req.ID] == nil {
			s.queue = slices.Insert(s.queue, 0, w)
			s.byUUID[w.req.ID] = w
		}
	}
	// Writes that waited through the recovery may have landed before it:
	// answer those from the dedup table, then append the rest.
	k.pump(p, s)
}

// tick logs a heartbeat on an idle subgraph. The epoch is unique to this
// claim, so a restarted territory's heartbeats never collide with its
// predecessor's in the dedup table.
func (k *writer) tick(p *primary) {
	s := k.of(p)
	s.idleTicks++
	if s.idleTicks*k.t.cfg.TickMs >= k.t.cfg.HeartbeatMs && s.inflight == nil && len(s.queue) == 0 {
		s.hbSeq++
		k.enqueue(p, s, &write{req: Request{ID: EventUUID{Hi: uuidHeartbeat | uint64(p.sg), Lo: p.epoch<<32 | s.hbSeq&(1<<32-1)}},
			internal: EvHeartbeat})
	}
}

// idle reports that no append of p is in flight.
func (k *writer) idle(p *primary) bool { return k.of(p).inflight == nil }

// resume appends what queued while a migration held p's writes.
func (k *writer) resume(p *primary) { k.pump(p, k.of(p)) }

// pump appends the next queued write, one at a time per subgraph.
func (k *writer) pump(p *primary, s *writeState) {
	for p.phase == phaseOperational && s.inflight == nil && len(s.queue) > 0 && !k.t.migSrc.holds(p) {
		w := s.queue[0]
		s.queue = s.queue[1:]
		if r, ok := p.state.Deduped(w.req.ID); ok {
			k.finish(s, w, r)
			continue
		}
		ev, err := k.eventOf(p, w)
		if err != nil {
			panic(fmt.Sprintf("territory %d: %v", k.t.cfg.ID, err)) // reads never enter the write queue
		}
		w.lsn, w.data = ev.LSN, ev.Encode()
		s.inflight, s.attempts = w, 0
		s.idleTicks = 0
		k.appendInflight(p, s)
	}
}

// eventOf builds the event of a queued write. Every event carries the writer's
// clock: the fold keeps the latest as the subgraph's last heartbeat, the base
// of decay on recovery.
func (k *writer) eventOf(p *primary, w *write) (Event, error) {
	lsn := p.state.AppliedLSN + 1
	if w.internal != 0 {
		ts := k.t.nowMs // a heartbeat re-queued by a re-claim must not carry a stale time
		if w.internal == EvTerritoryRecovered {
			ts = w.tsMs // a recovery carries the control plane's clock
		}
		return Event{LSN: lsn, UUID: w.req.ID, Subgraph: p.sg, Type: w.internal, WriterEpoch: p.epoch, TimestampMs: ts, Policy: w.policy, Recovery: w.body,
			Pre: w.req.Pre, Post: w.req.Post, Value: w.req.Value, Saga: w.saga}, nil
	}
	ev, err := EventFromRequest(&w.req, p.sg, lsn, p.epoch)
	ev.TimestampMs = k.t.nowMs
	return ev, err
}

func (k *writer) appendInflight(p *primary, s *writeState) {
	w := s.inflight
	k.t.log(scoped(k.id, writeAppend, p), LogRequest{Kind: LogAppend, Stream: uint32(p.sg), Epoch: p.epoch, LSN: w.lsn, Data: w.data})
}

func (k *writer) finish(s *writeState, w *write, r Result) {
	delete(s.byUUID, w.req.ID)
	for _, c := range w.waiters {
		k.t.reply(c, w.req.ID, r)
	}
	if w.onDone != nil {
		w.onDone(r)
	}
}

func (k *writer) onTimer(p *primary, c call) {
	if s := k.of(p); c.tag == writeAppendRetry && s.inflight != nil {
		k.appendInflight(p, s)
	}
}

func (k *writer) onResult(p *primary, c call, res *result) {
	if c.tag != writeAppend {
		panic(fmt.Sprintf("territory %d: write result for tag %d", k.t.cfg.ID, c.tag))
	}
	t, s := k.t, k.of(p)
	w := s.inflight
	if w == nil {
		panic(fmt.Sprintf("territory %d subgraph %d: append result with nothing in flight", t.cfg.ID, p.sg))
	}
	switch {
	case res.ok():
		ev, err := DecodeEvent(w.data)
		if err != nil {
			panic(fmt.Sprintf("territory %d: own event does not decode: %v", t.cfg.ID, err))
		}
		r, _ := p.state.Apply(&ev)
		s.inflight = nil
		t.observe(FactCommitted{Territory: t.cfg.ID, Subgraph: p.sg, LSN: w.lsn, UUID: w.req.ID, Epoch: p.epoch, Type: ev.Type, Result: r})
		k.finish(s, w, r)
		k.pump(p, s)
		t.hookCommitted(p)
	case res.Err == ErrFenced:
		t.stepDown(p, stepDownWhy{reason: StepDownFenced})
	case res.Err == ErrLSNConflict || res.Err == ErrLSNGap:
		// Our view of the log is wrong: recover it from the log itself.
		t.claims.claim(p)
	default:
		// Timeout or unavailable: the append may have landed. Retrying the
		// same LSN with the same bytes is idempotent; after enough failures,
		// re-claim and learn the truth from the log.
		s.attempts++
		if s.attempts >= t.cfg.AppendAttempts {
			t.claims.claim(p)
			return
		}
		t.after(scoped(k.id, writeAppendRetry, p), s.attempts)
	}
}
