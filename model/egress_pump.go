package model

import "strconv"

// The egress leader's pump: one step in flight at a time, round robin over
// the subgraphs; a full round with nothing new waits for the next tick.

// FactEgressLeader: an egress node started (Leader) or stopped leading.
type FactEgressLeader struct {
	Egress     HostID
	Leader     bool
	Epoch      uint64
	TailOffset uint64
}

// FactEgressCursor: an egress leader persisted sg's cursor: every entry of sg
// up to LSN is in the egress stream. Tail is sg's committed tail when the
// egress read the batch (the egress lag in events is Tail - LSN).
type FactEgressCursor struct {
	Egress   HostID
	Subgraph SubgraphID
	LSN      uint64
	Tail     uint64
}

func (FactEgressLeader) isFact() {}
func (FactEgressCursor) isFact() {}

func (e *Egress) pump() {
	if e.busy || e.phase != egPumping {
		return
	}
	if e.batch != nil {
		e.publishNext() // a batch interrupted by a failed append or cursor write
		return
	}
	if e.idle >= int(e.cfg.Subgraphs) {
		e.idle = 0 // a full round found nothing new: the tick starts the next
		return
	}
	sg := e.next
	e.next = SubgraphID((uint32(sg) + 1) % e.cfg.Subgraphs)
	s := &e.subs[sg]
	from := s.cursor + 1
	if !s.published {
		from = s.fold.AppliedLSN + 1
	}
	e.busy, e.batchSg = true, sg
	e.logCall(egTagRead, LogRequest{Kind: LogRead, Stream: uint32(sg), FromLSN: from, MaxEntries: e.cfg.Batch})
}

func (e *Egress) onLog(tag uint8, res LogResult) {
	ok := res.Outcome == OutcomeOK
	switch tag {
	case egTagOpen:
		e.busy = false
		if ok {
			e.tail = res.Resp.TailLSN
			e.phase = egCursors
			e.resume()
		} else if res.Err == ErrFenced {
			e.restart() // a newer leader opened the stream: take a newer epoch, or lose the key
		}
	case egTagRead:
		e.busy = false
		if !ok {
			e.pump()
			return
		}
		e.onRead(res.Resp.Entries, res.Resp.TailLSN)
	case egTagAppend:
		e.busy = false
		switch {
		case ok:
			e.tail = res.Resp.LSN
			e.sent = true
			e.publishNext()
		case res.Outcome == OutcomeTimeout || res.Err == ErrUnavailable:
			// Maybe appended: the retry at the same offset with the same
			// data is idempotent. The tick retries.
		default:
			e.restart() // fenced, or the stream is not where we think it is
		}
	}
}

// onRead handles the entries of a subgraph read from its cursor.
func (e *Egress) onRead(entries []LogEntry, tail uint64) {
	sg := e.batchSg
	s := &e.subs[sg]
	if len(entries) == 0 {
		e.idle++
		e.pump()
		return
	}
	e.idle = 0
	if !s.published {
		for i := range entries {
			ev, err := DecodeEvent(entries[i].Data)
			if err != nil || ev.LSN != s.fold.AppliedLSN+1 {
				e.pump() // not an entry of this log: skip the subgraph this round
				return
			}
			s.fold.Apply(&ev)
			if s.fold.HasSupernode() {
				// From now on the whole log of sg is published, from LSN 1.
				*s = egressSub{published: true}
				break
			}
		}
		e.pump()
		return
	}
	tail = max(tail, entries[len(entries)-1].LSN)
	e.batch, e.record, e.sent, e.batchTail = entries, EncodeEgressRecordTail(entries, tail), false, tail
	e.publishNext()
}

// publishNext appends the batch as one record at the stream's tail; once it
// is acknowledged, it persists the cursor.
func (e *Egress) publishNext() {
	e.busy = true
	if !e.sent {
		e.logCall(egTagAppend, LogRequest{Kind: LogAppend, Stream: EgressStream, Epoch: e.epoch, LSN: e.tail + 1, Data: e.record})
		return
	}
	last := e.batch[len(e.batch)-1].LSN
	e.coord(egTagCursorPut, CoordRequest{Kind: CoordTxn, Compares: []Compare{{Key: EgressLeaderKey, ModRevision: e.leaderRev}},
		Then: []TxnOp{{Kind: TxnPut, Key: EgressCursorKey(e.batchSg), Value: []byte(strconv.FormatUint(last, 10))}}})
}

// restart begins the takeover again under a new epoch, if still the leader.
func (e *Egress) restart() {
	clear(e.calls)
	e.leaseBusy = false
	e.phase, e.busy, e.batch, e.record, e.subs = egEpoch, false, nil, nil, nil
	e.resume()
}
