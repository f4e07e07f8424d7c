package model

import "strconv"

// Liveness: the territory keeps a lease-backed key alive/<id> in the
// coordination store (the control plane's failure detector), re-reads the
// routes to adopt or drop subgraphs, logs heartbeats for idle subgraphs, and
// announces recoveries until the control plane's TerritoryRecovered event is
// committed.

// AlivePrefix holds one lease-backed key per live territory.
const AlivePrefix = "alive/"

// AliveKey is a territory's liveness key.
func AliveKey(id HostID) string { return AlivePrefix + strconv.FormatUint(uint64(id), 10) }

// ParseAliveKey returns the territory of a liveness key.
func ParseAliveKey(key string) (HostID, error) {
	rest, ok := cutPrefix(key, AlivePrefix)
	if !ok {
		return 0, errorf("alive key %q: missing prefix", key)
	}
	n, err := strconv.ParseUint(rest, 10, 32)
	if err != nil || n == 0 {
		return 0, errorf("alive key %q: bad territory id", key)
	}
	return HostID(n), nil
}

func (t *Territory) grantLease() {
	t.leaseBusy = true
	t.coord(call{kind: callLeaseGrant}, CoordRequest{Kind: CoordLeaseGrant, TTLMs: t.cfg.LeaseTTLMs})
}

func (t *Territory) onLease(kind callKind, res CoordResult) {
	t.leaseBusy = false
	switch kind {
	case callLeaseGrant:
		if res.Outcome != OutcomeOK {
			return // the next tick grants again
		}
		t.lease = res.Resp.Lease
		t.leaseBusy = true
		t.coord(call{kind: callAlivePut}, CoordRequest{Kind: CoordTxn,
			Then: []TxnOp{{Kind: TxnPut, Key: AliveKey(t.cfg.ID), Value: []byte("alive"), Lease: t.lease}}})
	case callAlivePut:
		if res.Outcome != OutcomeOK {
			// The session expired during the transaction, or the put failed or
			// timed out: grant a new lease and put the key again on the next
			// tick, or the control plane would think us lost for good.
			t.lease = 0
		}
	case callKeepAlive:
		if res.Outcome == OutcomeFailed && res.Err == ErrLeaseExpired {
			t.lease = 0
		}
	}
}

// tick runs the periodic duties. Periods are counted in ticks of the
// territory's timer, not read from its wall clock: a clock jump must not make
// a duty run early or never.
func (t *Territory) tick() {
	t.ticks++
	t.afterMs(timerTick, 0, 0, t.cfg.TickMs)
	every := func(ms int64) bool { return t.ticks%max(1, ms/t.cfg.TickMs) == 0 }
	if !t.leaseBusy {
		switch {
		case t.lease == 0:
			t.grantLease()
		case every(t.cfg.KeepAliveMs):
			t.leaseBusy = true
			t.coord(call{kind: callKeepAlive}, CoordRequest{Kind: CoordLeaseKeepAlive, Lease: t.lease})
		}
	}
	if t.booted && !t.pollBusy && every(t.cfg.RoutePollMs) {
		t.pollBusy = true
		t.coord(call{kind: callRoutePoll}, CoordRequest{Kind: CoordRange, Key: RoutesPrefix})
	}
	for _, sg := range t.owned {
		p := t.subgraphs[sg]
		if p.phase != phaseOperational {
			continue
		}
		p.idleTicks++
		if p.idleTicks*t.cfg.TickMs >= t.cfg.HeartbeatMs && p.inflight == nil && len(p.queue) == 0 {
			// The epoch is unique to this claim, so a restarted territory's
			// heartbeats never collide with its predecessor's in the dedup table.
			p.hbSeq++
			t.enqueue(p, &write{req: Request{ID: EventUUID{Hi: uuidHeartbeat | uint64(p.sg), Lo: p.epoch<<32 | p.hbSeq&(1<<32-1)}},
				internal: EvHeartbeat, tsMs: t.nowMs})
		}
		if p.recoveryDue {
			p.recoveryWaitTks++
			if p.recoveryWaitTks*t.cfg.TickMs >= t.cfg.RecoveryMs {
				p.recoveryWaitTks = 0
				t.announceRecovery(p)
			}
		}
	}
}

// announceRecovery tells the control plane that this territory recovered the
// subgraph at its epoch. It is repeated until the recovery event commits:
// messages may be lost, and the event's uuid makes repeats harmless.
func (t *Territory) announceRecovery(p *primary) {
	if t.cfg.Manager == 0 {
		p.recoveryDue = false
		return
	}
	t.out.Add(Send{To: t.cfg.Manager, Msg: &Message{Recovered: &Recovered{Territory: t.cfg.ID, Subgraph: p.sg, Epoch: p.recoveryEpoch}}})
}

// onCommitRecovery appends the control plane's TerritoryRecovered event. Its
// handler (the fold) applies decay for the downtime: the event's timestamp
// minus the last heartbeat before the recovery, both carried in the logged
// event, so a replay decays alike (and writes that reached the new primary
// before the event was logged do not shorten the downtime).
func (t *Territory) onCommitRecovery(m *CommitRecovery) {
	p := t.subgraphs[m.Subgraph]
	if p == nil || p.phase != phaseOperational || p.recoveryEpoch != m.Epoch || !p.recoveryDue {
		return // stale: another recovery announces itself
	}
	id := RecoveryUUID(p.sg, p.recoveryEpoch)
	if _, done := p.state.Deduped(id); done || p.byUUID[id] != nil {
		return
	}
	if len(p.queue) >= t.cfg.QueueLimit {
		return // the next announcement tries again
	}
	t.enqueue(p, &write{req: Request{ID: id}, internal: EvTerritoryRecovered, tsMs: m.TimestampMs, value: p.recoveryBaseMs})
}
