// Package logfence is the sans-IO fencing protocol of the production log:
// one Pulsar topic per stream, written through an exclusive producer, whose
// contents are defined by a fold over its messages. It decides who may write
// a stream and what the stream holds; drivers (runtime/pulsarlog on a real
// topic, the simulator on sim/pulsartopic) perform the I/O it asks for and
// feed the results back.
//
// # Messages
//
// Every message of a stream's topic is one of
//
//	data(epoch, LSN)  payload = the entry's data
//	open(epoch)       LogOpen: raises the stream's epoch
//	attach(epoch)     the writer of the current epoch took the producer again
//
// and carries its kind, stream and epoch (and a data message its LSN) in its
// properties (Record.Props). The contents of a stream are the fold of its
// messages in topic order (Fold.Apply): a data message is the entry at LSN L
// iff its epoch is the highest opened so far and L is the tail + 1.
// Everything else (duplicates, orphans behind a hole, stale epochs) is
// skipped by every reader.
//
// # Writers
//
// Writer (writer.go) is one process's view of a stream: its tenure (the
// interval in which it holds the exclusive producer), the appends in flight,
// and the attach procedure that makes it the writer of an epoch: take the
// producer (checking the log and unloading the topic when another holder has
// it), send the marker, fold the topic up to the marker and check that the
// fold before it admits the marker (Fold.Admits). See runtime/pulsarlog's
// package comment for the broker guarantees this rests on and the proof that
// no stale entry is persisted after a newer open.
package logfence

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kind is what a message of a stream's topic is.
type Kind uint8

const (
	KindData   Kind = iota + 1 // one log entry
	KindOpen                   // LogOpen(epoch): raises the stream's epoch to epoch
	KindAttach                 // a writer at the current epoch took the producer again: raises nothing
)

// Message property names.
const (
	PropKind   = "territory.kind"
	PropStream = "territory.stream"
	PropEpoch  = "territory.epoch"
	PropLSN    = "territory.lsn"
)

func (k Kind) String() string {
	switch k {
	case KindData:
		return "data"
	case KindOpen:
		return "open"
	case KindAttach:
		return "attach"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Record is the decoded header of one message.
type Record struct {
	Kind   Kind
	Stream uint32
	Epoch  uint64
	LSN    uint64 // data only
}

// Props encodes r as message properties.
func (r Record) Props() map[string]string {
	p := map[string]string{
		PropKind:   r.Kind.String(),
		PropStream: strconv.FormatUint(uint64(r.Stream), 10),
		PropEpoch:  strconv.FormatUint(r.Epoch, 10),
	}
	if r.Kind == KindData {
		p[PropLSN] = strconv.FormatUint(r.LSN, 10)
	}
	return p
}

// ErrForeign: a message that is not one of ours (never an entry).
var ErrForeign = errors.New("not a territory log message")

// DecodeRecord decodes message properties; foreign messages give ErrForeign.
func DecodeRecord(p map[string]string) (Record, error) {
	var r Record
	switch p[PropKind] {
	case "data":
		r.Kind = KindData
	case "open":
		r.Kind = KindOpen
	case "attach":
		r.Kind = KindAttach
	default:
		return r, fmt.Errorf("%w: kind %q", ErrForeign, p[PropKind])
	}
	s, err := strconv.ParseUint(p[PropStream], 10, 32)
	if err != nil {
		return r, fmt.Errorf("%w: stream: %v", ErrForeign, err)
	}
	r.Stream = uint32(s)
	if r.Epoch, err = strconv.ParseUint(p[PropEpoch], 10, 64); err != nil {
		return r, fmt.Errorf("%w: epoch: %v", ErrForeign, err)
	}
	if r.Kind == KindData {
		if r.LSN, err = strconv.ParseUint(p[PropLSN], 10, 64); err != nil || r.LSN == 0 {
			return r, fmt.Errorf("%w: lsn %q", ErrForeign, p[PropLSN])
		}
	}
	return r, nil
}

// Fold is what a reader knows after folding a prefix of the topic: the
// highest epoch opened so far and the committed tail.
//
// The fold is the single definition of the stream's contents; writers and
// readers apply the same rules:
//   - open(E) raises MaxOpen to E if E is higher; a lower one is ignored (its
//     writer sees the higher open before its own marker and gives up);
//   - attach(E) changes nothing;
//   - data(E, L) is the entry at LSN L iff E == MaxOpen and L == Tail+1.
//     Anything else is not an entry: a duplicate of a committed LSN (L ≤ Tail),
//     an orphan behind a hole (L > Tail+1: a send failed while later ones of
//     the same producer landed; its writer was never acknowledged and
//     re-validates before writing again), or a write at a stale epoch (cannot
//     happen while the broker keeps producer exclusivity).
type Fold struct {
	MaxOpen uint64
	Tail    uint64
}

// Apply folds one message; it reports whether the message is the next entry.
func (f *Fold) Apply(r Record) bool {
	switch r.Kind {
	case KindOpen:
		f.MaxOpen = max(f.MaxOpen, r.Epoch)
	case KindData:
		if r.Epoch == f.MaxOpen && r.LSN == f.Tail+1 {
			f.Tail = r.LSN
			return true
		}
	}
	return false
}

// Admits reports whether a writer's marker of kind k at epoch e, found at a
// position where the fold (before the marker) is f, makes that writer the
// stream's writer: an open needs no higher epoch before it, an attach needs
// exactly its epoch to be the current one.
func (f Fold) Admits(k Kind, e uint64) bool {
	if k == KindOpen {
		return f.MaxOpen <= e
	}
	return f.MaxOpen == e
}

// ---- producer sequence ids ----

// A data message's sequence id is gen<<LSNBits | LSN: the LSN in the low 40
// bits, the writer generation (one per producer tenure) above. The broker
// deduplicates on (producer name, sequence id) and every writer of a stream
// uses the same producer name, so:
//   - a re-send of the same LSN within one tenure (the client re-sending its
//     pending messages after a reconnect) is dropped by the broker and
//     acknowledged: idempotent;
//   - a later tenure starts above every sequence id the broker has seen (its
//     marker takes the broker's last sequence id + 1, and its generation is
//     derived from the marker's), so an LSN that has to be written again after
//     a failed tenure (an orphan behind a hole) is not mistaken for a
//     duplicate.
const (
	LSNBits = 40
	// MaxLSN is the highest LSN a stream can hold.
	MaxLSN = 1<<LSNBits - 1
	MaxGen = 1<<(63-LSNBits) - 1
)

// SeqID is the sequence id of data(_, lsn) sent in generation gen.
func SeqID(gen, lsn uint64) int64 { return int64(gen<<LSNBits | lsn) }

// GenAfter is the generation of a tenure whose marker got sequence id markerSeq.
func GenAfter(markerSeq int64) uint64 {
	if markerSeq < 0 {
		return 1
	}
	return uint64(markerSeq)>>LSNBits + 1
}

// ---- positions and checkpoints ----

// Pos is a message position in the topic (ledger, entry); non-batched
// messages only. An Entry below 0 means "no position" (a deduplicated send).
type Pos struct{ Ledger, Entry int64 }

// Less orders positions as the topic does.
func (a Pos) Less(b Pos) bool {
	return a.Ledger < b.Ledger || (a.Ledger == b.Ledger && a.Entry < b.Entry)
}

func (a Pos) String() string { return fmt.Sprintf("%d:%d", a.Ledger, a.Entry) }

// Ckpt is the fold state right after the message at At: a reader started
// just after At with this state folds the rest of the topic exactly as a
// reader from the beginning would.
type Ckpt struct {
	At Pos
	St Fold
}

// Encode writes c as "ledger:entry:maxopen:tail".
func (c Ckpt) Encode() string {
	return fmt.Sprintf("%d:%d:%d:%d", c.At.Ledger, c.At.Entry, c.St.MaxOpen, c.St.Tail)
}

// ParseCkpt reads what Encode wrote.
func ParseCkpt(s string) (Ckpt, error) {
	f := strings.Split(s, ":")
	if len(f) != 4 {
		return Ckpt{}, fmt.Errorf("bad checkpoint %q", s)
	}
	var c Ckpt
	var err [4]error
	c.At.Ledger, err[0] = strconv.ParseInt(f[0], 10, 64)
	c.At.Entry, err[1] = strconv.ParseInt(f[1], 10, 64)
	c.St.MaxOpen, err[2] = strconv.ParseUint(f[2], 10, 64)
	c.St.Tail, err[3] = strconv.ParseUint(f[3], 10, 64)
	if errors.Join(err[:]...) != nil || c.At.Ledger < 0 || c.At.Entry < 0 {
		return Ckpt{}, fmt.Errorf("bad checkpoint %q", s)
	}
	return c, nil
}

// Cursor folds a topic read in order, message by message. It skips
// redeliveries (a message at or before the last position folded: readers
// may see one after a reconnect) and messages that are not ours.
type Cursor struct {
	St Fold
	At Pos // position of the last message folded (or of the start checkpoint)
	// Started: At is meaningful (false: the cursor starts at the beginning).
	Started bool
}

// CursorAfter starts a cursor just after checkpoint c.
func CursorAfter(c Ckpt) Cursor { return Cursor{St: c.St, At: c.At, Started: true} }

// Step folds the message at at; entry reports whether it is the next entry
// (its LSN is rec.LSN), fresh whether it was folded at all (false: a
// redelivery).
func (c *Cursor) Step(at Pos, props map[string]string, stream uint32) (rec Record, entry, fresh bool) {
	if c.Started && !c.At.Less(at) {
		return Record{}, false, false
	}
	c.At, c.Started = at, true
	rec, err := DecodeRecord(props)
	if err != nil || rec.Stream != stream {
		return Record{}, false, true
	}
	return rec, c.St.Apply(rec), true
}

// Passed reports whether the cursor has folded the message at end.
func (c *Cursor) Passed(end Pos) bool { return c.Started && !c.At.Less(end) }
