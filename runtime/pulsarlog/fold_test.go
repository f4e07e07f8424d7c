package pulsarlog

import (
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []record{
		{kind: kindData, stream: 7, epoch: 3, lsn: 42},
		{kind: kindOpen, stream: 0, epoch: 1 << 60},
		{kind: kindAttach, stream: 1<<32 - 1, epoch: 0},
	} {
		got, err := decodeRecord(r.props())
		if err != nil || got != r {
			t.Fatalf("decode(%+v.props()) = %+v, %v", r, got, err)
		}
	}
	for _, p := range []map[string]string{
		nil,
		{propKind: "data", propStream: "1", propEpoch: "1"},                // no lsn
		{propKind: "data", propStream: "1", propEpoch: "1", propLSN: "0"},  // lsn 0
		{propKind: "open", propStream: "x", propEpoch: "1"},                // bad stream
		{propKind: "other", propStream: "1", propEpoch: "1", propLSN: "1"}, // unknown kind
	} {
		if _, err := decodeRecord(p); err == nil {
			t.Fatalf("decode(%v) accepted", p)
		}
	}
}

func TestFold(t *testing.T) {
	d := func(e, l uint64) record { return record{kind: kindData, epoch: e, lsn: l} }
	o := func(e uint64) record { return record{kind: kindOpen, epoch: e} }
	a := func(e uint64) record { return record{kind: kindAttach, epoch: e} }
	msgs := []struct {
		r     record
		entry bool
	}{
		{d(0, 1), true},  // epoch 0 writes without an open
		{d(0, 1), false}, // duplicate
		{o(2), false},
		{d(0, 2), false}, // stale epoch after a higher open
		{d(2, 3), false}, // orphan behind a hole
		{d(2, 2), true},
		{o(1), false},    // a lower open is ignored...
		{d(1, 3), false}, // ...and so are its writes
		{a(2), false},
		{d(2, 3), true},
		{o(2), false}, // re-open at the same epoch
		{d(2, 4), true},
	}
	var f foldState
	for i, m := range msgs {
		if got := f.apply(m.r); got != m.entry {
			t.Fatalf("message %d %+v: entry=%v, want %v (state %+v)", i, m.r, got, m.entry, f)
		}
	}
	if f != (foldState{MaxOpen: 2, Tail: 4}) {
		t.Fatalf("final state %+v", f)
	}
	if !f.admits(kindOpen, 2) || !f.admits(kindOpen, 3) || f.admits(kindOpen, 1) {
		t.Fatal("open admission wrong")
	}
	if !f.admits(kindAttach, 2) || f.admits(kindAttach, 3) || f.admits(kindAttach, 1) {
		t.Fatal("attach admission wrong")
	}
}

func TestSequenceIDs(t *testing.T) {
	// The marker of the first tenure gets sequence id 0 (nothing seen).
	g1 := genAfter(0)
	if g1 != 1 {
		t.Fatalf("genAfter(0) = %d", g1)
	}
	last := seqID(g1, 1000)
	// The next tenure's marker is last+1; its data must be above it.
	g2 := genAfter(last + 1)
	if g2 != 2 || seqID(g2, 1) <= last+1 {
		t.Fatalf("g2=%d seq=%d marker=%d", g2, seqID(g2, 1), last+1)
	}
	// Even an LSN written again after a hole is above the orphan.
	if seqID(g2, 500) <= seqID(g1, 1000) {
		t.Fatal("re-written LSN not above the previous tenure")
	}
	if seqID(maxGen, MaxLSN) < 0 {
		t.Fatal("sequence id overflow")
	}
	if genAfter(-1) != 1 {
		t.Fatal("genAfter(-1)")
	}
}

func TestIndex(t *testing.T) {
	ix := newIndex(4)
	if _, ok := ix.floor(10); ok {
		t.Fatal("empty index has a floor")
	}
	at := func(l, e int64) pos { return pos{l, e} }
	ix.add(ckpt{at(1, 0), foldState{1, 0}}, true) // a marker
	for l := uint64(1); l <= 10; l++ {
		ix.add(ckpt{at(1, int64(l)), foldState{1, l}}, false)
	}
	if ix.last.st.Tail != 10 {
		t.Fatalf("last = %+v", ix.last)
	}
	for _, c := range []struct {
		tail uint64
		want uint64
		at   pos
	}{
		{0, 0, at(1, 0)}, {3, 0, at(1, 0)}, {4, 4, at(1, 4)}, {7, 4, at(1, 4)}, {9, 8, at(1, 8)}, {10, 10, at(1, 10)}, {99, 10, at(1, 10)},
	} {
		got, ok := ix.floor(c.tail)
		if !ok || got.st.Tail != c.want || got.at != c.at {
			t.Fatalf("floor(%d) = %+v %v, want tail %d at %v", c.tail, got, ok, c.want, c.at)
		}
	}
	if got, ok := ix.before(at(1, 6)); !ok || got.at != at(1, 4) {
		t.Fatalf("before(1:6) = %+v %v", got, ok)
	}
	if _, ok := ix.before(at(1, 0)); ok {
		t.Fatal("before the first checkpoint")
	}
	if got, ok := ix.before(at(2, 0)); !ok || got.at != at(1, 10) {
		t.Fatalf("before(2:0) = %+v", got)
	}
	c := ckpt{at(12, 34), foldState{5, 678}}
	back, err := parseCkpt(c.encode())
	if err != nil || back != c {
		t.Fatalf("checkpoint round trip: %+v %v", back, err)
	}
	if _, err := parseCkpt("1:2:3"); err == nil {
		t.Fatal("short checkpoint parsed")
	}
}
