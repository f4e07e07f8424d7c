package pulsarlog

import (
	"testing"

	"territory/model/logfence"
)

func TestIndex(t *testing.T) {
	ix := newIndex(4)
	if _, ok := ix.floor(10); ok {
		t.Fatal("empty index has a floor")
	}
	at := func(l, e int64) pos { return pos{Ledger: l, Entry: e} }
	ix.add(ckpt{At: at(1, 0), St: logfence.Fold{MaxOpen: 1}}, true) // a marker
	for l := uint64(1); l <= 10; l++ {
		ix.add(ckpt{At: at(1, int64(l)), St: logfence.Fold{MaxOpen: 1, Tail: l}}, false)
	}
	if ix.last.St.Tail != 10 {
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
		if !ok || got.St.Tail != c.want || got.At != c.at {
			t.Fatalf("floor(%d) = %+v %v, want tail %d at %v", c.tail, got, ok, c.want, c.at)
		}
	}
	if got, ok := ix.before(at(1, 6)); !ok || got.At != at(1, 4) {
		t.Fatalf("before(1:6) = %+v %v", got, ok)
	}
	if _, ok := ix.before(at(1, 0)); ok {
		t.Fatal("before the first checkpoint")
	}
	if got, ok := ix.before(at(2, 0)); !ok || got.At != at(1, 10) {
		t.Fatalf("before(2:0) = %+v", got)
	}
	c := ckpt{At: at(12, 34), St: logfence.Fold{MaxOpen: 5, Tail: 678}}
	back, err := logfence.ParseCkpt(c.Encode())
	if err != nil || back != c {
		t.Fatalf("checkpoint round trip: %+v %v", back, err)
	}
	if _, err := logfence.ParseCkpt("1:2:3"); err == nil {
		t.Fatal("short checkpoint parsed")
	}
}
