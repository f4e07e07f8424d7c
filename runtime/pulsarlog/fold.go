package pulsarlog

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
)

// What a message of a stream's topic is. Every message carries its kind, the
// stream and the writer epoch in its properties; a data message also carries
// its LSN (its payload is the entry's data, byte for byte).
type kind uint8

const (
	kindData   kind = iota + 1 // one log entry
	kindOpen                   // LogOpen(epoch): raises the stream's epoch to epoch
	kindAttach                 // a writer at the current epoch took the producer again: raises nothing
)

const (
	propKind   = "territory.kind"
	propStream = "territory.stream"
	propEpoch  = "territory.epoch"
	propLSN    = "territory.lsn"

	// checkpointProp is the topic property holding an advisory fold checkpoint.
	checkpointProp = "territory.checkpoint"
)

var kindNames = map[kind]string{kindData: "data", kindOpen: "open", kindAttach: "attach"}

// record is the decoded header of one message.
type record struct {
	kind   kind
	stream uint32
	epoch  uint64
	lsn    uint64 // data only
}

func (r record) props() map[string]string {
	p := map[string]string{
		propKind:   kindNames[r.kind],
		propStream: strconv.FormatUint(uint64(r.stream), 10),
		propEpoch:  strconv.FormatUint(r.epoch, 10),
	}
	if r.kind == kindData {
		p[propLSN] = strconv.FormatUint(r.lsn, 10)
	}
	return p
}

var errForeign = errors.New("not a territory log message")

func decodeRecord(p map[string]string) (record, error) {
	var r record
	switch p[propKind] {
	case "data":
		r.kind = kindData
	case "open":
		r.kind = kindOpen
	case "attach":
		r.kind = kindAttach
	default:
		return r, fmt.Errorf("%w: kind %q", errForeign, p[propKind])
	}
	s, err := strconv.ParseUint(p[propStream], 10, 32)
	if err != nil {
		return r, fmt.Errorf("%w: stream: %v", errForeign, err)
	}
	r.stream = uint32(s)
	if r.epoch, err = strconv.ParseUint(p[propEpoch], 10, 64); err != nil {
		return r, fmt.Errorf("%w: epoch: %v", errForeign, err)
	}
	if r.kind == kindData {
		if r.lsn, err = strconv.ParseUint(p[propLSN], 10, 64); err != nil || r.lsn == 0 {
			return r, fmt.Errorf("%w: lsn %q", errForeign, p[propLSN])
		}
	}
	return r, nil
}

// foldState is what a reader knows after folding a prefix of the topic: the
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
//     happen while the broker keeps producer exclusivity; see the package
//     comment).
type foldState struct {
	MaxOpen uint64
	Tail    uint64
}

// apply folds one message; it reports whether the message is the next entry.
func (f *foldState) apply(r record) bool {
	switch r.kind {
	case kindOpen:
		f.MaxOpen = max(f.MaxOpen, r.epoch)
	case kindData:
		if r.epoch == f.MaxOpen && r.lsn == f.Tail+1 {
			f.Tail = r.lsn
			return true
		}
	}
	return false
}

// admits reports whether a writer's marker of kind k at epoch e, found at a
// position where the fold (before the marker) is f, makes that writer the
// stream's writer: an open needs no higher epoch before it, an attach needs
// exactly its epoch to be the current one.
func (f foldState) admits(k kind, e uint64) bool {
	if k == kindOpen {
		return f.MaxOpen <= e
	}
	return f.MaxOpen == e
}

// ---- producer sequence ids ----

// A data message's sequence id is gen<<lsnBits | LSN: the LSN in the low 40
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
	lsnBits = 40
	// MaxLSN is the highest LSN a stream can hold.
	MaxLSN = 1<<lsnBits - 1
	maxGen = 1<<(63-lsnBits) - 1
)

func seqID(gen, lsn uint64) int64 { return int64(gen<<lsnBits | lsn) }

// genAfter is the generation of a tenure whose marker got sequence id markerSeq.
func genAfter(markerSeq int64) uint64 {
	if markerSeq < 0 {
		return 1
	}
	return uint64(markerSeq)>>lsnBits + 1
}

// ---- positions and checkpoints ----

// pos is a message position in the topic (ledger, entry); non-batched
// messages only.
type pos struct{ ledger, entry int64 }

func (a pos) less(b pos) bool {
	return a.ledger < b.ledger || (a.ledger == b.ledger && a.entry < b.entry)
}

func (a pos) String() string { return fmt.Sprintf("%d:%d", a.ledger, a.entry) }

// ckpt is the fold state right after the message at pos: a reader started
// just after pos with this state folds the rest of the topic exactly as a
// reader from the beginning would.
type ckpt struct {
	at pos
	st foldState
}

func (c ckpt) encode() string {
	return fmt.Sprintf("%d:%d:%d:%d", c.at.ledger, c.at.entry, c.st.MaxOpen, c.st.Tail)
}

func parseCkpt(s string) (ckpt, error) {
	var c ckpt
	n, err := fmt.Sscanf(s, "%d:%d:%d:%d", &c.at.ledger, &c.at.entry, &c.st.MaxOpen, &c.st.Tail)
	if err != nil || n != 4 || c.at.ledger < 0 || c.at.entry < 0 {
		return ckpt{}, fmt.Errorf("bad checkpoint %q", s)
	}
	return c, nil
}

// index is the LSN→position index of one stream, learned from this
// process's own sends and reads: a sparse, sorted list of checkpoints (one
// every stride LSNs, plus every writer marker) and the latest checkpoint
// known. Committed positions never move, so an entry never goes stale.
type index struct {
	stride uint64
	cks    []ckpt // sorted by position; Tail is non-decreasing along it
	last   ckpt
	has    bool
}

func newIndex(stride uint64) *index { return &index{stride: max(stride, 1)} }

// add records c; keep forces it into the sparse list (markers).
func (ix *index) add(c ckpt, keep bool) {
	if !ix.has || ix.last.at.less(c.at) {
		ix.last, ix.has = c, true
	}
	if !keep && c.st.Tail%ix.stride != 0 {
		return
	}
	i := sort.Search(len(ix.cks), func(i int) bool { return !ix.cks[i].at.less(c.at) })
	if i < len(ix.cks) && ix.cks[i].at == c.at {
		return
	}
	ix.cks = append(ix.cks, ckpt{})
	copy(ix.cks[i+1:], ix.cks[i:])
	ix.cks[i] = c
}

// floor returns the checkpoint with the highest position whose tail is at most
// tail: a scan from it meets LSN tail+1 before any later LSN.
func (ix *index) floor(tail uint64) (ckpt, bool) {
	if ix.has && ix.last.st.Tail <= tail {
		return ix.last, true
	}
	i := sort.Search(len(ix.cks), func(i int) bool { return ix.cks[i].st.Tail > tail })
	if i == 0 {
		return ckpt{}, false
	}
	return ix.cks[i-1], true
}

// before returns the checkpoint with the highest position strictly before p.
func (ix *index) before(p pos) (ckpt, bool) {
	if ix.has && ix.last.at.less(p) {
		return ix.last, true
	}
	i := sort.Search(len(ix.cks), func(i int) bool { return !ix.cks[i].at.less(p) })
	if i == 0 {
		return ckpt{}, false
	}
	return ix.cks[i-1], true
}
