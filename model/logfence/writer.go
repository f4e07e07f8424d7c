package logfence

import (
	"errors"
	"fmt"

	"territory/model"
)

// RecentEntries: sums of this many recent entries answer retried appends
// without a read.
const RecentEntries = 512

var (
	// ErrOrphan: a send was acknowledged after an earlier send of the same
	// tenure failed; it sits behind a hole and is not an entry.
	ErrOrphan = errors.New("acknowledged behind a failed send")
	// ErrDeduplicated: the broker dropped the writer's marker as a duplicate.
	ErrDeduplicated = errors.New("marker dropped as a duplicate")
)

type cmdKind uint8

const (
	cmdOpen    cmdKind = iota
	cmdAppend          // LogAppend
	cmdResolve         // an append whose send failed: answer it from the log
)

// command is one request being answered.
type command struct {
	kind       cmdKind
	req        uint64
	epoch, lsn uint64
	sum        Sum
	data       []byte
	attempts   int    // attaches tried for an append
	failedProd uint64 // resolve: the tenure whose send failed
	sendErr    error  // resolve: why
	tail       uint64 // compare: the tail to answer with
	fenced     bool   // compare: a conflict means fenced
}

// pending is one data message handed to a producer.
type pending struct {
	lsn     uint64
	sum     Sum
	waiters []*command // the append and identical retries that joined it
}

// tenure is one producer tenure of this writer.
type tenure struct {
	prod, epoch, gen uint64
	marker           Pos
	tail             uint64 // committed: acknowledged in order within this tenure
	pendTail         uint64 // highest LSN handed to the producer
	pend             []*pending
	failed           bool // a send failed (or landed behind a hole): the tenure is over
}

type outcome uint8

const (
	admitted outcome = iota
	fenced
	unavailable
	failed
)

type phase uint8

const (
	phCreate phase = iota
	phCheck        // the producer is taken: folding to the end before taking it over
	phUnload
	phMarker
	phFold // folding up to our marker
)

// attachOp is the attach in progress (one at a time per stream).
type attachOp struct {
	c        *command
	kind     Kind
	epoch    uint64
	prod     uint64
	ph       phase
	attempt  int
	checked  bool
	lastBusy bool
	lastErr  error
	marker   Pos
	gen      uint64
}

// Writer is one process's writer state for one stream: the sans-IO core of
// LogOpen and LogAppend on a topic. Requests are numbered by the driver
// (Req); every request gets exactly one Reply.
type Writer struct {
	stream   uint32
	seen     uint64 // highest epoch seen opened (folds only ever raise it)
	known    uint64 // highest committed LSN known
	t        *tenure
	dropped  []*tenure // closed tenures whose sends are still in flight
	nextProd uint64
	op       *attachOp
	queue    []*command // waiting for op
	reading  map[uint64]*command
	recent   map[uint64]Sum // LSN -> sum of committed data
	out      []Effect
}

// NewWriter returns the writer state of stream.
func NewWriter(stream uint32) *Writer {
	return &Writer{stream: stream, reading: map[uint64]*command{}, recent: map[uint64]Sum{}}
}

// Note records what a fold (a read, a checkpoint) learned.
func (w *Writer) Note(f Fold) {
	w.seen = max(w.seen, f.MaxOpen)
	w.known = max(w.known, f.Tail)
}

// Seen returns the highest epoch seen opened and the highest committed LSN known.
func (w *Writer) Seen() (maxOpen, tail uint64) { return w.seen, w.known }

// Tenure returns the producer handle and generation of the current
// tenure (ok false: none, or it failed).
func (w *Writer) Tenure() (prod, gen uint64, ok bool) {
	if w.t == nil || w.t.failed {
		return 0, 0, false
	}
	return w.t.prod, w.t.gen, true
}

// Producers is the highest producer handle used so far (handles are 1, 2, ...).
func (w *Writer) Producers() uint64 { return w.nextProd }

// Open starts LogOpen(epoch) as request req.
func (w *Writer) Open(req, epoch uint64) []Effect {
	w.submit(&command{kind: cmdOpen, req: req, epoch: epoch})
	return w.flush()
}

// Append starts LogAppend(epoch, lsn, data) as request req; sum identifies data.
func (w *Writer) Append(req, epoch, lsn uint64, data []byte, sum Sum) []Effect {
	c := &command{kind: cmdAppend, req: req, epoch: epoch, lsn: lsn, data: data, sum: sum}
	if lsn == 0 || lsn > MaxLSN {
		w.unknown(c, fmt.Errorf("lsn %d out of range [1, %d]", lsn, uint64(MaxLSN)))
	} else {
		w.submit(c)
	}
	return w.flush()
}

// Step feeds the answer to an effect.
func (w *Writer) Step(in any) []Effect {
	switch in := in.(type) {
	case ProducerCreated:
		w.onProducer(in)
	case Unloaded:
		w.onUnloaded(in)
	case Folded:
		w.onFolded(in)
	case MarkerSent:
		w.onMarker(in)
	case DataSent:
		w.onDataSent(in)
	case SumRead:
		w.onSumRead(in)
	case ProducerLost:
		if t := w.tenureOf(in.Prod); t != nil {
			t.failed = true
		}
	default:
		panic(fmt.Sprintf("logfence: unknown input %T", in))
	}
	return w.flush()
}

func (w *Writer) flush() []Effect {
	out := w.out
	w.out = nil
	return out
}

func (w *Writer) emit(e Effect) { w.out = append(w.out, e) }

func (w *Writer) reply(c *command, resp model.LogResponse, err model.ServiceErr) {
	w.emit(Reply{Req: c.req, Resp: resp, Err: err})
}

func (w *Writer) unknown(c *command, err error) { w.emit(Reply{Req: c.req, Unknown: err}) }

func (w *Writer) submit(c *command) {
	if w.op != nil {
		w.queue = append(w.queue, c)
		return
	}
	w.handle(c)
	w.drain()
}

func (w *Writer) handle(c *command) {
	switch c.kind {
	case cmdOpen:
		w.startAttach(c, KindOpen)
	case cmdAppend:
		w.handleAppend(c)
	case cmdResolve:
		w.handleResolve(c)
	}
}

func (w *Writer) drain() {
	for w.op == nil && len(w.queue) > 0 {
		c := w.queue[0]
		w.queue = w.queue[1:]
		w.handle(c)
	}
}

// ---- append ----

func (w *Writer) handleAppend(c *command) {
	L, E := c.lsn, c.epoch
	if w.seen > E || (w.t != nil && w.t.epoch > E) {
		w.reply(c, model.LogResponse{LSN: L, TailLSN: w.known}, model.ErrFenced)
		return
	}
	t := w.t
	if t == nil || t.epoch != E || t.failed {
		// No healthy tenure at this epoch here (first append of an epoch-0
		// writer, a restarted process, or a failed tenure): attach, which
		// succeeds only if E is the stream's current epoch.
		if c.attempts == 3 {
			w.unknown(c, errors.New("writer keeps failing"))
			return
		}
		c.attempts++
		w.startAttach(c, KindAttach)
		return
	}
	switch {
	case L <= t.tail:
		w.compare(c, t.tail, false)
	case L <= t.pendTail:
		p := t.pending(L)
		if p == nil || p.sum != c.sum {
			w.reply(c, model.LogResponse{LSN: L, TailLSN: t.tail}, model.ErrLSNConflict)
			return
		}
		p.waiters = append(p.waiters, c) // an identical retry shares the send's fate
	case L > t.pendTail+1:
		w.reply(c, model.LogResponse{LSN: L, TailLSN: t.tail}, model.ErrLSNGap)
	default:
		t.pend = append(t.pend, &pending{lsn: L, sum: c.sum, waiters: []*command{c}})
		t.pendTail = L
		w.emit(SendData{Prod: t.prod, Seq: SeqID(t.gen, L), Rec: Record{Kind: KindData, Stream: w.stream, Epoch: E, LSN: L}, Data: c.data})
	}
}

func (t *tenure) pending(lsn uint64) *pending {
	for _, p := range t.pend {
		if p.lsn == lsn {
			return p
		}
	}
	return nil
}

// compare answers an append of a committed LSN: OK if it holds the same data.
func (w *Writer) compare(c *command, tail uint64, fenced bool) {
	c.tail, c.fenced = tail, fenced
	if have, ok := w.recent[c.lsn]; ok {
		w.compared(c, have)
		return
	}
	w.reading[c.req] = c
	w.emit(ReadSum{Req: c.req, LSN: c.lsn})
}

func (w *Writer) compared(c *command, have Sum) {
	serr := model.ErrNone
	if have != c.sum {
		serr = model.ErrLSNConflict
		if c.fenced {
			// A newer epoch's entry holds L: the append lost to the newer
			// writer. Fenced says so, where a conflict would send the writer
			// to re-read a log it no longer owns.
			serr = model.ErrFenced
		}
	}
	w.reply(c, model.LogResponse{LSN: c.lsn, TailLSN: c.tail}, serr)
}

func (w *Writer) onSumRead(in SumRead) {
	c := w.reading[in.Req]
	if c == nil || c.lsn != in.LSN {
		return
	}
	delete(w.reading, in.Req)
	switch {
	case in.Err != nil:
		w.unknown(c, fmt.Errorf("read committed lsn %d to compare: %w", c.lsn, in.Err))
	case !in.Found:
		w.unknown(c, fmt.Errorf("committed lsn %d not found by a read", c.lsn))
	default:
		w.compared(c, in.Sum)
	}
}

func (w *Writer) onDataSent(in DataSent) {
	t := w.tenureOf(in.Prod)
	if t == nil {
		return
	}
	i := -1
	for j, p := range t.pend {
		if p.lsn == in.LSN {
			i = j
			break
		}
	}
	if i < 0 {
		return // not a send in flight: a duplicate answer
	}
	p := t.pend[i]
	t.pend = append(t.pend[:i:i], t.pend[i+1:]...)
	if in.Err == nil && !t.failed && p.lsn == t.tail+1 {
		t.tail = p.lsn
		w.known = max(w.known, t.tail)
		w.recent[p.lsn] = p.sum
		delete(w.recent, p.lsn-min(p.lsn, RecentEntries))
		if in.At.Entry >= 0 {
			w.emit(Indexed{C: Ckpt{At: in.At, St: Fold{MaxOpen: t.epoch, Tail: t.tail}}})
		}
		for _, c := range p.waiters {
			w.reply(c, model.LogResponse{LSN: p.lsn, TailLSN: t.tail}, model.ErrNone)
		}
	} else {
		err := in.Err
		if err == nil {
			err = ErrOrphan
		}
		t.failed = true
		for _, c := range p.waiters {
			w.submit(&command{kind: cmdResolve, req: c.req, epoch: c.epoch, lsn: c.lsn, sum: c.sum, failedProd: t.prod, sendErr: err})
		}
	}
	if t != w.t && len(t.pend) == 0 {
		for j, d := range w.dropped {
			if d == t {
				w.dropped = append(w.dropped[:j:j], w.dropped[j+1:]...)
				break
			}
		}
	}
}

func (w *Writer) tenureOf(prod uint64) *tenure {
	if w.t != nil && w.t.prod == prod {
		return w.t
	}
	for _, t := range w.dropped {
		if t.prod == prod {
			return t
		}
	}
	return nil
}

// handleResolve answers an append whose send failed from the log, after
// re-attaching (which ends the failed tenure for good, so nothing of it can
// land later).
func (w *Writer) handleResolve(c *command) {
	if t := w.t; t != nil && t.prod != c.failedProd && !t.failed {
		// Someone attached since: its fold covered our send.
		w.decide(c, t.tail, t.epoch != c.epoch)
		return
	}
	w.startAttach(c, KindAttach)
}

func (w *Writer) decide(c *command, tail uint64, isFenced bool) {
	switch {
	case c.lsn <= tail:
		w.compare(c, tail, isFenced)
	case isFenced:
		w.reply(c, model.LogResponse{LSN: c.lsn, TailLSN: tail}, model.ErrFenced)
	default:
		// The tenure that sent it is over and the fold past its end does
		// not hold it: it was not written and never will be.
		w.reply(c, model.LogResponse{LSN: c.lsn, TailLSN: tail}, model.ErrUnavailable)
	}
}
