package logfence

import (
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []Record{
		{Kind: KindData, Stream: 7, Epoch: 3, LSN: 42},
		{Kind: KindOpen, Stream: 0, Epoch: 1 << 60},
		{Kind: KindAttach, Stream: 1<<32 - 1, Epoch: 0},
	} {
		got, err := DecodeRecord(r.Props())
		if err != nil || got != r {
			t.Fatalf("decode(%+v.props()) = %+v, %v", r, got, err)
		}
	}
	for _, p := range []map[string]string{
		nil,
		{PropKind: "data", PropStream: "1", PropEpoch: "1"},                // no lsn
		{PropKind: "data", PropStream: "1", PropEpoch: "1", PropLSN: "0"},  // lsn 0
		{PropKind: "open", PropStream: "x", PropEpoch: "1"},                // bad stream
		{PropKind: "other", PropStream: "1", PropEpoch: "1", PropLSN: "1"}, // unknown kind
	} {
		if _, err := DecodeRecord(p); err == nil {
			t.Fatalf("decode(%v) accepted", p)
		}
	}
}

func TestFold(t *testing.T) {
	d := func(e, l uint64) Record { return Record{Kind: KindData, Epoch: e, LSN: l} }
	o := func(e uint64) Record { return Record{Kind: KindOpen, Epoch: e} }
	a := func(e uint64) Record { return Record{Kind: KindAttach, Epoch: e} }
	msgs := []struct {
		r     Record
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
	var f Fold
	for i, m := range msgs {
		if got := f.Apply(m.r); got != m.entry {
			t.Fatalf("message %d %+v: entry=%v, want %v (state %+v)", i, m.r, got, m.entry, f)
		}
	}
	if f != (Fold{MaxOpen: 2, Tail: 4}) {
		t.Fatalf("final state %+v", f)
	}
	if !f.Admits(KindOpen, 2) || !f.Admits(KindOpen, 3) || f.Admits(KindOpen, 1) {
		t.Fatal("open admission wrong")
	}
	if !f.Admits(KindAttach, 2) || f.Admits(KindAttach, 3) || f.Admits(KindAttach, 1) {
		t.Fatal("attach admission wrong")
	}
}

func TestSequenceIDs(t *testing.T) {
	// The marker of the first tenure gets sequence id 0 (nothing seen).
	g1 := GenAfter(0)
	if g1 != 1 {
		t.Fatalf("GenAfter(0) = %d", g1)
	}
	last := SeqID(g1, 1000)
	// The next tenure's marker is last+1; its data must be above it.
	g2 := GenAfter(last + 1)
	if g2 != 2 || SeqID(g2, 1) <= last+1 {
		t.Fatalf("g2=%d seq=%d marker=%d", g2, SeqID(g2, 1), last+1)
	}
	// Even an LSN written again after a hole is above the orphan.
	if SeqID(g2, 500) <= SeqID(g1, 1000) {
		t.Fatal("re-written LSN not above the previous tenure")
	}
	if SeqID(MaxGen, MaxLSN) < 0 {
		t.Fatal("sequence id overflow")
	}
	if GenAfter(-1) != 1 {
		t.Fatal("GenAfter(-1)")
	}
}
