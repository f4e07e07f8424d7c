package model

import (
	"errors"
	"testing"
)

func sampleState(t testing.TB) *SubgraphState {
	n := neuronsIn(1, 4)
	f := newFolder(Policy{Epoch: 3, MaxOutDegree: 4, MaxInDegree: 4, DecayPerSecondPM: 100, SupernodeDegree: 2, SnapshotEvery: 10})
	tt := &testing.T{}
	for _, id := range n {
		f.do(tt, EvCreateNeuron, id, 0, 0, 0)
		f.do(tt, EvStimulate, id, 0, 0, int64(id)*FixedOne)
	}
	f.do(tt, EvConnect, 0, n[0], n[1], 5)
	f.do(tt, EvConnect, 0, n[1], n[2], -7)
	f.do(tt, EvHeartbeat, 0, 0, 0, 0)
	return f.s
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := sampleState(t)
	data := EncodeSnapshot(s)
	got, err := DecodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest() != s.Digest() || got.AppliedLSN != s.AppliedLSN || got.Policy != s.Policy {
		t.Fatalf("round trip changed the state")
	}
	if string(EncodeSnapshot(got)) != string(data) {
		t.Fatal("re-encoding differs: encoding is not canonical")
	}
	// The decoded state keeps folding like the original (the dedup table came along).
	ev := Event{LSN: s.AppliedLSN + 1, UUID: EventUUID{7, 1}, Subgraph: 1, Type: EvStimulate, Neuron: neuronsIn(1, 1)[0], Value: 1}
	r1, a1 := s.Clone().Apply(&ev)
	r2, a2 := got.Apply(&ev)
	if r1 != r2 || a1 != a2 {
		t.Fatalf("dedup lost in the snapshot: %+v/%v vs %+v/%v", r1, a1, r2, a2)
	}
}

func TestSnapshotRejectsCorruption(t *testing.T) {
	data := EncodeSnapshot(sampleState(t))
	for i := range data {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x10
		if _, err := DecodeSnapshot(bad); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
	}
	for n := 0; n < len(data); n += 3 {
		if _, err := DecodeSnapshot(data[:n]); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
}

func TestCloneIsIndependent(t *testing.T) {
	s := sampleState(t)
	c := s.Clone()
	d := s.Digest()
	ev := Event{LSN: c.AppliedLSN + 1, UUID: EventUUID{8, 1}, Subgraph: 1, Type: EvStimulate, Neuron: neuronsIn(1, 1)[0], Value: 1}
	c.Apply(&ev)
	if s.Digest() != d {
		t.Fatal("applying to the clone changed the original")
	}
}

func TestSnapshotRecordRoundTrip(t *testing.T) {
	r := SnapshotRecord{Subgraph: 7, UUID: "00000002-0000000a-3", State: SnapVerifying, LSN: 10, Territory: 2, Epoch: 2,
		Location: SnapshotBlobKey(7, "00000002-0000000a-3"), Checksum: 0xdeadbeef, Size: 99}
	got, err := ParseSnapshotRecord(KV{Key: SnapshotKey(7, r.UUID), Value: r.Encode(), ModRevision: 4})
	if err != nil {
		t.Fatal(err)
	}
	r.ModRevision = 4
	if got != r {
		t.Fatalf("got %+v want %+v", got, r)
	}
	for _, bad := range []KV{
		{Key: "snapshots/x/y", Value: []byte("state=COMMITTED")},
		{Key: SnapshotKey(1, "u"), Value: []byte("state=DONE")},
		{Key: SnapshotKey(1, "u"), Value: []byte("lsn=3")},
		{Key: SnapshotKey(1, "u"), Value: []byte("state=COMMITTED lsn=x")},
	} {
		if _, err := ParseSnapshotRecord(bad); err == nil {
			t.Fatalf("accepted %s=%s", bad.Key, bad.Value)
		}
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(EncodeSnapshot(sampleState(f)))
	f.Add(EncodeSnapshot(NewSubgraphState(0, 1, DefaultPolicy())))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSnapshot(data)
		if err != nil {
			return
		}
		again, err := DecodeSnapshot(EncodeSnapshot(s))
		if err != nil || again.Digest() != s.Digest() {
			t.Fatalf("a decoded snapshot does not round-trip: %v", err)
		}
	})
}
