// Package replog is the simulator's replicated log: BookKeeper semantics
// (ensemble, write quorum, ack quorum, striping, fencing, last-add-confirmed)
// behind a broker, driven by the kernel's event queue.
//
// The broker is the linearization point of every request: Do decides
// fencing, LSN checks and acceptance at the instant it is called; bookie
// acknowledgements then arrive as kernel events after a bookie latency. The
// world adds network latency and client-side timeouts around Do.
//
// Completion callbacks: Do never calls done synchronously. Every done runs from
// a kernel event, exactly once:
//   - rejections (fenced, LSN conflict or gap, not enough bookies) and
//     idempotent retries of an already committed entry complete at the same
//     virtual instant, from an event scheduled with After(0);
//   - an accepted append completes from the event that commits it (the ack
//     that completes its quorum while every lower LSN is committed) or, with
//     ErrUnavailable, from the stream's add-timeout event at most
//     AddTimeoutUs after it was accepted;
//   - an open completes after one bookie latency (the fencing round trip), or
//     later, when the last entry pending at the open has committed or failed;
//     with ErrUnavailable if fewer than AckQuorum bookies of the cluster are
//     up at the end of that round trip (the epoch is raised all the same);
//   - a read completes after one bookie latency, later if the bookies it
//     reads from are stalled.
//
// Callbacks may call Do again (a pipelined writer does).
//
// Epochs: a stream starts at writer epoch 0, so an epoch-0 writer may append
// without opening; every other writer opens first.
package replog

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"territory/model"
	"territory/sim/kernel"
)

// MaxBookies bounds Config.Bookies (bookie sets are 64-bit masks).
const MaxBookies = 64

// DefaultMaxEntries is the read batch when LogRequest.MaxEntries is 0.
const DefaultMaxEntries = 256

// Config sizes the simulated bookie cluster.
type Config struct {
	Bookies     int // bookies in the cluster
	Ensemble    int // bookies per stream (E)
	WriteQuorum int // bookies each entry is written to (Qw)
	AckQuorum   int // acks needed before an entry can commit (Qa)

	BookieLatencyMinUs int64 // one bookie round trip, uniform in [min, max]
	BookieLatencyMaxUs int64
	// AddTimeoutUs: an entry that has not committed this long after it was
	// accepted fails, with every later pending entry of its stream.
	AddTimeoutUs int64
}

// DefaultConfig is 5 bookies, E=3 Qw=3 Qa=2, 200–2000 µs per bookie round
// trip, and a 2 s add timeout.
func DefaultConfig() Config {
	return Config{
		Bookies: 5, Ensemble: 3, WriteQuorum: 3, AckQuorum: 2,
		BookieLatencyMinUs: 200, BookieLatencyMaxUs: 2000,
		AddTimeoutUs: 2_000_000,
	}
}

// Validate checks 1 ≤ AckQuorum ≤ WriteQuorum ≤ Ensemble ≤ Bookies ≤ 64,
// 0 ≤ latency min ≤ max, and a positive add timeout.
func (c Config) Validate() error {
	switch {
	case c.AckQuorum < 1:
		return fmt.Errorf("replog: AckQuorum %d < 1", c.AckQuorum)
	case c.WriteQuorum < c.AckQuorum:
		return fmt.Errorf("replog: WriteQuorum %d < AckQuorum %d", c.WriteQuorum, c.AckQuorum)
	case c.Ensemble < c.WriteQuorum:
		return fmt.Errorf("replog: Ensemble %d < WriteQuorum %d", c.Ensemble, c.WriteQuorum)
	case c.Bookies < c.Ensemble:
		return fmt.Errorf("replog: Bookies %d < Ensemble %d", c.Bookies, c.Ensemble)
	case c.Bookies > MaxBookies:
		return fmt.Errorf("replog: Bookies %d > %d", c.Bookies, MaxBookies)
	case c.BookieLatencyMinUs < 0 || c.BookieLatencyMaxUs < c.BookieLatencyMinUs:
		return fmt.Errorf("replog: bad bookie latency [%d, %d]", c.BookieLatencyMinUs, c.BookieLatencyMaxUs)
	case c.AddTimeoutUs <= 0:
		return errors.New("replog: AddTimeoutUs must be positive")
	}
	return nil
}

// Done receives the outcome of one request.
type Done = func(model.LogResponse, model.ServiceErr)

// slot is one accepted entry of a stream that has not resolved yet.
type slot struct {
	id       uint64 // incarnation: a failed LSN may be accepted again
	epoch    uint64 // epoch of the writer that appended it
	data     []byte // the broker's copy, never mutated
	writeSet uint64 // bookies it was written to
	holders  uint64 // bookies that persisted it (acked)
	deadline int64  // add timeout
	done     Done   // the original append
	extra    []Done // idempotent retries waiting for the same entry
}

// meta is what a committed entry keeps besides its data (compact: a long run
// keeps every committed entry for the checkers).
type meta struct {
	id      uint64
	holders uint64
}

type openWaiter struct {
	target uint64 // pending tail when the open was issued
	done   Done
}

type stream struct {
	l          *Log
	id         uint32
	epoch      uint64
	ensemble   []int
	lac        uint64           // last add confirmed: the committed tail
	committed  []model.LogEntry // LSN i at index i-1
	meta       []meta           // parallel to committed
	pend       []slot           // pend[head+i] is LSN lac+1+i
	head       int
	opens      []openWaiter
	timerArmed bool
	timerFn    func() // s.onTimer, bound once
}

type bookie struct {
	crashed     bool
	incarnation uint32 // bumped by a crash: acks of an earlier incarnation are lost
	stallUntil  int64
}

// ack is one bookie's write of one entry in flight; pooled, with its event
// callback bound once so that scheduling it does not allocate.
type ack struct {
	l      *Log
	s      *stream
	lsn    uint64
	id     uint64
	bookie int
	inc    uint32
	fn     func()
}

// Log is the simulated replicated log: a broker in front of Bookies bookies.
type Log struct {
	k         *kernel.Kernel
	rnd       *kernel.Rand
	cfg       Config
	bookies   []bookie
	aliveMask uint64
	maxStall  int64
	streams   map[uint32]*stream
	nextID    uint64
	ackPool   []*ack
	batch     []slot // scratch of advance
	hook      func(stream uint32, lsn uint64, epoch uint64, data []byte)

	ensembleChanges int64
}

// New returns a log on kernel k drawing bookie latencies from rnd.
func New(k *kernel.Kernel, rnd *kernel.Rand, cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if k == nil || rnd == nil {
		return nil, errors.New("replog: nil kernel or rand")
	}
	return &Log{
		k:         k,
		rnd:       rnd,
		cfg:       cfg,
		bookies:   make([]bookie, cfg.Bookies),
		aliveMask: uint64(1)<<cfg.Bookies - 1, // Bookies ≤ 64: 1<<64 is 0 in Go, and 0-1 is all ones
		streams:   make(map[uint32]*stream),
	}, nil
}

// Config returns the configuration the log was built with.
func (l *Log) Config() Config { return l.cfg }

// SetCommitHook installs the audit hook, called when an entry commits (in LSN
// order per stream, before the append's done) with the epoch of the writer
// that appended it. data is the log's copy: read-only.
func (l *Log) SetCommitHook(fn func(stream uint32, lsn uint64, epoch uint64, data []byte)) {
	l.hook = fn
}

// Do runs one request; done is called exactly once, later, from a kernel event.
func (l *Log) Do(req model.LogRequest, done Done) {
	if done == nil {
		panic("replog: Do with a nil done")
	}
	s := l.stream(req.Stream)
	switch req.Kind {
	case model.LogOpen:
		l.open(s, req.Epoch, done)
	case model.LogAppend:
		l.append(s, &req, done)
	case model.LogRead:
		l.read(s, req.FromLSN, req.MaxEntries, done)
	default:
		panic(fmt.Sprintf("replog: unknown request kind %d", req.Kind))
	}
}

func (l *Log) stream(id uint32) *stream {
	if s := l.streams[id]; s != nil {
		return s
	}
	s := &stream{l: l, id: id, ensemble: make([]int, l.cfg.Ensemble)}
	// Round-robin placement from the stream id spreads streams over bookies.
	for i := range s.ensemble {
		s.ensemble[i] = (int(id%uint32(l.cfg.Bookies)) + i) % l.cfg.Bookies
	}
	s.timerFn = s.onTimer
	l.streams[id] = s
	return s
}

// later completes done at the current instant, from a fresh kernel event.
func (l *Log) later(done Done, resp model.LogResponse, err model.ServiceErr) {
	l.k.After(0, func() { done(resp, err) })
}

func (l *Log) latency() int64 {
	return l.rnd.Between(l.cfg.BookieLatencyMinUs, l.cfg.BookieLatencyMaxUs)
}

// ---- open ----

func (l *Log) open(s *stream, epoch uint64, done Done) {
	if epoch < s.epoch {
		l.later(done, model.LogResponse{}, model.ErrFenced)
		return
	}
	// Fencing takes effect now: from this instant every lower epoch is refused.
	s.epoch = epoch
	w := openWaiter{target: s.tail(), done: done}
	l.k.After(l.latency(), func() {
		// The fencing round trip needs bookies to answer. The epoch stays
		// raised even so: as in BookKeeper, a failed open may have fenced.
		if bits.OnesCount64(l.aliveMask) < l.cfg.AckQuorum {
			w.done(model.LogResponse{TailLSN: s.lac}, model.ErrUnavailable)
			return
		}
		if s.openReady(w.target) {
			w.done(model.LogResponse{TailLSN: s.lac}, model.ErrNone)
			return
		}
		s.opens = append(s.opens, w)
	})
}

// openReady: every entry pending when the open was issued has resolved.
func (s *stream) openReady(target uint64) bool {
	return s.lac >= target || s.head == len(s.pend)
}

// tail is the pending tail: the highest accepted LSN.
func (s *stream) tail() uint64 { return s.lac + uint64(len(s.pend)-s.head) }

// pending returns the pending slot of lsn (lac < lsn ≤ tail).
func (s *stream) pending(lsn uint64) *slot { return &s.pend[s.head+int(lsn-s.lac-1)] }

// popHead removes the oldest pending slot, compacting now and then so the
// buffer does not grow without bound under a steady pipeline.
func (s *stream) popHead() {
	s.pend[s.head] = slot{}
	s.head++
	if s.head == len(s.pend) {
		s.pend = s.pend[:0]
		s.head = 0
	} else if s.head >= 64 && s.head*2 >= len(s.pend) {
		n := copy(s.pend, s.pend[s.head:])
		clear(s.pend[n:])
		s.pend = s.pend[:n]
		s.head = 0
	}
}

// completeOpens finishes every waiting open whose pending entries resolved,
// in the order the opens arrived.
func (s *stream) completeOpens() {
	if len(s.opens) == 0 {
		return
	}
	var ready []openWaiter
	keep := s.opens[:0]
	for _, w := range s.opens {
		if s.openReady(w.target) {
			ready = append(ready, w)
		} else {
			keep = append(keep, w)
		}
	}
	clear(s.opens[len(keep):])
	s.opens = keep
	for _, w := range ready {
		w.done(model.LogResponse{TailLSN: s.lac}, model.ErrNone)
	}
}

// ---- append ----

func (l *Log) append(s *stream, req *model.LogRequest, done Done) {
	if req.LSN == 0 {
		panic("replog: append at LSN 0 (LSNs start at 1)")
	}
	// Only the writer that opened the stream at its current epoch may append:
	// a lower epoch was fenced, and a higher epoch must open first (the open
	// is what waits out the previous writer's in-flight entries).
	if req.Epoch != s.epoch {
		l.later(done, model.LogResponse{LSN: req.LSN, TailLSN: s.lac}, model.ErrFenced)
		return
	}
	n := s.tail()
	if req.LSN <= s.lac {
		err := model.ErrNone // an idempotent retry of a committed entry
		if !bytes.Equal(s.committed[req.LSN-1].Data, req.Data) {
			err = model.ErrLSNConflict
		}
		l.later(done, model.LogResponse{LSN: req.LSN, TailLSN: s.lac}, err)
		return
	}
	if req.LSN <= n {
		sl := s.pending(req.LSN)
		if !bytes.Equal(sl.data, req.Data) {
			l.later(done, model.LogResponse{LSN: req.LSN, TailLSN: s.lac}, model.ErrLSNConflict)
			return
		}
		// An idempotent retry: it shares the fate of the pending entry.
		sl.extra = append(sl.extra, done)
		return
	}
	if req.LSN > n+1 {
		l.later(done, model.LogResponse{LSN: req.LSN, TailLSN: s.lac}, model.ErrLSNGap)
		return
	}
	ws, ok := l.writeSet(s, req.LSN)
	if !ok {
		l.later(done, model.LogResponse{LSN: req.LSN, TailLSN: s.lac}, model.ErrUnavailable)
		return
	}
	now := l.k.NowUs()
	l.nextID++
	id := l.nextID
	s.pend = append(s.pend, slot{
		id:       id,
		epoch:    req.Epoch,
		data:     bytes.Clone(req.Data),
		writeSet: ws,
		deadline: now + l.cfg.AddTimeoutUs,
		done:     done,
	})
	for m := ws; m != 0; m &= m - 1 {
		b := bits.TrailingZeros64(m)
		bk := &l.bookies[b]
		if bk.crashed {
			continue // a crashed bookie never acks
		}
		a := l.newAck()
		a.s, a.lsn, a.id, a.bookie, a.inc = s, req.LSN, id, b, bk.incarnation
		l.k.At(max(now, bk.stallUntil)+l.latency(), a.fn)
	}
	if !s.timerArmed {
		s.timerArmed = true
		l.k.At(now+l.cfg.AddTimeoutUs, s.timerFn)
	}
}

// writeSet returns the bookies entry lsn is written to: ensemble[(lsn+i) % E]
// for i < Qw. When fewer than Qa of them are alive it first changes the
// ensemble (every crashed member replaced by a live non-member, scanning
// round-robin from the stream's placement); false if that is not enough.
func (l *Log) writeSet(s *stream, lsn uint64) (uint64, bool) {
	ws := l.stripe(s, lsn)
	if bits.OnesCount64(ws&l.aliveMask) >= l.cfg.AckQuorum {
		return ws, true
	}
	changed := false
	for pos, b := range s.ensemble {
		if l.bookies[b].crashed {
			if r := l.replacement(s); r >= 0 {
				s.ensemble[pos] = r
				changed = true
			}
		}
	}
	if changed {
		l.ensembleChanges++
		ws = l.stripe(s, lsn)
	}
	return ws, bits.OnesCount64(ws&l.aliveMask) >= l.cfg.AckQuorum
}

func (l *Log) stripe(s *stream, lsn uint64) uint64 {
	e := uint64(len(s.ensemble))
	var ws uint64
	for i := 0; i < l.cfg.WriteQuorum; i++ {
		ws |= 1 << s.ensemble[(lsn+uint64(i))%e]
	}
	return ws
}

func (l *Log) replacement(s *stream) int {
	n := l.cfg.Bookies
	start := (int(s.id%uint32(n)) + len(s.ensemble)) % n
	for j := 0; j < n; j++ {
		b := (start + j) % n
		if !l.bookies[b].crashed && !slices.Contains(s.ensemble, b) {
			return b
		}
	}
	return -1
}

func (l *Log) newAck() *ack {
	if n := len(l.ackPool); n > 0 {
		a := l.ackPool[n-1]
		l.ackPool = l.ackPool[:n-1]
		return a
	}
	a := &ack{l: l}
	a.fn = a.fire
	return a
}

func (a *ack) fire() {
	l := a.l
	bk := &l.bookies[a.bookie]
	if bk.crashed || bk.incarnation != a.inc {
		l.freeAck(a) // the bookie crashed before persisting: no ack
		return
	}
	if bk.stallUntil > l.k.NowUs() {
		l.k.At(bk.stallUntil, a.fn) // stalled: the ack waits
		return
	}
	s, lsn, id, b := a.s, a.lsn, a.id, a.bookie
	l.freeAck(a)
	if lsn <= s.lac {
		// A late ack of a committed entry: one more bookie holds it.
		if m := &s.meta[lsn-1]; m.id == id {
			m.holders |= 1 << b
		}
		return
	}
	if lsn > s.tail() || s.pending(lsn).id != id {
		return // the entry failed meanwhile: it was removed from the bookies
	}
	s.pending(lsn).holders |= 1 << b
	if lsn == s.lac+1 {
		l.advance(s)
	}
}

func (l *Log) freeAck(a *ack) {
	a.s = nil
	l.ackPool = append(l.ackPool, a)
}

// advance commits the longest run of pending entries that have their ack
// quorum, then runs the commit hook and the callbacks in LSN order (the state
// is final before the first callback runs).
func (l *Log) advance(s *stream) {
	batch := l.batch
	l.batch = nil
	for s.head < len(s.pend) && bits.OnesCount64(s.pend[s.head].holders) >= l.cfg.AckQuorum {
		sl := &s.pend[s.head]
		s.lac++
		s.committed = append(s.committed, model.LogEntry{LSN: s.lac, Data: sl.data})
		s.meta = append(s.meta, meta{id: sl.id, holders: sl.holders})
		batch = append(batch, *sl)
		s.popHead()
	}
	end := s.lac
	first := end - uint64(len(batch)) + 1
	for i := range batch {
		sl := &batch[i]
		lsn := first + uint64(i)
		if l.hook != nil {
			l.hook(s.id, lsn, sl.epoch, sl.data)
		}
		resp := model.LogResponse{LSN: lsn, TailLSN: end}
		sl.done(resp, model.ErrNone)
		for _, d := range sl.extra {
			d(resp, model.ErrNone)
		}
	}
	clear(batch)
	l.batch = batch[:0]
	s.completeOpens()
}

// onTimer is the stream's add-timeout event: at most one is scheduled per
// stream, for the oldest pending entry's deadline (deadlines grow with LSN).
func (s *stream) onTimer() {
	l := s.l
	s.timerArmed = false
	if s.head == len(s.pend) {
		return
	}
	head := &s.pend[s.head]
	if head.deadline > l.k.NowUs() {
		s.timerArmed = true
		l.k.At(head.deadline, s.timerFn)
		return
	}
	l.failPending(s)
}

// failPending fails every pending entry of s with ErrUnavailable: they are
// removed (the bookies drop them) and their LSNs become free again.
func (l *Log) failPending(s *stream) {
	from := s.lac
	failed := s.pend[s.head:]
	s.pend, s.head = nil, 0
	for i := range failed {
		resp := model.LogResponse{LSN: from + uint64(i) + 1, TailLSN: s.lac}
		failed[i].done(resp, model.ErrUnavailable)
		for _, d := range failed[i].extra {
			d(resp, model.ErrUnavailable)
		}
	}
	s.completeOpens()
}

// ---- read ----

func (l *Log) read(s *stream, from uint64, maxEntries int, done Done) {
	if from == 0 {
		from = 1
	}
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	now := l.k.NowUs()
	ready := now
	// The read is served as of this instant (committed entries never change,
	// so this is a valid linearization); it returns after the slowest bookie
	// it reads from answers.
	last := from - 1
	for lsn := from; lsn <= s.lac && lsn-from < uint64(maxEntries); lsn++ {
		h := s.meta[lsn-1].holders & l.aliveMask
		if h == 0 {
			break // no live bookie holds it: stop before the hole
		}
		if l.maxStall > now {
			best := int64(math.MaxInt64)
			for m := h; m != 0; m &= m - 1 {
				best = min(best, max(now, l.bookies[bits.TrailingZeros64(m)].stallUntil))
			}
			ready = max(ready, best)
		}
		last = lsn
	}
	if last < from && from <= s.lac {
		l.later(done, model.LogResponse{TailLSN: s.lac}, model.ErrUnavailable)
		return
	}
	resp := model.LogResponse{TailLSN: s.lac}
	if last >= from {
		src := s.committed[from-1 : last]
		total := 0
		for i := range src {
			total += len(src[i].Data)
		}
		buf := make([]byte, total)
		resp.Entries = make([]model.LogEntry, len(src))
		off := 0
		for i := range src {
			n := copy(buf[off:], src[i].Data)
			resp.Entries[i] = model.LogEntry{LSN: src[i].LSN, Data: buf[off : off+n : off+n]}
			off += n
		}
	}
	l.k.At(ready+l.latency(), func() { done(resp, model.ErrNone) })
}

// ---- bookie faults ----

// Bookies is the number of bookies.
func (l *Log) Bookies() int { return len(l.bookies) }

func (l *Log) bookie(i int) *bookie {
	if i < 0 || i >= len(l.bookies) {
		panic(fmt.Sprintf("replog: no bookie %d", i))
	}
	return &l.bookies[i]
}

// CrashBookie stops bookie i: it acks nothing (writes in flight to it are
// lost) and serves no reads. Its disk is durable: what it persisted survives
// a restart.
func (l *Log) CrashBookie(i int) {
	b := l.bookie(i)
	if b.crashed {
		return
	}
	b.crashed = true
	b.incarnation++
	l.aliveMask &^= 1 << i
}

// RestartBookie brings bookie i back with its disk. Entries written while it
// was down are not re-replicated to it.
func (l *Log) RestartBookie(i int) {
	b := l.bookie(i)
	b.crashed = false
	l.aliveMask |= 1 << i
}

// StallBookie delays bookie i's acks and reads until untilUs (a stall only
// ever extends; a crashed bookie stays crashed).
func (l *Log) StallBookie(i int, untilUs int64) {
	b := l.bookie(i)
	b.stallUntil = max(b.stallUntil, untilUs)
	l.maxStall = max(l.maxStall, untilUs)
}

// BookieCrashed reports whether bookie i is down.
func (l *Log) BookieCrashed(i int) bool { return l.bookie(i).crashed }

// ---- introspection for checkers ----

// Committed returns the committed entries of stream, in LSN order (LSN i at
// index i-1). The slice and the data are the log's own: read-only.
func (l *Log) Committed(stream uint32) []model.LogEntry {
	if s := l.streams[stream]; s != nil {
		return s.committed
	}
	return nil
}

// Streams returns the id of every stream used so far, sorted.
func (l *Log) Streams() []uint32 {
	ids := make([]uint32, 0, len(l.streams))
	for id := range l.streams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Epoch is the stream's current writer epoch (0 for an unknown stream).
func (l *Log) Epoch(stream uint32) uint64 {
	if s := l.streams[stream]; s != nil {
		return s.epoch
	}
	return 0
}

// Pending is the number of accepted entries of stream not yet resolved.
func (l *Log) Pending(stream uint32) int {
	if s := l.streams[stream]; s != nil {
		return len(s.pend) - s.head
	}
	return 0
}

// Ensemble returns a copy of the stream's current ensemble (bookie indexes).
func (l *Log) Ensemble(stream uint32) []int {
	if s := l.streams[stream]; s != nil {
		return slices.Clone(s.ensemble)
	}
	return nil
}

// EnsembleChanges counts ensemble changes over all streams.
func (l *Log) EnsembleChanges() int64 { return l.ensembleChanges }
