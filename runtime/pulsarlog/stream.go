package pulsarlog

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"

	"territory/model"
)

const (
	// writerName is the producer name every writer of a stream uses: broker
	// deduplication state is kept per producer name.
	writerName = "territory-writer"
	// indexStride: one in-memory checkpoint every indexStride LSNs.
	indexStride = 64
	// recentEntries: checksums of this many recent entries answer retried
	// appends without a read.
	recentEntries = 512
	// checkpointEvery: the advisory topic-property checkpoint is refreshed
	// every checkpointEvery acknowledged appends (and after every open).
	checkpointEvery = 1024
	// maxDataSize keeps an entry below the broker's default 5 MiB message
	// limit, headers included.
	maxDataSize = 5<<20 - 64<<10
)

var (
	// errOrphan: a send was acknowledged after an earlier send of the same
	// tenure failed; it sits behind a hole and is not an entry.
	errOrphan = errors.New("acknowledged behind a failed send")
	// errDeduplicated: the broker dropped the writer's marker as a duplicate.
	errDeduplicated = errors.New("marker dropped as a duplicate")
)

// stream is one subgraph's topic as seen by this process.
type stream struct {
	l     *Log
	id    uint32
	topic string
	tn    utils.TopicName

	// op serialises what changes the writer: attaching, and enqueueing sends
	// (so sends reach the producer in LSN order). A one-slot semaphore so
	// that waiting for it honours the caller's context.
	op chan struct{}
	// rd serialises reads (they share one reader).
	rd chan struct{}

	mu          sync.Mutex // guards everything below; never held across a call into Pulsar
	w           *writer
	seenMaxOpen uint64 // highest epoch this process saw opened (folds only ever raise it)
	knownTail   uint64 // highest committed LSN this process knows
	ix          *index
	recent      map[uint64][32]byte // LSN -> SHA-256 of committed data
	ckptLoaded  bool
	ckptSaved   pos
	ckptSaving  bool
	sinceCkpt   int
	cur         *cursor // the sequential read cursor (guarded by rd, not mu)
}

// writer is one producer tenure of this process on the stream.
type writer struct {
	epoch    uint64
	gen      uint64
	prod     pulsar.Producer
	marker   pos
	tail     uint64 // committed: acknowledged in order within this tenure
	pendTail uint64 // highest LSN handed to the producer
	pend     map[uint64]*pending
	failed   error // first send failure: the tenure is over
}

// pending is one append handed to the producer.
type pending struct {
	lsn  uint64
	sum  [32]byte
	done chan struct{}
	err  error
	tail uint64 // the tail when it was acknowledged
}

func newStream(l *Log, id uint32) *stream {
	s := &stream{
		l:      l,
		id:     id,
		topic:  l.Topic(id),
		op:     make(chan struct{}, 1),
		rd:     make(chan struct{}, 1),
		ix:     newIndex(indexStride),
		recent: make(map[uint64][32]byte),
	}
	if tn, err := utils.GetTopicName(s.topic); err == nil {
		s.tn = *tn
	}
	return s
}

func acquireSem(ctx context.Context, c chan struct{}) error {
	select {
	case c <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func releaseSem(c chan struct{}) { <-c }

func (s *stream) close() {
	s.mu.Lock()
	w := s.w
	s.w = nil
	s.mu.Unlock()
	if w != nil {
		w.prod.Close()
	}
	// A read in flight keeps its cursor; it is closed with the client.
	select {
	case s.rd <- struct{}{}:
		if s.cur != nil {
			s.cur.r.Close()
			s.cur = nil
		}
		<-s.rd
	default:
	}
}

// note records what a fold learned.
func (s *stream) note(st foldState) {
	s.mu.Lock()
	s.seenMaxOpen = max(s.seenMaxOpen, st.MaxOpen)
	s.knownTail = max(s.knownTail, st.Tail)
	s.mu.Unlock()
}

// ---- open ----

func (s *stream) open(ctx context.Context, epoch uint64) (model.LogResponse, model.ServiceErr, error) {
	if err := acquireSem(ctx, s.op); err != nil {
		return model.LogResponse{}, model.ErrNone, fmt.Errorf("open stream %d epoch %d: %w", s.id, epoch, err)
	}
	defer releaseSem(s.op)
	tail, serr, err := s.attach(ctx, epoch, kindOpen)
	if err != nil {
		return model.LogResponse{}, model.ErrNone, fmt.Errorf("open stream %d epoch %d: %w", s.id, epoch, err)
	}
	return model.LogResponse{TailLSN: tail}, serr, nil
}

// attach makes this process the writer of the stream at epoch (see the
// package comment): take the exclusive producer, write the marker, fold up to
// it, check the fold admits the marker. The caller holds s.op. On ErrFenced
// the returned tail is the committed tail the fold saw.
func (s *stream) attach(ctx context.Context, epoch uint64, k kind) (uint64, model.ServiceErr, error) {
	s.dropWriter()
	s.loadCheckpoint(ctx)
	s.mu.Lock()
	seen, known := s.seenMaxOpen, s.knownTail
	s.mu.Unlock()
	if seen > epoch {
		return known, model.ErrFenced, nil // epochs only rise: no need to ask
	}
	prod, fenced, err := s.acquire(ctx, epoch, k)
	if err != nil || fenced != nil {
		if fenced != nil {
			return fenced.Tail, model.ErrFenced, nil
		}
		if errors.Is(err, errBusy) {
			return known, model.ErrUnavailable, nil
		}
		return 0, model.ErrNone, err
	}
	rec := record{kind: k, stream: s.id, epoch: epoch}
	id, err := prod.Send(ctx, &pulsar.ProducerMessage{Properties: rec.props()})
	if err != nil {
		prod.Close()
		// The marker may have landed: an open may have fenced (as with
		// BookKeeper, a failed open can still have raised the epoch).
		return 0, model.ErrNone, fmt.Errorf("write %s marker: %w", kindNames[k], err)
	}
	at := posOf(id)
	if at.entry < 0 {
		prod.Close()
		return 0, model.ErrNone, fmt.Errorf("write %s marker: %w", kindNames[k], errDeduplicated)
	}
	gen := genAfter(prod.LastSequenceID())
	if gen > maxGen {
		prod.Close()
		return 0, model.ErrNone, fmt.Errorf("writer generation %d exhausted the sequence id space", gen)
	}
	before, err := s.foldUpTo(ctx, at)
	if err != nil {
		prod.Close()
		return 0, model.ErrNone, fmt.Errorf("fold up to %s marker at %v: %w", kindNames[k], at, err)
	}
	s.note(before)
	if !before.admits(k, epoch) {
		// Our marker is below a higher open (or an attach at an epoch that
		// is not the current one): every reader ignores it; give the
		// producer back untouched.
		prod.Close()
		return before.Tail, model.ErrFenced, nil
	}
	after := before
	after.apply(rec)
	c := ckpt{at: at, st: after}
	s.mu.Lock()
	s.w = &writer{
		epoch: epoch, gen: gen, prod: prod, marker: at,
		tail: after.Tail, pendTail: after.Tail, pend: make(map[uint64]*pending),
	}
	s.ix.add(c, true)
	s.seenMaxOpen = max(s.seenMaxOpen, after.MaxOpen)
	s.knownTail = max(s.knownTail, after.Tail)
	s.mu.Unlock()
	s.saveCheckpointAsync()
	return after.Tail, model.ErrNone, nil
}

// dropWriter ends this process's tenure, if any. Closing the producer fails
// its pending sends locally; their waiters re-validate through the log.
func (s *stream) dropWriter() {
	s.mu.Lock()
	w := s.w
	s.w = nil
	s.mu.Unlock()
	if w != nil {
		w.prod.Close()
	}
}

var errBusy = errors.New("exclusive producer held by another writer")

// isBusy: the broker refused the exclusive producer because another one is
// attached. (Exclusive mode answers ProducerFenced "Topic has an existing
// exclusive producer"; a same-name producer still registered on a dead
// connection answers "already connected".)
func isBusy(err error) bool {
	m := err.Error()
	return strings.Contains(m, "existing exclusive producer") ||
		strings.Contains(m, "ProducerBusy") ||
		strings.Contains(m, "is already connected") ||
		strings.Contains(m, "existing shared producers")
}

// acquire attaches the exclusive producer. If another writer holds it, the
// log is checked first: if it already shows a higher epoch (or, for an
// attach, not our epoch) the answer is fenced and the holder is left alone;
// otherwise the topic is unloaded, which disconnects the holder, and the
// attachment is retried (the holder's reconnect is then refused by the topic
// epoch check and its client closes it for good). Gives up with errBusy when
// ctx ends while the producer is still taken.
func (s *stream) acquire(ctx context.Context, epoch uint64, k kind) (pulsar.Producer, *foldState, error) {
	checked := false
	var lastErr error
	for attempt := 0; ; attempt++ {
		prod, err := s.l.client.CreateProducer(pulsar.ProducerOptions{
			Topic:              s.topic,
			Name:               writerName,
			ProducerAccessMode: pulsar.ProducerAccessModeExclusive,
			DisableBatching:    true,
			SendTimeout:        s.l.cfg.OperationTimeout,
			MaxPendingMessages: 4096,
		})
		if err == nil {
			return prod, nil, nil
		}
		lastErr = err
		if isBusy(err) {
			if !checked {
				st, err := s.foldToEnd(ctx)
				if err != nil {
					return nil, nil, fmt.Errorf("producer taken, and checking the log failed: %w", err)
				}
				s.note(st)
				if !st.admits(k, epoch) {
					return nil, &st, nil
				}
				checked = true
			}
			// The holder's client retries at once (refused while the topic
			// is closing) and then after a ~100 ms backoff: attach again
			// right away to get in first.
			if err := s.l.admin.Topics().UnloadWithContext(ctx, s.tn); err != nil && ctx.Err() == nil {
				lastErr = fmt.Errorf("unload %s to take over the producer: %w", s.topic, err)
			} else if attempt < 50 {
				continue
			}
		}
		d := min(time.Duration(attempt+1)*10*time.Millisecond, 200*time.Millisecond)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			if isBusy(lastErr) {
				return nil, nil, errBusy
			}
			return nil, nil, fmt.Errorf("create producer: %w (last: %v)", ctx.Err(), lastErr)
		}
	}
}

// ---- append ----

func (s *stream) append(ctx context.Context, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
	if req.LSN == 0 || req.LSN > MaxLSN {
		return model.LogResponse{}, model.ErrNone, fmt.Errorf("append stream %d: lsn %d out of range [1, %d]", s.id, req.LSN, uint64(MaxLSN))
	}
	if len(req.Data) > maxDataSize {
		return model.LogResponse{}, model.ErrNone, fmt.Errorf("append stream %d lsn %d: %d bytes exceed %d", s.id, req.LSN, len(req.Data), maxDataSize)
	}
	sum := sha256.Sum256(req.Data)
	p, w, resp, serr, err := s.enqueue(ctx, req, sum)
	if err != nil {
		return resp, serr, fmt.Errorf("append stream %d lsn %d epoch %d: %w", s.id, req.LSN, req.Epoch, err)
	}
	if p == nil {
		return resp, serr, nil
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		// Still in flight: it may land. A retry of the same LSN joins it or
		// finds it committed.
		return model.LogResponse{}, model.ErrNone, fmt.Errorf("append stream %d lsn %d epoch %d: waiting for the ack: %w", s.id, req.LSN, req.Epoch, ctx.Err())
	}
	if p.err == nil {
		return model.LogResponse{LSN: req.LSN, TailLSN: p.tail}, model.ErrNone, nil
	}
	resp, serr, err = s.resolve(ctx, req, sum, w)
	if err != nil {
		return resp, serr, fmt.Errorf("append stream %d lsn %d epoch %d: send failed (%v), then: %w", s.id, req.LSN, req.Epoch, p.err, err)
	}
	return resp, serr, nil
}

// enqueue answers the append from the writer's state or hands it to the
// producer (p != nil: wait for p.done).
func (s *stream) enqueue(ctx context.Context, req model.LogRequest, sum [32]byte) (*pending, *writer, model.LogResponse, model.ServiceErr, error) {
	if err := acquireSem(ctx, s.op); err != nil {
		return nil, nil, model.LogResponse{}, model.ErrNone, err
	}
	locked := true
	defer func() {
		if locked {
			releaseSem(s.op)
		}
	}()
	L, E := req.LSN, req.Epoch
	s.mu.Lock()
	w, seen, known := s.w, s.seenMaxOpen, s.knownTail
	s.mu.Unlock()
	if seen > E || (w != nil && w.epoch > E) {
		return nil, nil, model.LogResponse{LSN: L, TailLSN: known}, model.ErrFenced, nil
	}
	for attempt := 0; ; attempt++ {
		if w != nil && w.epoch == E {
			s.mu.Lock()
			if w.failed == nil {
				break // with s.mu held
			}
			s.mu.Unlock()
		}
		if attempt == 3 {
			return nil, nil, model.LogResponse{}, model.ErrNone, errors.New("writer keeps failing")
		}
		// No healthy tenure at this epoch here (first append of an epoch-0
		// writer, a restarted process, or a failed tenure): attach, which
		// succeeds only if E is the stream's current epoch.
		tail, serr, err := s.attach(ctx, E, kindAttach)
		if err != nil {
			return nil, nil, model.LogResponse{}, model.ErrNone, fmt.Errorf("attach: %w", err)
		}
		if serr != model.ErrNone {
			return nil, nil, model.LogResponse{LSN: L, TailLSN: tail}, serr, nil
		}
		s.mu.Lock()
		w = s.w
		s.mu.Unlock()
	}
	// s.mu is held and w is a healthy tenure at epoch E.
	switch {
	case L <= w.tail:
		tail := w.tail
		s.mu.Unlock()
		releaseSem(s.op)
		locked = false
		serr, err := s.compare(ctx, L, sum)
		return nil, nil, model.LogResponse{LSN: L, TailLSN: tail}, serr, err
	case L <= w.pendTail:
		p := w.pend[L]
		s.mu.Unlock()
		if p == nil || p.sum != sum {
			return nil, nil, model.LogResponse{LSN: L, TailLSN: w.tail}, model.ErrLSNConflict, nil
		}
		return p, w, model.LogResponse{}, model.ErrNone, nil // an identical retry shares the send's fate
	case L > w.pendTail+1:
		tail := w.tail
		s.mu.Unlock()
		return nil, nil, model.LogResponse{LSN: L, TailLSN: tail}, model.ErrLSNGap, nil
	}
	p := &pending{lsn: L, sum: sum, done: make(chan struct{})}
	w.pend[L] = p
	w.pendTail = L
	s.mu.Unlock()
	seq := seqID(w.gen, L)
	rec := record{kind: kindData, stream: s.id, epoch: E, lsn: L}
	// The send's fate must not depend on this caller's context: a cancelled
	// message could leave a hole under later ones.
	w.prod.SendAsync(context.Background(), &pulsar.ProducerMessage{
		Payload:    req.Data,
		Properties: rec.props(),
		SequenceID: &seq,
	}, func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
		s.onAck(w, p, id, err)
	})
	return p, w, model.LogResponse{}, model.ErrNone, nil
}

// onAck runs on the client's goroutine for each send, in send order.
func (s *stream) onAck(w *writer, p *pending, id pulsar.MessageID, err error) {
	var c ckpt
	var index, save bool
	s.mu.Lock()
	if err == nil && w.failed == nil && p.lsn == w.tail+1 {
		w.tail = p.lsn
		p.tail = w.tail
		s.knownTail = max(s.knownTail, w.tail)
		s.recent[p.lsn] = p.sum
		delete(s.recent, p.lsn-min(p.lsn, recentEntries))
		// A deduplicated re-send is acknowledged without a position
		// (-1:-1): it was persisted earlier in this tenure.
		if at := posOf(id); at.entry >= 0 {
			c = ckpt{at: at, st: foldState{MaxOpen: w.epoch, Tail: w.tail}}
			index = true
			s.ix.add(c, false)
			s.sinceCkpt++
			if s.sinceCkpt >= checkpointEvery {
				s.sinceCkpt = 0
				save = true
			}
		}
	} else {
		if err == nil {
			err = errOrphan
		}
		if w.failed == nil {
			w.failed = err
		}
		p.err = err
	}
	delete(w.pend, p.lsn)
	s.mu.Unlock()
	close(p.done)
	if index && save {
		s.saveCheckpointAsync()
	}
}

// resolve answers an append whose send failed: the outcome is read from the
// log after re-attaching (which ends the failed tenure for good, so nothing
// of it can land later).
func (s *stream) resolve(ctx context.Context, req model.LogRequest, sum [32]byte, failed *writer) (model.LogResponse, model.ServiceErr, error) {
	if err := acquireSem(ctx, s.op); err != nil {
		return model.LogResponse{}, model.ErrNone, err
	}
	L, E := req.LSN, req.Epoch
	var tail uint64
	fenced := false
	s.mu.Lock()
	w := s.w
	resynced := w != nil && w != failed && w.failed == nil
	if resynced {
		// Someone attached since: its fold covered our send.
		tail = w.tail
		fenced = w.epoch != E
	}
	s.mu.Unlock()
	if !resynced {
		t, serr, err := s.attach(ctx, E, kindAttach)
		if err != nil {
			releaseSem(s.op)
			return model.LogResponse{}, model.ErrNone, fmt.Errorf("re-attach: %w", err)
		}
		switch serr {
		case model.ErrNone:
		case model.ErrFenced:
			fenced = true
		default:
			releaseSem(s.op)
			// The producer is taken and we could not tell: unknown.
			return model.LogResponse{}, model.ErrNone, fmt.Errorf("re-attach: %v", serr)
		}
		tail = t
	}
	releaseSem(s.op)
	if L <= tail {
		serr, err := s.compare(ctx, L, sum)
		if serr == model.ErrLSNConflict && fenced {
			// A newer epoch's entry holds L: the append lost to the newer
			// writer. Fenced says so (as the simulated log does), where a
			// conflict would send the writer to re-read a log it no longer owns.
			serr = model.ErrFenced
		}
		return model.LogResponse{LSN: L, TailLSN: tail}, serr, err
	}
	if fenced {
		return model.LogResponse{LSN: L, TailLSN: tail}, model.ErrFenced, nil
	}
	// The tenure that sent it is over and the fold past its end does not
	// hold it: it was not written and never will be.
	return model.LogResponse{LSN: L, TailLSN: tail}, model.ErrUnavailable, nil
}

// compare answers an append of a committed LSN: OK if it holds the same data.
func (s *stream) compare(ctx context.Context, lsn uint64, sum [32]byte) (model.ServiceErr, error) {
	s.mu.Lock()
	have, ok := s.recent[lsn]
	s.mu.Unlock()
	if !ok {
		resp, err := s.read(ctx, lsn, 1)
		if err != nil {
			return model.ErrNone, fmt.Errorf("read committed lsn %d to compare: %w", lsn, err)
		}
		if len(resp.Entries) == 0 || resp.Entries[0].LSN != lsn {
			return model.ErrNone, fmt.Errorf("committed lsn %d not found by a read (tail %d)", lsn, resp.TailLSN)
		}
		have = sha256.Sum256(resp.Entries[0].Data)
	}
	if have != sum {
		return model.ErrLSNConflict, nil
	}
	return model.ErrNone, nil
}

// ---- advisory checkpoint in the topic properties ----

// loadCheckpoint reads the topic's checkpoint once (best effort: a missing
// topic or property only means folds start earlier).
func (s *stream) loadCheckpoint(ctx context.Context) {
	s.mu.Lock()
	done := s.ckptLoaded
	s.ckptLoaded = true
	s.mu.Unlock()
	if done {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	props, err := s.l.admin.Topics().GetPropertiesWithContext(cctx, s.tn)
	if err != nil {
		return
	}
	c, err := parseCkpt(props[checkpointProp])
	if err != nil {
		return
	}
	s.mu.Lock()
	s.ix.add(c, true)
	s.ckptSaved = c.at
	s.seenMaxOpen = max(s.seenMaxOpen, c.st.MaxOpen)
	s.knownTail = max(s.knownTail, c.st.Tail)
	s.mu.Unlock()
}

// saveCheckpointAsync stores the latest checkpoint in the topic's properties
// (best effort, one at a time). Any true fold state is a valid checkpoint,
// so a stale or lost update is harmless.
func (s *stream) saveCheckpointAsync() {
	s.mu.Lock()
	if s.ckptSaving || !s.ix.has || !s.ckptSaved.less(s.ix.last.at) {
		s.mu.Unlock()
		return
	}
	s.ckptSaving = true
	c := s.ix.last
	s.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.l.cfg.OperationTimeout)
		defer cancel()
		err := s.l.admin.Topics().UpdatePropertiesWithContext(ctx, s.tn, map[string]string{checkpointProp: c.encode()})
		s.mu.Lock()
		s.ckptSaving = false
		if err == nil && s.ckptSaved.less(c.at) {
			s.ckptSaved = c.at
		}
		s.mu.Unlock()
	}()
}
