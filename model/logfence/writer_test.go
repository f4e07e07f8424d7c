package logfence

import (
	"errors"
	"testing"

	"territory/model"
)

// fakeTopic is a minimal in-memory topic for driving Writers in tests: one
// exclusive producer at a time, dedup by sequence id, unload.
type fakeTopic struct {
	msgs    []fakeMsg
	holder  *fakeProd
	lastSeq int64
	dropAck bool // the next data send lands but its answer is an error
	lose    bool // the next data send is lost (not persisted, error)
}

type fakeMsg struct {
	rec  Record
	data []byte
}

type fakeProd struct {
	w      *harness
	id     uint64
	closed bool
}

func sumOf(b []byte) Sum {
	var s Sum
	copy(s[:], b)
	return s
}

// harness runs one Writer's effects against a fakeTopic, synchronously.
type harness struct {
	t       *testing.T
	top     *fakeTopic
	w       *Writer
	prods   map[uint64]*fakeProd
	replies map[uint64]Reply
	next    uint64
	held    []DataSent // data answers not delivered yet
	hold    bool
}

func newHarness(t *testing.T, top *fakeTopic) *harness {
	return &harness{t: t, top: top, w: NewWriter(1), prods: map[uint64]*fakeProd{}, replies: map[uint64]Reply{}}
}

func (h *harness) run(effs []Effect) {
	for len(effs) > 0 {
		e := effs[0]
		effs = effs[1:]
		effs = append(effs, h.exec(e)...)
	}
}

func (h *harness) fold(upTo int) Fold {
	var f Fold
	for _, m := range h.top.msgs[:upTo] {
		f.Apply(m.rec)
	}
	return f
}

func (h *harness) exec(e Effect) []Effect {
	top := h.top
	switch e := e.(type) {
	case Reply:
		h.replies[e.Req] = e
	case Indexed:
	case CreateProducer:
		if top.holder != nil && !top.holder.closed {
			return h.w.Step(ProducerCreated{Prod: e.Prod, Busy: true, Err: errors.New("busy")})
		}
		p := &fakeProd{w: h, id: e.Prod}
		h.prods[e.Prod] = p
		top.holder = p
		return h.w.Step(ProducerCreated{Prod: e.Prod})
	case CloseProducer:
		if p := h.prods[e.Prod]; p != nil {
			p.closed = true
		}
	case Unload:
		if top.holder != nil {
			top.holder.closed = true
		}
		return h.w.Step(Unloaded{})
	case FoldToEnd:
		return h.w.Step(Folded{St: h.fold(len(top.msgs))})
	case FoldUpTo:
		return h.w.Step(Folded{St: h.fold(int(e.Target.Entry))})
	case SendMarker:
		p := h.prods[e.Prod]
		if p == nil || p.closed {
			return h.w.Step(MarkerSent{Prod: e.Prod, Err: errors.New("closed")})
		}
		top.lastSeq++
		top.msgs = append(top.msgs, fakeMsg{rec: e.Rec})
		return h.w.Step(MarkerSent{Prod: e.Prod, At: Pos{Entry: int64(len(top.msgs) - 1)}, LastSeq: top.lastSeq})
	case SendData:
		p := h.prods[e.Prod]
		in := DataSent{Prod: e.Prod, LSN: e.Rec.LSN}
		switch {
		case p == nil || p.closed:
			in.Err = errors.New("producer closed")
		case top.lose:
			top.lose = false
			in.Err = errors.New("lost")
		case e.Seq <= top.lastSeq:
			in.At = Pos{Entry: -1} // deduplicated
		default:
			top.lastSeq = e.Seq
			top.msgs = append(top.msgs, fakeMsg{rec: e.Rec, data: e.Data})
			in.At = Pos{Entry: int64(len(top.msgs) - 1)}
			if top.dropAck {
				top.dropAck = false
				in.Err, in.At = errors.New("ack lost"), Pos{}
			}
		}
		if h.hold {
			h.held = append(h.held, in)
			return nil
		}
		return h.w.Step(in)
	case ReadSum:
		var f Fold
		for _, m := range top.msgs {
			if f.Apply(m.rec) && m.rec.LSN == e.LSN {
				return h.w.Step(SumRead{Req: e.Req, LSN: e.LSN, Sum: sumOf(m.data), Found: true})
			}
		}
		return h.w.Step(SumRead{Req: e.Req, LSN: e.LSN})
	default:
		h.t.Fatalf("unknown effect %T", e)
	}
	return nil
}

func (h *harness) release() {
	held := h.held
	h.held, h.hold = nil, false
	for _, in := range held {
		h.run(h.w.Step(in))
	}
}

func (h *harness) open(epoch uint64) Reply {
	h.next++
	id := h.next
	h.run(h.w.Open(id, epoch))
	return h.must(id)
}

func (h *harness) appendAsync(epoch, lsn uint64, data string) uint64 {
	h.next++
	h.run(h.w.Append(h.next, epoch, lsn, []byte(data), sumOf([]byte(data))))
	return h.next
}

func (h *harness) append(epoch, lsn uint64, data string) Reply {
	return h.must(h.appendAsync(epoch, lsn, data))
}

func (h *harness) must(id uint64) Reply {
	h.t.Helper()
	r, ok := h.replies[id]
	if !ok {
		h.t.Fatalf("request %d got no reply", id)
	}
	return r
}

func entries(top *fakeTopic) []string {
	var f Fold
	var out []string
	for _, m := range top.msgs {
		if f.Apply(m.rec) {
			out = append(out, string(m.data))
		}
	}
	return out
}

func want(t *testing.T, r Reply, err model.ServiceErr, tail uint64) {
	t.Helper()
	if r.Unknown != nil || r.Err != err || r.Resp.TailLSN != tail {
		t.Fatalf("reply %+v, want %v with tail %d", r, err, tail)
	}
}

func TestWriterOpenAppendAndRetries(t *testing.T) {
	top := &fakeTopic{}
	h := newHarness(t, top)
	want(t, h.open(1), model.ErrNone, 0)
	for i, d := range []string{"a", "b", "c"} {
		want(t, h.append(1, uint64(i+1), d), model.ErrNone, uint64(i+1))
	}
	want(t, h.append(1, 2, "b"), model.ErrNone, 3)        // idempotent retry
	want(t, h.append(1, 2, "x"), model.ErrLSNConflict, 3) // other data
	want(t, h.append(1, 9, "z"), model.ErrLSNGap, 3)      // beyond the tail
	if r := h.append(1, 0, "z"); r.Unknown == nil {       // out of range
		t.Fatalf("lsn 0 answered %+v", r)
	}
	// Pipelined: a retry of an LSN in flight joins the send.
	h.hold = true
	a, b := h.appendAsync(1, 4, "d"), h.appendAsync(1, 4, "d")
	c := h.appendAsync(1, 4, "D")
	want(t, h.must(c), model.ErrLSNConflict, 3)
	h.release()
	want(t, h.must(a), model.ErrNone, 4)
	want(t, h.must(b), model.ErrNone, 4)
	// A send that landed but whose answer was lost is resolved from the log.
	top.dropAck = true
	want(t, h.append(1, 5, "e"), model.ErrNone, 5)
	if got := entries(top); len(got) != 5 || got[4] != "e" {
		t.Fatalf("entries %v", got)
	}
	// A lost send is definitely not written (unavailable) and the LSN is free.
	top.lose = true
	want(t, h.append(1, 6, "f"), model.ErrUnavailable, 5)
	want(t, h.append(1, 6, "f"), model.ErrNone, 6)
}

func TestWriterOrphanBehindHole(t *testing.T) {
	top := &fakeTopic{}
	h := newHarness(t, top)
	h.open(1)
	h.append(1, 1, "a")
	h.hold = true
	top.lose = true
	x, y := h.appendAsync(1, 2, "b"), h.appendAsync(1, 3, "c") // 2 is lost, 3 lands behind the hole
	h.release()
	want(t, h.must(x), model.ErrUnavailable, 1)
	want(t, h.must(y), model.ErrUnavailable, 1)
	if got := entries(top); len(got) != 1 {
		t.Fatalf("the orphan became an entry: %v", got)
	}
	want(t, h.append(1, 2, "b"), model.ErrNone, 2)
	want(t, h.append(1, 3, "c"), model.ErrNone, 3) // not mistaken for the orphan's duplicate
	if got := entries(top); len(got) != 3 || got[2] != "c" {
		t.Fatalf("entries %v", got)
	}
}

// Two writers race through one topic: the newer open takes the producer
// over, the older writer's appends are fenced, and nothing it wrote after
// the newer open is an entry; every acknowledged append is in the fold.
func TestWriterTakeoverFencesTheOlder(t *testing.T) {
	top := &fakeTopic{}
	old, nw := newHarness(t, top), newHarness(t, top)
	want(t, old.open(1), model.ErrNone, 0)
	old.append(1, 1, "o1")
	old.hold = true
	inflight := old.appendAsync(1, 2, "o2") // persisted, answer not yet delivered
	want(t, nw.open(2), model.ErrNone, 2)   // its tail covers the landed o2
	old.release()
	want(t, old.must(inflight), model.ErrNone, 2) // landed before the open: OK
	r := old.append(1, 3, "o3")
	want(t, r, model.ErrFenced, 2)
	want(t, old.open(1), model.ErrFenced, 2)
	want(t, nw.append(2, 3, "n3"), model.ErrNone, 3)
	if got := entries(top); len(got) != 3 || got[2] != "n3" {
		t.Fatalf("entries %v", got)
	}
	// An older open arriving late: its marker lands, the fold ignores it,
	// and the newer writer keeps writing after re-attaching.
	late := newHarness(t, top)
	want(t, late.open(1), model.ErrFenced, 3)
	want(t, nw.append(2, 4, "n4"), model.ErrNone, 4)
	var f Fold
	for _, m := range top.msgs {
		f.Apply(m.rec)
		if m.rec.Kind == KindData && m.rec.Epoch == 1 && f.MaxOpen == 2 && m.rec.LSN > 2 {
			t.Fatalf("stale data after the newer open: %+v", m.rec)
		}
	}
	if f.MaxOpen != 2 || f.Tail != 4 {
		t.Fatalf("fold %+v", f)
	}
}

func TestWriterGivesUpWhenBusyPastDeadline(t *testing.T) {
	w := NewWriter(1)
	effs := w.Open(1, 1)
	cp, ok := effs[0].(CreateProducer)
	if !ok {
		t.Fatalf("first effect %T", effs[0])
	}
	effs = w.Step(ProducerCreated{Prod: cp.Prod, Busy: true, Err: errors.New("busy")})
	if _, ok := effs[0].(FoldToEnd); !ok {
		t.Fatalf("busy producer: %T, want a check of the log", effs[0])
	}
	effs = w.Step(Folded{St: Fold{MaxOpen: 0}})
	if _, ok := effs[0].(Unload); !ok {
		t.Fatalf("after the check: %T, want an unload", effs[0])
	}
	effs = w.Step(Unloaded{})
	effs = w.Step(ProducerCreated{Prod: effs[0].(CreateProducer).Prod, Busy: true})
	if _, ok := effs[0].(Unload); !ok {
		t.Fatalf("busy again after the check: %T, want an unload without a second check", effs[0])
	}
	effs = w.Step(Unloaded{})
	effs = w.Step(ProducerCreated{Prod: effs[0].(CreateProducer).Prod, GaveUp: true, Err: errors.New("deadline")})
	if r, ok := effs[0].(Reply); !ok || r.Err != model.ErrUnavailable {
		t.Fatalf("gave up while busy: %+v, want unavailable", effs)
	}
}
