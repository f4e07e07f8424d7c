package logfence

import (
	"fmt"

	"territory/model"
)

// startAttach makes this process the writer of the stream at c.epoch: take
// the exclusive producer, write the marker, fold up to it, check the fold
// admits the marker. The current tenure, if any, ends first.
func (w *Writer) startAttach(c *command, k Kind) {
	w.dropTenure()
	if w.seen > c.epoch {
		w.attached(c, fenced, w.known, nil) // epochs only rise: no need to ask
		return
	}
	w.nextProd++
	w.op = &attachOp{c: c, kind: k, epoch: c.epoch, prod: w.nextProd, ph: phCreate}
	w.emit(CreateProducer{Prod: w.op.prod, Req: c.req})
}

// dropTenure ends this process's tenure, if any. Closing the producer fails
// its pending sends; their waiters re-validate through the log.
func (w *Writer) dropTenure() {
	if w.t == nil {
		return
	}
	w.emit(CloseProducer{Prod: w.t.prod})
	if len(w.t.pend) > 0 {
		w.dropped = append(w.dropped, w.t)
	}
	w.t = nil
}

// finish ends the attach in progress and serves the requests it held up.
func (w *Writer) finish(res outcome, tail uint64, err error) {
	op := w.op
	w.op = nil
	if res != admitted && op.ph >= phMarker {
		w.emit(CloseProducer{Prod: op.prod})
	}
	w.attached(op.c, res, tail, err)
	w.drain()
}

// attached continues the request that needed the attach.
func (w *Writer) attached(c *command, res outcome, tail uint64, err error) {
	serr := model.ErrNone
	switch res {
	case fenced:
		serr = model.ErrFenced
	case unavailable:
		serr = model.ErrUnavailable
	}
	switch c.kind {
	case cmdOpen:
		if res == failed {
			w.unknown(c, fmt.Errorf("open stream %d epoch %d: %w", w.stream, c.epoch, err))
			return
		}
		w.reply(c, model.LogResponse{TailLSN: tail}, serr)
	case cmdAppend:
		switch res {
		case admitted:
			w.handleAppend(c)
		case failed:
			w.unknown(c, fmt.Errorf("append stream %d lsn %d epoch %d: attach: %w", w.stream, c.lsn, c.epoch, err))
		default:
			w.reply(c, model.LogResponse{LSN: c.lsn, TailLSN: tail}, serr)
		}
	case cmdResolve:
		switch res {
		case admitted:
			w.decide(c, tail, false)
		case fenced:
			w.decide(c, tail, true)
		case unavailable:
			// The producer is taken and we could not tell: unknown.
			w.unknown(c, fmt.Errorf("append stream %d lsn %d epoch %d: send failed (%v), then: re-attach: %v", w.stream, c.lsn, c.epoch, c.sendErr, model.ErrUnavailable))
		default:
			w.unknown(c, fmt.Errorf("append stream %d lsn %d epoch %d: send failed (%v), then: re-attach: %w", w.stream, c.lsn, c.epoch, c.sendErr, err))
		}
	}
}

func (w *Writer) current(ph phase, prod uint64) *attachOp {
	if w.op == nil || w.op.ph != ph || (prod != 0 && w.op.prod != prod) {
		return nil
	}
	return w.op
}

func (w *Writer) onProducer(in ProducerCreated) {
	op := w.current(phCreate, in.Prod)
	if op == nil {
		if in.Err == nil && !in.Busy && !in.GaveUp {
			w.emit(CloseProducer{Prod: in.Prod}) // nobody wants it any more
		}
		return
	}
	switch {
	case in.GaveUp:
		if op.lastBusy {
			w.finish(unavailable, w.known, nil)
		} else {
			w.finish(failed, 0, fmt.Errorf("create producer: %v (last: %v)", in.Err, op.lastErr))
		}
	case in.Err == nil && !in.Busy:
		op.ph = phMarker
		w.emit(SendMarker{Prod: op.prod, Req: op.c.req, Rec: Record{Kind: op.kind, Stream: w.stream, Epoch: op.epoch}})
	case in.Busy:
		// Another writer holds the producer. Check the log first: if it
		// already shows a higher epoch (or, for an attach, not ours), the
		// answer is fenced and the holder is left alone; otherwise unload
		// the topic, which disconnects the holder for good.
		op.lastBusy, op.lastErr = true, in.Err
		if !op.checked {
			op.ph = phCheck
			w.emit(FoldToEnd{Req: op.c.req})
		} else {
			op.ph = phUnload
			w.emit(Unload{Req: op.c.req})
		}
	default:
		op.lastBusy, op.lastErr = false, in.Err
		w.retry(op, true)
	}
}

// retry attaches again, at once or after a backoff.
func (w *Writer) retry(op *attachOp, backoff bool) {
	op.attempt++
	op.ph = phCreate
	var d int64
	if backoff {
		d = min(int64(op.attempt)*10, 200)
	}
	w.emit(CreateProducer{Prod: op.prod, Req: op.c.req, DelayMs: d})
}

func (w *Writer) onUnloaded(in Unloaded) {
	op := w.current(phUnload, 0)
	if op == nil {
		return
	}
	if in.Err != nil {
		op.lastBusy, op.lastErr = false, fmt.Errorf("unload to take over the producer: %w", in.Err)
		w.retry(op, true)
		return
	}
	// The holder's client retries at once and then after a backoff: attach
	// again right away to get in first.
	w.retry(op, op.attempt >= 50)
}

func (w *Writer) onMarker(in MarkerSent) {
	op := w.current(phMarker, in.Prod)
	if op == nil {
		return
	}
	switch {
	case in.Err != nil:
		// The marker may have landed: an open may have fenced.
		w.finish(failed, 0, fmt.Errorf("write %s marker: %w", op.kind, in.Err))
	case in.At.Entry < 0:
		w.finish(failed, 0, fmt.Errorf("write %s marker: %w", op.kind, ErrDeduplicated))
	default:
		gen := GenAfter(in.LastSeq)
		if gen > MaxGen {
			w.finish(failed, 0, fmt.Errorf("writer generation %d exhausted the sequence id space", gen))
			return
		}
		op.marker, op.gen = in.At, gen
		op.ph = phFold
		w.emit(FoldUpTo{Req: op.c.req, Target: in.At})
	}
}

func (w *Writer) onFolded(in Folded) {
	if w.op == nil {
		return
	}
	op := w.op
	switch op.ph {
	case phCheck:
		if in.Err != nil {
			w.finish(failed, 0, fmt.Errorf("producer taken, and checking the log failed: %w", in.Err))
			return
		}
		w.Note(in.St)
		if !in.St.Admits(op.kind, op.epoch) {
			w.finish(fenced, in.St.Tail, nil)
			return
		}
		op.checked = true
		op.ph = phUnload
		w.emit(Unload{Req: op.c.req})
	case phFold:
		if in.Err != nil {
			w.finish(failed, 0, fmt.Errorf("fold up to %s marker at %v: %w", op.kind, op.marker, in.Err))
			return
		}
		before := in.St
		w.Note(before)
		if !before.Admits(op.kind, op.epoch) {
			// Our marker is below a higher open (or an attach at an epoch
			// that is not the current one): every reader ignores it; give
			// the producer back untouched.
			w.finish(fenced, before.Tail, nil)
			return
		}
		after := before
		after.Apply(Record{Kind: op.kind, Stream: w.stream, Epoch: op.epoch})
		w.t = &tenure{prod: op.prod, epoch: op.epoch, gen: op.gen, marker: op.marker, tail: after.Tail, pendTail: after.Tail}
		w.Note(after)
		w.emit(Indexed{C: Ckpt{At: op.marker, St: after}, Marker: true})
		w.finish(admitted, after.Tail, nil)
	}
}
