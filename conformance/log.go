package conformance

import (
	"bytes"
	"fmt"

	"territory/model"
)

// LogService is one replicated log (simulated bookies, the dev log, Pulsar)
// as the log suite sees it. Each case gets a fresh service: stream ids are
// the case's own.
type LogService interface {
	// Client returns a new writer process on the log (its own connection
	// and producer, where the implementation has them).
	Client() LogClient
}

// LogClient is one process using the log.
type LogClient interface {
	// Do runs one request and waits for its answer. A ServiceErr is a
	// definite answer; a non-nil error an unknown outcome (the case fails).
	Do(req model.LogRequest) (model.LogResponse, model.ServiceErr, error)
	// Send issues req and loses its answer: either the request is lost on
	// the way, or it goes to the log and its acknowledgement is lost (the
	// adapter picks; both must happen over successive calls). Send may
	// return while the request is still in flight.
	Send(req model.LogRequest)
}

// LogRestarter is a LogService that can stop and restart the whole log
// (Restart capability).
type LogRestarter interface {
	Restart() error
}

// LogNodeLoser is a LogService that can lose one storage node holding the
// stream (Replication capability).
type LogNodeLoser interface {
	LoseNode(stream uint32) error
}

// Exception names a documented difference of one implementation from the
// others, which a case accepts only from a service that declares it (through
// LogExceptions) with the reason it is safe.
type Exception string

// FencedRetryMayAnswerOK: a writer that was fenced retries an append of
// its own whose acknowledgement was lost and which did land before the new
// writer's open. The simulated and dev logs answer ErrFenced (the epoch is
// checked first). runtime/pulsarlog answers OK when its process has not yet
// noticed the fencing (its tenure looks healthy and the entry is in its cache
// of recent acknowledgements). Both answers are true: the entry is committed,
// at that LSN, with that data, inside the tail the new writer's open returned,
// so acknowledging it loses nothing and the single-writer rule holds (it
// committed before the higher epoch opened). The old writer learns of the
// fencing on its next append. A retry of an entry that did NOT land must be
// fenced everywhere (the case checks it).
const FencedRetryMayAnswerOK Exception = "fenced-retry-may-answer-ok"

// LogExceptions is a LogService that declares documented differences.
type LogExceptions interface {
	Exceptions() map[Exception]string
}

func allows(svc LogService, e Exception) bool {
	x, ok := svc.(LogExceptions)
	if !ok {
		return false
	}
	_, ok = x.Exceptions()[e]
	return ok
}

// LogCases is the log suite.
func LogCases() []Case[LogService] {
	return []Case[LogService]{
		{Name: "open-empty", Run: logOpenEmpty},
		{Name: "append-read", Run: logAppendRead},
		{Name: "read-paging", Run: logReadPaging},
		{Name: "append-rules", Run: logAppendRules},
		{Name: "fencing", Run: logFencing},
		{Name: "lost-ack-then-fence", Run: logLostAckFence},
		{Name: "lost-ack-retry", Run: logLostAckRetry},
		{Name: "streams-independent", Run: logStreams},
		{Name: "new-client-reads", Run: logNewClient},
		{Name: "node-loss", Needs: Replication, Run: logNodeLoss},
		{Name: "restart", Needs: Restart, Run: logRestart},
	}
}

// ---- helpers ----

func describeLog(r model.LogRequest) string {
	switch r.Kind {
	case model.LogOpen:
		return fmt.Sprintf("open(stream %d, epoch %d)", r.Stream, r.Epoch)
	case model.LogAppend:
		return fmt.Sprintf("append(stream %d, epoch %d, lsn %d)", r.Stream, r.Epoch, r.LSN)
	}
	return fmt.Sprintf("read(stream %d, from %d, max %d)", r.Stream, r.FromLSN, r.MaxEntries)
}

func ldo(c LogClient, req model.LogRequest, want model.ServiceErr) (model.LogResponse, error) {
	r, se, err := c.Do(req)
	if err != nil {
		return r, errf("%s: unknown outcome: %v", describeLog(req), err)
	}
	if se != want {
		return r, errf("%s: answered %v, want %v", describeLog(req), se, want)
	}
	return r, nil
}

func lopen(c LogClient, stream uint32, epoch uint64) (uint64, error) {
	r, err := ldo(c, model.LogRequest{Kind: model.LogOpen, Stream: stream, Epoch: epoch}, model.ErrNone)
	return r.TailLSN, err
}

func appendReq(stream uint32, epoch, lsn uint64, data []byte) model.LogRequest {
	return model.LogRequest{Kind: model.LogAppend, Stream: stream, Epoch: epoch, LSN: lsn, Data: data}
}

func lappend(c LogClient, stream uint32, epoch, lsn uint64, data []byte) error {
	r, err := ldo(c, appendReq(stream, epoch, lsn, data), model.ErrNone)
	if err != nil {
		return err
	}
	if r.LSN != lsn {
		return errf("append at LSN %d answered LSN %d", lsn, r.LSN)
	}
	if r.TailLSN < lsn {
		return errf("append at LSN %d answered tail %d: acknowledged before it committed", lsn, r.TailLSN)
	}
	return nil
}

func entry(stream uint32, epoch, lsn uint64) []byte {
	return fmt.Appendf(nil, "s%d-e%d-lsn%d", stream, epoch, lsn)
}

// readAll reads from LSN from to the tail in batches of max (0: the
// implementation's default) and returns the entries and the tail.
func readAll(c LogClient, stream uint32, from uint64, max int) ([]model.LogEntry, uint64, error) {
	var out []model.LogEntry
	for range 10000 {
		r, err := ldo(c, model.LogRequest{Kind: model.LogRead, Stream: stream, FromLSN: from, MaxEntries: max}, model.ErrNone)
		if err != nil {
			return nil, 0, err
		}
		if max > 0 && len(r.Entries) > max {
			return nil, 0, errf("read from %d with max %d returned %d entries", from, max, len(r.Entries))
		}
		out = append(out, r.Entries...)
		if len(r.Entries) == 0 {
			if from <= r.TailLSN {
				return nil, 0, errf("read from %d returned nothing below the tail %d", from, r.TailLSN)
			}
			return out, r.TailLSN, nil
		}
		from = r.Entries[len(r.Entries)-1].LSN + 1
		if from > r.TailLSN {
			return out, r.TailLSN, nil
		}
	}
	return nil, 0, errf("read of stream %d does not end", stream)
}

// wantLog reads the whole stream and compares it with want (want[i] is the
// data at LSN i+1).
func wantLog(c LogClient, stream uint32, want [][]byte) error {
	got, tail, err := readAll(c, stream, 1, 0)
	if err != nil {
		return err
	}
	if tail != uint64(len(want)) {
		return errf("stream %d: tail %d, want %d", stream, tail, len(want))
	}
	return sameEntries(fmt.Sprintf("stream %d", stream), got, 1, want)
}

func sameEntries(what string, got []model.LogEntry, from uint64, want [][]byte) error {
	if len(got) != len(want) {
		return errf("%s: %d entries from LSN %d, want %d", what, len(got), from, len(want))
	}
	for i, e := range got {
		if e.LSN != from+uint64(i) {
			return errf("%s: entry %d has LSN %d, want %d", what, i, e.LSN, from+uint64(i))
		}
		if !bytes.Equal(e.Data, want[i]) {
			return errf("%s: LSN %d holds %q, want %q", what, e.LSN, e.Data, want[i])
		}
	}
	return nil
}

// ---- cases ----

// logOpenEmpty: a stream nobody wrote opens at tail 0 and reads empty.
func logOpenEmpty(svc LogService, _ string) error {
	c := svc.Client()
	tail, err := lopen(c, 3, 1)
	if err != nil {
		return err
	}
	if tail != 0 {
		return errf("open of a new stream: tail %d, want 0", tail)
	}
	return wantLog(c, 3, nil)
}

// logAppendRead: appends at tail+1 are acknowledged with their LSN; a read
// from an LSN returns the entries from there, at most MaxEntries, with the
// committed tail; FromLSN 0 reads from 1.
func logAppendRead(svc LogService, _ string) error {
	c := svc.Client()
	const s = 1
	if _, err := lopen(c, s, 1); err != nil {
		return err
	}
	var want [][]byte
	for lsn := uint64(1); lsn <= 5; lsn++ {
		d := entry(s, 1, lsn)
		if err := lappend(c, s, 1, lsn, d); err != nil {
			return err
		}
		want = append(want, d)
	}
	if err := wantLog(c, s, want); err != nil {
		return err
	}
	r, err := ldo(c, model.LogRequest{Kind: model.LogRead, Stream: s, FromLSN: 3}, model.ErrNone)
	if err != nil {
		return err
	}
	if r.TailLSN != 5 {
		return errf("read from 3: tail %d, want 5", r.TailLSN)
	}
	if err := sameEntries("read from 3", r.Entries, 3, want[2:]); err != nil {
		return err
	}
	r, err = ldo(c, model.LogRequest{Kind: model.LogRead, Stream: s, FromLSN: 2, MaxEntries: 2}, model.ErrNone)
	if err != nil {
		return err
	}
	if err := sameEntries("read from 2, max 2", r.Entries, 2, want[1:3]); err != nil {
		return err
	}
	if r.TailLSN != 5 {
		return errf("read from 2, max 2: tail %d, want 5", r.TailLSN)
	}
	r, err = ldo(c, model.LogRequest{Kind: model.LogRead, Stream: s, FromLSN: 0, MaxEntries: 2}, model.ErrNone)
	if err != nil {
		return err
	}
	if err := sameEntries("read from 0 (LSNs start at 1)", r.Entries, 1, want[:2]); err != nil {
		return err
	}
	r, err = ldo(c, model.LogRequest{Kind: model.LogRead, Stream: s, FromLSN: 6}, model.ErrNone)
	if err != nil {
		return err
	}
	if len(r.Entries) != 0 || r.TailLSN != 5 {
		return errf("read from past the tail: %d entries, tail %d; want none, 5", len(r.Entries), r.TailLSN)
	}
	return nil
}

// logReadPaging: 40 entries read in pages of 7 come back exactly, in order.
func logReadPaging(svc LogService, _ string) error {
	c := svc.Client()
	const s = 2
	if _, err := lopen(c, s, 4); err != nil {
		return err
	}
	var want [][]byte
	for lsn := uint64(1); lsn <= 40; lsn++ {
		d := bytes.Repeat(entry(s, 4, lsn), int(lsn%5)+1)
		if err := lappend(c, s, 4, lsn, d); err != nil {
			return err
		}
		want = append(want, d)
	}
	got, tail, err := readAll(c, s, 1, 7)
	if err != nil {
		return err
	}
	if tail != 40 {
		return errf("tail %d, want 40", tail)
	}
	if err := sameEntries("paged read", got, 1, want); err != nil {
		return err
	}
	got, _, err = readAll(c, s, 33, 3)
	if err != nil {
		return err
	}
	return sameEntries("paged read from 33", got, 33, want[32:])
}

// logAppendRules: a retried append of a committed entry with the same data is
// acknowledged again and stored once; different data at a taken LSN is a
// conflict; an LSN beyond tail+1 is a gap; a refused append writes nothing.
func logAppendRules(svc LogService, _ string) error {
	c := svc.Client()
	const s = 5
	if _, err := lopen(c, s, 2); err != nil {
		return err
	}
	var want [][]byte
	for lsn := uint64(1); lsn <= 3; lsn++ {
		want = append(want, entry(s, 2, lsn))
		if err := lappend(c, s, 2, lsn, want[lsn-1]); err != nil {
			return err
		}
	}
	for _, lsn := range []uint64{3, 1} {
		if err := lappend(c, s, 2, lsn, want[lsn-1]); err != nil {
			return errf("retry of committed LSN %d with the same data: %v", lsn, err)
		}
	}
	if _, err := ldo(c, appendReq(s, 2, 2, []byte("other")), model.ErrLSNConflict); err != nil {
		return err
	}
	if _, err := ldo(c, appendReq(s, 2, 5, []byte("gap")), model.ErrLSNGap); err != nil {
		return err
	}
	if err := wantLog(c, s, want); err != nil {
		return errf("after refused appends: %v", err)
	}
	want = append(want, entry(s, 2, 4))
	if err := lappend(c, s, 2, 4, want[3]); err != nil {
		return err
	}
	return wantLog(c, s, want)
}

// logFencing: opening at a higher epoch fences every older writer: its
// appends and its reopen fail with ErrFenced, even for an entry it committed
// itself; the new writer continues at the tail the open returned; reopening at
// the current epoch is allowed, and an append at an epoch nobody opened is
// fenced.
func logFencing(svc LogService, _ string) error {
	a, b := svc.Client(), svc.Client()
	const s = 9
	if _, err := lopen(a, s, 1); err != nil {
		return err
	}
	want := [][]byte{entry(s, 1, 1), entry(s, 1, 2)}
	for i, d := range want {
		if err := lappend(a, s, 1, uint64(i+1), d); err != nil {
			return err
		}
	}
	tail, err := lopen(b, s, 2)
	if err != nil {
		return err
	}
	if tail != 2 {
		return errf("open at epoch 2: tail %d, want 2", tail)
	}
	if _, err := ldo(a, appendReq(s, 1, 3, entry(s, 1, 3)), model.ErrFenced); err != nil {
		return errf("the older writer appends after the open: %v", err)
	}
	if _, err := ldo(a, appendReq(s, 1, 2, want[1]), model.ErrFenced); err != nil {
		return errf("the older writer retries its own committed entry: %v", err)
	}
	if _, err := ldo(a, model.LogRequest{Kind: model.LogOpen, Stream: s, Epoch: 1}, model.ErrFenced); err != nil {
		return errf("reopen at the older epoch: %v", err)
	}
	want = append(want, entry(s, 2, 3))
	if err := lappend(b, s, 2, 3, want[2]); err != nil {
		return err
	}
	if tail, err := lopen(b, s, 2); err != nil || tail != 3 {
		return errf("reopen at the current epoch 2: tail %d, err %v; want 3", tail, err)
	}
	if _, err := ldo(b, appendReq(s, 3, 4, entry(s, 3, 4)), model.ErrFenced); err != nil {
		return errf("append at epoch 3, never opened: %v", err)
	}
	want = append(want, entry(s, 2, 4))
	if err := lappend(b, s, 2, 4, want[3]); err != nil {
		return err
	}
	if err := wantLog(a, s, want); err != nil {
		return errf("read by the fenced writer: %v", err)
	}
	return nil
}

// logLostAckFence: an append whose acknowledgement was lost, then a new
// writer opens at a higher epoch. The open's tail says whether the append
// landed, a read agrees, and it never lands later: the new writer's next
// append takes the next LSN, and the old writer's retry is fenced. Twice,
// so that an alternating adapter loses the request once and the ack once.
func logLostAckFence(svc LogService, _ string) error {
	for round, s := range []uint32{11, 12, 13, 14} {
		a, b := svc.Client(), svc.Client()
		if _, err := lopen(a, s, 1); err != nil {
			return err
		}
		want := [][]byte{entry(s, 1, 1)}
		if err := lappend(a, s, 1, 1, want[0]); err != nil {
			return err
		}
		lost := entry(s, 1, 2)
		a.Send(appendReq(s, 1, 2, lost))
		tail, err := lopen(b, s, 2)
		if err != nil {
			return err
		}
		switch tail {
		case 1:
		case 2:
			want = append(want, lost)
		default:
			return errf("round %d: open after a lost append at LSN 2: tail %d, want 1 or 2", round, tail)
		}
		if err := wantLog(b, s, want); err != nil {
			return errf("round %d, read after the open (tail %d): %v", round, tail, err)
		}
		next := entry(s, 2, tail+1)
		if err := lappend(b, s, 2, tail+1, next); err != nil {
			return errf("round %d: %v", round, err)
		}
		want = append(want, next)
		// The old writer retries its lost append: fenced (but see
		// FencedRetryMayAnswerOK when it had landed).
		r, se, err := a.Do(appendReq(s, 1, 2, lost))
		switch {
		case err != nil:
			return errf("round %d: the old writer retries its lost append: unknown outcome: %v", round, err)
		case se == model.ErrFenced:
		case se == model.ErrNone && tail == 2 && r.LSN == 2 && allows(svc, FencedRetryMayAnswerOK):
		default:
			return errf("round %d: the old writer retries its lost append (landed: %v): answered %v at LSN %d, want %v",
				round, tail == 2, se, r.LSN, model.ErrFenced)
		}
		if err := wantLog(a, s, want); err != nil {
			return errf("round %d, final read: %v", round, err)
		}
	}
	return nil
}

// logLostAckRetry: an append whose acknowledgement was lost is retried with
// the same LSN, epoch and data: the retry is acknowledged and the entry is
// stored exactly once, whether or not the first attempt landed.
func logLostAckRetry(svc LogService, _ string) error {
	c := svc.Client()
	const s = 21
	if _, err := lopen(c, s, 3); err != nil {
		return err
	}
	var want [][]byte
	for lsn := uint64(1); lsn <= 6; lsn++ {
		d := entry(s, 3, lsn)
		want = append(want, d)
		if lsn%2 == 0 {
			c.Send(appendReq(s, 3, lsn, d))
		}
		if err := lappend(c, s, 3, lsn, d); err != nil {
			return errf("append (a retry for even LSNs): %v", err)
		}
	}
	return wantLog(c, s, want)
}

// logStreams: streams have their own epochs and LSNs: a stream opens at an
// epoch below another stream's, and fencing one stream fences no other.
func logStreams(svc LogService, _ string) error {
	a, b := svc.Client(), svc.Client()
	for _, o := range []struct {
		s uint32
		e uint64
	}{{31, 5}, {32, 1}, {33, 1}} {
		if _, err := lopen(a, o.s, o.e); err != nil {
			return err
		}
		if err := lappend(a, o.s, o.e, 1, entry(o.s, o.e, 1)); err != nil {
			return err
		}
	}
	if _, err := lopen(b, 32, 2); err != nil {
		return err
	}
	if err := lappend(a, 31, 5, 2, entry(31, 5, 2)); err != nil {
		return errf("fencing stream 32 fenced stream 31: %v", err)
	}
	if err := lappend(a, 33, 1, 2, entry(33, 1, 2)); err != nil {
		return errf("fencing stream 32 fenced stream 33: %v", err)
	}
	if _, err := ldo(a, appendReq(32, 1, 2, entry(32, 1, 2)), model.ErrFenced); err != nil {
		return err
	}
	if err := wantLog(b, 31, [][]byte{entry(31, 5, 1), entry(31, 5, 2)}); err != nil {
		return err
	}
	if err := wantLog(b, 33, [][]byte{entry(33, 1, 1), entry(33, 1, 2)}); err != nil {
		return err
	}
	return wantLog(b, 32, [][]byte{entry(32, 1, 1)})
}

// logNewClient: a process that starts later reads everything committed and
// opens at the committed tail.
func logNewClient(svc LogService, _ string) error {
	a := svc.Client()
	const s = 41
	if _, err := lopen(a, s, 1); err != nil {
		return err
	}
	var want [][]byte
	for lsn := uint64(1); lsn <= 4; lsn++ {
		want = append(want, entry(s, 1, lsn))
		if err := lappend(a, s, 1, lsn, want[lsn-1]); err != nil {
			return err
		}
	}
	c := svc.Client()
	if err := wantLog(c, s, want); err != nil {
		return err
	}
	tail, err := lopen(c, s, 2)
	if err != nil || tail != 4 {
		return errf("open by a new process: tail %d, err %v; want 4", tail, err)
	}
	return nil
}

// logNodeLoss: after one storage node of the stream is lost, appends still
// commit and every committed entry is still read.
func logNodeLoss(svc LogService, _ string) error {
	nl, ok := svc.(LogNodeLoser)
	if !ok {
		return errf("the service declares node loss but does not implement LogNodeLoser")
	}
	c := svc.Client()
	const s = 51
	if _, err := lopen(c, s, 1); err != nil {
		return err
	}
	var want [][]byte
	for lsn := uint64(1); lsn <= 6; lsn++ {
		if lsn == 4 {
			if err := nl.LoseNode(s); err != nil {
				return err
			}
		}
		want = append(want, entry(s, 1, lsn))
		if err := lappend(c, s, 1, lsn, want[lsn-1]); err != nil {
			return errf("after losing a node: %v", err)
		}
	}
	return wantLog(svc.Client(), s, want)
}

// logRestart: a restarted log keeps every committed entry and every epoch.
func logRestart(svc LogService, _ string) error {
	rs, ok := svc.(LogRestarter)
	if !ok {
		return errf("the service declares restart but does not implement LogRestarter")
	}
	c := svc.Client()
	const s = 61
	if _, err := lopen(c, s, 3); err != nil {
		return err
	}
	want := [][]byte{entry(s, 3, 1), entry(s, 3, 2)}
	for i, d := range want {
		if err := lappend(c, s, 3, uint64(i+1), d); err != nil {
			return err
		}
	}
	if err := rs.Restart(); err != nil {
		return err
	}
	c = svc.Client()
	if err := wantLog(c, s, want); err != nil {
		return errf("after the restart: %v", err)
	}
	if _, err := ldo(c, model.LogRequest{Kind: model.LogOpen, Stream: s, Epoch: 2}, model.ErrFenced); err != nil {
		return errf("after the restart, open below the epoch: %v", err)
	}
	if tail, err := lopen(c, s, 4); err != nil || tail != 2 {
		return errf("after the restart, open at epoch 4: tail %d, err %v; want 2", tail, err)
	}
	return nil
}
