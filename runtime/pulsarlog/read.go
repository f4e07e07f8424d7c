package pulsarlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"territory/model"
	"territory/model/logfence"
)

// readerAttempts bounds the retries of a reader the broker refuses as not
// ready (about 8 s in all).
const readerAttempts = 20

// isNotReady: the broker is (re)loading the topic, or closed the connection
// while it did (a takeover's unload: fidelity.TestLogFidelityPulsar saw an
// open fail on "create reader ...: connection closed").
func isNotReady(err error) bool {
	m := err.Error()
	return strings.Contains(m, "ServiceNotReady") || strings.Contains(m, "temporarily unavailable") || strings.Contains(m, "connection closed")
}

// traceReads: TERRITORY_PULSARLOG_TRACE=1 prints every read's positions to
// stderr (a diagnostic for the fidelity runs).
var traceReads = os.Getenv("TERRITORY_PULSARLOG_TRACE") == "1"

func (s *stream) trace(format string, args ...any) {
	if traceReads {
		fmt.Fprintf(os.Stderr, "pulsarlog %s %s: %s\n", time.Now().Format("15:04:05.000000"), s.topic, fmt.Sprintf(format, args...))
	}
}

// DefaultMaxEntries is the read batch when LogRequest.MaxEntries is 0 (as in
// the simulated log).
const DefaultMaxEntries = 256

// cursor is a reader with the fold (logfence.Cursor) of everything it
// consumed.
type cursor struct {
	r pulsar.Reader
	logfence.Cursor
}

func posOf(id pulsar.MessageID) pos {
	if id == nil {
		return pos{Ledger: -1, Entry: -1}
	}
	return pos{Ledger: id.LedgerID(), Entry: id.EntryID()}
}

// newCursor opens a reader just after checkpoint c (or at the beginning of the
// topic when !ok).
func (s *stream) newCursor(c ckpt, ok bool) (*cursor, error) {
	opts := pulsar.ReaderOptions{
		Topic:             s.topic,
		StartMessageID:    pulsar.EarliestMessageID(),
		ReceiverQueueSize: 1000,
	}
	cur := &cursor{}
	if ok {
		opts.StartMessageID = pulsar.NewMessageID(c.At.Ledger, c.At.Entry, -1, 0) // exclusive
		cur.Cursor = logfence.CursorAfter(c)
	}
	r, err := s.l.client.CreateReader(opts)
	// While a takeover unloads the topic and the broker loads it again, a
	// new reader is refused as ServiceNotReady ("Topic is temporarily
	// unavailable"): try again for a few seconds rather than fail the open
	// or read it serves (found by fidelity.TestLogFidelityPulsar: an open
	// answered with an unknown outcome).
	for attempt := 1; err != nil && attempt <= readerAttempts && isNotReady(err); attempt++ {
		time.Sleep(time.Duration(min(attempt*50, 500)) * time.Millisecond)
		r, err = s.l.client.CreateReader(opts)
	}
	if err != nil {
		return nil, fmt.Errorf("create reader on %s: %w", s.topic, err)
	}
	cur.r = r
	return cur, nil
}

// scanStall is how long a scan towards a position known to exist (the last
// message id the broker reported, or a marker this process wrote) waits for
// its next message before it re-creates its reader just after the last
// message it folded. A reader whose consumer reconnected after a topic
// unload may have dropped what it had queued and resumed past it
// (pulsar-client-go v0.21.0), and then waits for messages that will never
// come: fidelity.TestLogFidelityPulsar saw a read wait 60 s at "scan from
// 2647:0 to 2647:2". A slow broker only costs a needless new reader.
const scanStall = 3 * time.Second

// next returns cur's next message, re-creating the reader from cur's own
// position each time none arrives within scanStall, until ctx ends (every
// request has a deadline: OperationTimeout when the caller gave none).
func (s *stream) next(ctx context.Context, cur *cursor) (pulsar.Message, error) {
	for {
		sctx, cancel := context.WithTimeout(ctx, scanStall)
		m, err := cur.r.Next(sctx)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return m, err
		}
		fresh, err := s.newCursor(ckpt{At: cur.At, St: cur.St}, cur.Started)
		if err != nil {
			return nil, fmt.Errorf("re-create a stalled reader at %v: %w", cur.At, err)
		}
		cur.r.Close()
		cur.r = fresh.r
		s.l.stalls.Add(1)
	}
}

// step consumes one message and folds it; entry is non-nil if it is the next
// entry of the stream.
func (s *stream) step(ctx context.Context, cur *cursor) (*model.LogEntry, error) {
	m, err := s.next(ctx, cur)
	if err != nil {
		return nil, err
	}
	at := posOf(m.ID())
	rec, entry, fresh := cur.Step(at, m.Properties(), s.id)
	if !fresh {
		return nil, nil // already folded (a redelivery after a reconnect)
	}
	s.mu.Lock()
	s.ix.add(ckpt{At: at, St: cur.St}, false) // sparse, but always the latest
	s.mu.Unlock()
	if !entry {
		return nil, nil
	}
	return &model.LogEntry{LSN: rec.LSN, Data: bytes.Clone(m.Payload())}, nil
}

// foldUpTo folds from the best checkpoint before target up to target
// (exclusive) and returns the fold state just before target. target must be
// a position known to exist (a marker this process just wrote).
func (s *stream) foldUpTo(ctx context.Context, target pos) (logfence.Fold, error) {
	s.mu.Lock()
	c, ok := s.ix.before(target)
	s.mu.Unlock()
	cur, err := s.newCursor(c, ok)
	if err != nil {
		return logfence.Fold{}, err
	}
	defer cur.r.Close()
	for {
		m, err := s.next(ctx, cur)
		if err != nil {
			return logfence.Fold{}, fmt.Errorf("scan from %v: %w", cur.At, err)
		}
		at := posOf(m.ID())
		if cur.Started && !cur.At.Less(at) {
			continue
		}
		if at == target {
			return cur.St, nil
		}
		if target.Less(at) {
			return logfence.Fold{}, fmt.Errorf("scan passed %v at %v without seeing it", target, at)
		}
		if _, entry, _ := cur.Step(at, m.Properties(), s.id); entry && cur.St.Tail%indexStride == 0 {
			s.mu.Lock()
			s.ix.add(ckpt{At: at, St: cur.St}, false)
			s.mu.Unlock()
		}
	}
}

// lastPos returns the position of the last message of the topic as the
// broker reports it through r (false: the topic is empty).
func (s *stream) lastPos(ctx context.Context, r pulsar.Reader) (pos, bool, error) {
	id, err := r.GetLastMessageID()
	if err != nil {
		return pos{}, false, fmt.Errorf("last message id of %s: %w", s.topic, err)
	}
	p := posOf(id)
	if p.Entry >= 0 {
		s.trace("last message id %v", p)
		return p, true, nil
	}
	// The broker reports (ledger, -1) when its current ledger is empty and
	// its last-confirmed position was reset (observed after ledger
	// rollover on load): the last message is the last entry of the newest
	// earlier ledger that has entries.
	st, err := s.l.admin.Topics().GetInternalStatsWithContext(ctx, s.tn)
	if err != nil {
		return pos{}, false, fmt.Errorf("internal stats of %s: %w", s.topic, err)
	}
	best, found := pos{}, false
	for _, li := range st.Ledgers {
		if li.Entries > 0 && li.LedgerID <= p.Ledger {
			if q := (pos{Ledger: li.LedgerID, Entry: li.Entries - 1}); !found || best.Less(q) {
				best, found = q, true
			}
		}
	}
	s.trace("last message id %v: from the ledgers %+v (lac %s): %v %v", p, st.Ledgers, st.LastConfirmedEntry, best, found)
	return best, found, nil
}

// foldToEnd folds the whole topic up to the last message the broker reports
// now.
func (s *stream) foldToEnd(ctx context.Context) (logfence.Fold, error) {
	s.loadCheckpoint(ctx)
	s.mu.Lock()
	c, ok := s.ix.last, s.ix.has
	s.mu.Unlock()
	cur, err := s.newCursor(c, ok)
	if err != nil {
		return logfence.Fold{}, err
	}
	defer cur.r.Close()
	end, nonEmpty, err := s.lastPos(ctx, cur.r)
	if err != nil {
		return logfence.Fold{}, err
	}
	if !nonEmpty {
		s.trace("fold to the end: empty, %+v", cur.St)
		return cur.St, nil
	}
	st, err := s.foldFrom(ctx, cur, end)
	s.trace("fold to the end %v: %+v %v", end, st, err)
	return st, err
}

// foldFrom advances cur up to end (inclusive) and returns its state.
func (s *stream) foldFrom(ctx context.Context, cur *cursor, end pos) (logfence.Fold, error) {
	for !cur.Passed(end) {
		if _, err := s.step(ctx, cur); err != nil {
			return logfence.Fold{}, fmt.Errorf("scan from %v to %v: %w", cur.At, end, err)
		}
	}
	return cur.St, nil
}

// tailAt returns the committed tail as of position end (or of a later
// position this process already folded: that is the tail at an instant after
// end was the last message, which is as good a linearization point).
func (s *stream) tailAt(ctx context.Context, end pos) (uint64, error) {
	s.mu.Lock()
	c, ok := s.ix.last, s.ix.has
	s.mu.Unlock()
	if ok && !c.At.Less(end) {
		return c.St.Tail, nil
	}
	cur, err := s.newCursor(c, ok)
	if err != nil {
		return 0, err
	}
	defer cur.r.Close()
	st, err := s.foldFrom(ctx, cur, end)
	return st.Tail, err
}

// read returns the committed entries from `from`, at most maxEntries.
func (s *stream) read(ctx context.Context, from uint64, maxEntries int) (model.LogResponse, error) {
	if from == 0 {
		from = 1
	}
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	if err := acquireSem(ctx, s.rd); err != nil {
		return model.LogResponse{}, err
	}
	defer releaseSem(s.rd)
	s.loadCheckpoint(ctx)

	cur := s.cur
	s.mu.Lock()
	c, ok := s.ix.floor(from - 1)
	s.mu.Unlock()
	// Keep the sequential cursor if it has not passed from-1 and no
	// checkpoint lets a new reader skip more of the way.
	if cur != nil && (cur.St.Tail > from-1 || (ok && cur.St.Tail < c.St.Tail && cur.At.Less(c.At))) {
		cur.r.Close()
		cur, s.cur = nil, nil
	}
	reused := cur != nil
	if cur == nil {
		var err error
		if cur, err = s.newCursor(c, ok); err != nil {
			return model.LogResponse{}, err
		}
		s.cur = cur
	}
	end, nonEmpty, err := s.lastPos(ctx, cur.r)
	if err != nil {
		s.dropCursor()
		return model.LogResponse{}, err
	}
	if reused && nonEmpty && (!cur.Started || end.Ledger != cur.At.Ledger) {
		// The topic moved to another ledger since this reader last read
		// (a takeover unloads the topic, and the broker reopens it on a
		// new ledger), or the reader read nothing yet: its reconnect may
		// have dropped the messages it had queued (pulsar-client-go
		// v0.21.0 resumed a reader past them after an unload: found by
		// fidelity.TestLogFidelityPulsar, a read answering tail 0 on a
		// stream with entries). A fresh reader from the checkpoint reads
		// them again.
		s.dropCursor()
		if cur, err = s.newCursor(c, ok); err != nil {
			return model.LogResponse{}, err
		}
		s.cur = cur
		if end, nonEmpty, err = s.lastPos(ctx, cur.r); err != nil {
			s.dropCursor()
			return model.LogResponse{}, err
		}
	}
	s.trace("read from %d: reused %v, cursor at %v (tail %d), end %v %v", from, reused, cur.At, cur.St.Tail, end, nonEmpty)
	var entries []model.LogEntry
	for nonEmpty && len(entries) < maxEntries && !cur.Passed(end) {
		e, err := s.step(ctx, cur)
		if err != nil {
			s.dropCursor()
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return model.LogResponse{}, fmt.Errorf("scan from %v to %v: %w", cur.At, end, err)
			}
			return model.LogResponse{}, fmt.Errorf("scan: %w", err)
		}
		if e != nil && e.LSN >= from {
			entries = append(entries, *e)
		}
	}
	s.note(cur.St)
	tail := cur.St.Tail // exact when the read reached end (as of the start of the read)
	if nonEmpty && !cur.Passed(end) {
		// Stopped at maxEntries: the tail at end comes from the index or a
		// fold of what lies between the index's latest checkpoint and end
		// (done once; later reads find it in the index).
		if tail, err = s.tailAt(ctx, end); err != nil {
			return model.LogResponse{}, fmt.Errorf("tail at %v: %w", end, err)
		}
	}
	return model.LogResponse{TailLSN: tail, Entries: entries}, nil
}

func (s *stream) dropCursor() {
	if s.cur != nil {
		s.cur.r.Close()
		s.cur = nil
	}
}
