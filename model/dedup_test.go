package model

import (
	"os"
	"testing"
)

// stimulateAt logs a stimulate of neuron n stamped tsMs under uuid id.
func stimulateAt(s *SubgraphState, n NeuronID, id EventUUID, tsMs int64) (Result, bool) {
	ev := Event{LSN: s.AppliedLSN + 1, UUID: id, Subgraph: s.ID, Type: EvStimulate, Neuron: n, Value: 1, TimestampMs: tsMs}
	return s.Apply(&ev)
}

func dedupState(t *testing.T) (*SubgraphState, NeuronID) {
	t.Helper()
	s := NewSubgraphState(1, testSubgraphs, DefaultPolicy())
	n := neuronsIn(1, 1)[0]
	s.Apply(&Event{LSN: 1, UUID: EventUUID{9, 9}, Subgraph: 1, Type: EvCreateNeuron, Neuron: n})
	return s, n
}

// TestDedupAtTenTimesTheRate: 8,200 writes per second on one subgraph, ten
// times the rate at which the old table of 4,096 writes forgot a request
// within a 5 s client deadline. A retry of the first write, logged again just
// before the longest deadline a client may have, is answered with the
// original result and applied once; the table keeps every write of the
// window and no more.
func TestDedupAtTenTimesTheRate(t *testing.T) {
	s, n := dedupState(t)
	const ratePerS = 8_200
	first := EventUUID{1, 1}
	orig, applied := stimulateAt(s, n, first, 0)
	if !applied || orig.Status != StatusOK {
		t.Fatalf("first write: %+v %v", orig, applied)
	}
	writes := int64(ratePerS) * MaxOpDeadlineMs / 1000
	for i := int64(1); i < writes; i++ {
		stimulateAt(s, n, EventUUID{1, uint64(i + 1)}, i*1000/ratePerS)
	}
	before, _ := s.Neuron(n)
	r, applied := stimulateAt(s, n, first, MaxOpDeadlineMs-1)
	after, _ := s.Neuron(n)
	if applied || r != orig || after != before {
		t.Fatalf("a retry after %d writes in %d ms applied again: %+v applied=%v, potential %d -> %d", writes, MaxOpDeadlineMs, r, applied, before.Potential, after.Potential)
	}
	if got := s.dedup.len(); got != int(writes)+1 { // the create and the writes; a deduplicated retry adds none
		t.Fatalf("table holds %d entries, want the %d of the window", got, writes+1)
	}
	if err := s.CheckDigest(); err != nil {
		t.Fatal(err)
	}
}

// TestDedupForgetsAfterTheWindow: an entry goes once the newest stamp is
// more than DedupWindowMs past its own, and not before; a write stamped by a
// clock that is behind lives longer (it waits for the entries in front), never
// shorter.
func TestDedupForgetsAfterTheWindow(t *testing.T) {
	s, n := dedupState(t)
	a, b := EventUUID{2, 1}, EventUUID{2, 2}
	stimulateAt(s, n, a, 1_000)
	stimulateAt(s, n, b, 500) // a writer whose clock is 500 ms behind
	stimulateAt(s, n, EventUUID{2, 3}, 1_000+DedupWindowMs)
	if _, ok := s.Deduped(a); !ok {
		t.Fatal("an entry exactly one window old was evicted")
	}
	if _, ok := s.Deduped(b); !ok {
		t.Fatal("an entry behind a live one was evicted before it")
	}
	stimulateAt(s, n, EventUUID{2, 4}, 1_001+DedupWindowMs)
	if _, ok := s.Deduped(a); ok {
		t.Fatal("an entry more than a window old was kept")
	}
	if _, ok := s.Deduped(b); ok {
		t.Fatal("the late-stamped entry outlived the eviction of the one in front")
	}
	if err := s.CheckDigest(); err != nil {
		t.Fatal(err)
	}
}

// TestDedupIsBoundedWhateverTheRate: writes all stamped in one millisecond
// never hold more than DedupMaxEntries.
func TestDedupIsBoundedWhateverTheRate(t *testing.T) {
	s, n := dedupState(t)
	for i := 0; i < DedupMaxEntries+100; i++ {
		stimulateAt(s, n, EventUUID{3, uint64(i)}, 7)
	}
	if s.dedup.len() != DedupMaxEntries || len(s.dedup.results) != DedupMaxEntries {
		t.Fatalf("table holds %d entries and %d results, bound %d", s.dedup.len(), len(s.dedup.results), DedupMaxEntries)
	}
	if _, ok := s.Deduped(EventUUID{3, 0}); ok {
		t.Fatal("the oldest entry was kept beyond the bound")
	}
	if _, ok := s.Deduped(EventUUID{3, DedupMaxEntries + 99}); !ok {
		t.Fatal("the newest entry is missing")
	}
}

// TestDedupSurvivesSnapshotAndClone: mid-window, after evictions and a
// retried id, the snapshot and a clone hold the same table (same digest),
// and go on evicting exactly as the original does.
func TestDedupSurvivesSnapshotAndClone(t *testing.T) {
	s, n := dedupState(t)
	for i := int64(0); i < 3_000; i++ {
		stimulateAt(s, n, EventUUID{4, uint64(i)}, i*10)
		if i%100 == 0 {
			stimulateAt(s, n, EventUUID{4, uint64(i / 2)}, i*10) // a retry: a second entry of an id
		}
	}
	back, err := DecodeSnapshot(EncodeSnapshot(s))
	if err != nil {
		t.Fatal(err)
	}
	clone := s.Clone()
	for _, c := range []*SubgraphState{back, clone} {
		if c.Digest() != s.Digest() || c.CheckDigest() != nil {
			t.Fatal("snapshot or clone changed the table")
		}
	}
	for i := int64(3_000); i < 3_500; i++ {
		for _, c := range []*SubgraphState{s, back, clone} {
			stimulateAt(c, n, EventUUID{4, uint64(i)}, i*10)
		}
	}
	if back.Digest() != s.Digest() || clone.Digest() != s.Digest() || s.CheckDigest() != nil {
		t.Fatal("the copies evicted differently from the original")
	}
}

// TestLegacySnapshotsDecode: a version 2 blob (a saga in flight, unstamped
// dedup entries) written before version 3 decodes, keeps its saga and its
// dedup entries, and re-encodes as the current version to the same state.
func TestLegacySnapshotsDecode(t *testing.T) {
	data, err := os.ReadFile("testdata/snapshot-v2.bin")
	if err != nil {
		t.Fatal(err)
	}
	if data[4] != snapshotVersionSagas {
		t.Fatalf("testdata/snapshot-v2.bin is version %d", data[4])
	}
	s, err := DecodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	if s.saga.records() == 0 || s.dedup.len() == 0 {
		t.Fatalf("version 2 blob lost its saga (%d records) or dedup entries (%d)", s.saga.records(), s.dedup.len())
	}
	again := EncodeSnapshot(s)
	if again[4] != snapshotVersionSagaInstances {
		t.Fatalf("re-encoded as version %d", again[4])
	}
	back, err := DecodeSnapshot(again)
	if err != nil || back.Digest() != s.Digest() {
		t.Fatalf("version 4 re-encoding: %v", err)
	}
}

// TestClientDeadlineWithinTheDedupWindow: a client whose retries could
// outlive their dedup entries is refused.
func TestClientDeadlineWithinTheDedupWindow(t *testing.T) {
	c := DefaultClientConfig(5, 1, 4)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.OpDeadlineMs = MaxOpDeadlineMs + 1
	if err := c.Validate(); err == nil {
		t.Fatal("a deadline beyond the dedup window was accepted")
	}
}
