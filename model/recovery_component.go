package model

// recoverer is the recovery component. After a takeover (a claim that
// replaced an earlier epoch, see claimer) the territory announces the
// recovery to the control plane until the control plane's TerritoryRecovered
// event is committed; the control plane answers with its clock, and the
// primary commits the event, whose handler decays every potential for the
// downtime (the event's timestamp minus the last heartbeat before the
// recovery, both carried in the event).
type recoverer struct {
	noHooks
	t    *Territory
	subs perSubgraph[recoveryState]
}

// recoveryState is a subgraph's recovery: none, or due under the epoch whose
// claim was the recovery (a re-claim by the same incarnation keeps a pending
// recovery under the epoch it began in).
type recoveryState struct {
	due       bool
	epoch     uint64 // the epoch whose claim was the recovery: the event's identity
	baseMs    int64  // the last heartbeat before the recovery: decay runs from it
	waitTicks int64
}

// The recoverer makes no calls and sets no timers: it runs on the host's tick.

func newRecoverer(t *Territory) *recoverer {
	r := &recoverer{t: t, subs: make(perSubgraph[recoveryState])}
	t.register(r)
	return r
}

func (r *recoverer) steppedDown(p *primary) { delete(r.subs, p.sg) }

// pending says whether the recovery still waits for its event; it notices an
// event committed meanwhile (by the write pipeline, or found by a replay).
func (r *recoverer) pending(p *primary, s *recoveryState) bool {
	if s.due {
		if _, done := p.state.Deduped(RecoveryUUID(p.sg, s.epoch)); done {
			s.due = false
		}
	}
	return s.due
}

func (r *recoverer) operational(p *primary, recovered bool) {
	s := r.subs.of(p)
	if recovered {
		// The downtime runs from the last heartbeat the log holds now, after
		// the replay and before anything new is logged.
		*s = recoveryState{due: true, epoch: p.epoch, baseMs: p.state.LastHeartbeatMs}
	}
	if r.pending(p, s) {
		s.waitTicks = 0
		r.announce(p, s)
	}
}

func (r *recoverer) tick(p *primary) {
	s := r.subs.of(p)
	if !r.pending(p, s) {
		return
	}
	s.waitTicks++
	if s.waitTicks*r.t.cfg.TickMs >= r.t.cfg.RecoveryMs {
		s.waitTicks = 0
		r.announce(p, s)
	}
}

// announce tells the control plane that this territory recovered the
// subgraph at its epoch. It is repeated until the recovery event commits:
// messages may be lost, and the event's uuid makes repeats harmless.
func (r *recoverer) announce(p *primary, s *recoveryState) {
	t := r.t
	if t.cfg.Manager == 0 {
		s.due = false
		return
	}
	t.out.Add(Send{To: t.cfg.Manager, Msg: &Message{Recovered: &Recovered{Territory: t.cfg.ID, Subgraph: p.sg, Epoch: s.epoch}}})
}

// message takes the control plane's CommitRecovery and queues the
// TerritoryRecovered event. A replay decays alike, and writes that reached
// the new primary before the event was logged do not shorten the downtime.
func (r *recoverer) message(_ HostID, m *Message) bool {
	if m.CommitRecovery == nil {
		return false
	}
	c := m.CommitRecovery
	p := r.t.subgraphs[c.Subgraph]
	if p == nil || p.phase != phaseOperational {
		return true // stale: another recovery announces itself
	}
	s := r.subs.of(p)
	if s.epoch != c.Epoch || !r.pending(p, s) {
		return true
	}
	// Queued unless already queued or the queue is full (the next
	// announcement tries again).
	r.t.writes.submit(p, &write{req: Request{ID: RecoveryUUID(p.sg, s.epoch)}, internal: EvTerritoryRecovered,
		tsMs: c.TimestampMs, body: RecoveryBody{LastHeartbeatMs: s.baseMs}})
	return true
}
