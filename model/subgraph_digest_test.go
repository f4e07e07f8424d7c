package model

import "testing"

// TestIncrementalDigestFollowsEveryApply folds a long mixed history (creates,
// stimulates, connects up to the degree limits, weight changes, prunes, a
// decay, retried uuids, and enough writes to evict from the dedup table): after
// every event the kept sums equal their recomputation, and the digest equals
// that of the state rebuilt from its snapshot.
func TestIncrementalDigestFollowsEveryApply(t *testing.T) {
	n := neuronsIn(1, 12)
	f := newFolder(Policy{Epoch: 1, MaxOutDegree: 3, MaxInDegree: 3, DecayPerSecondPM: 100_000, SupernodeDegree: 4})
	f.stepMs = 5 // 4,700 events over 23.5 s: the dedup window (20 s) evicts
	check := func(step int) {
		t.Helper()
		if err := f.s.CheckDigest(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if f.s.Digest() != f.s.FullDigest() {
			t.Fatalf("step %d: digest %x, full %x", step, f.s.Digest(), f.s.FullDigest())
		}
	}
	for i, id := range n {
		f.do(t, EvCreateNeuron, id, 0, 0, 0)
		check(i)
	}
	for step := 0; step < 4700; step++ {
		a, b := n[step%len(n)], n[(step*7+3)%len(n)]
		switch step % 6 {
		case 0:
			f.do(t, EvStimulate, a, 0, 0, int64(step%97)-40)
		case 1:
			f.do(t, EvConnect, 0, a, b, int64(step%13))
		case 2:
			f.do(t, EvAdjustWeight, 0, a, b, 5)
		case 3:
			f.do(t, EvPrune, 0, a, b, 0)
		case 4:
			// A retry of an earlier uuid: applied once, the LSN moves on.
			f.lsn++
			ev := Event{LSN: f.lsn, UUID: EventUUID{7, f.seq}, Subgraph: 1, Type: EvStimulate, Neuron: a, Value: 1, TimestampMs: f.nowMs}
			f.s.Apply(&ev)
		case 5:
			f.do(t, EvHeartbeat, 0, 0, 0, 0)
		}
		if step%500 == 0 || step > 4000 {
			check(step)
		}
	}
	f.lsn++
	rec := Event{LSN: f.lsn, UUID: EventUUID{7, 1 << 40}, Subgraph: 1, Type: EvTerritoryRecovered, TimestampMs: 90_000, // the clock jumps: most of the table goes
		Recovery: RecoveryBody{LastHeartbeatMs: 60_000}}
	f.s.Apply(&rec)
	check(-1)
	back, err := DecodeSnapshot(EncodeSnapshot(f.s))
	if err != nil {
		t.Fatal(err)
	}
	if err := back.CheckDigest(); err != nil || back.Digest() != f.s.Digest() {
		t.Fatalf("snapshot round trip: %v, digest %x want %x", err, back.Digest(), f.s.Digest())
	}
	if c := f.s.Clone(); c.CheckDigest() != nil || c.Digest() != f.s.Digest() {
		t.Fatal("a clone's digest differs")
	}
}

// TestCheckDigestCatchesAWriteThatBypassesTheSums: a planted write straight
// into a map, or a wrong sum, is reported by the recomputation.
func TestCheckDigestCatchesAWriteThatBypassesTheSums(t *testing.T) {
	n := neuronsIn(1, 2)
	f := newFolder(DefaultPolicy())
	f.do(t, EvCreateNeuron, n[0], 0, 0, 0)
	f.do(t, EvCreateNeuron, n[1], 0, 0, 0)
	f.do(t, EvConnect, 0, n[0], n[1], 3)
	if err := f.s.CheckDigest(); err != nil {
		t.Fatal(err)
	}
	kept, orig := f.s.Digest(), f.s.neurons[n[0]]
	f.s.neurons[n[0]] = Neuron{Potential: 5, OutDegree: 1} // bypasses setNeuron
	if f.s.CheckDigest() == nil || f.s.Digest() != kept {
		t.Fatal("a write that bypassed the sums was not caught")
	}
	f.s.neurons[n[0]] = orig
	if err := f.s.CheckDigest(); err != nil {
		t.Fatal(err)
	}
	f.s.dedup.sum++
	if f.s.CheckDigest() == nil {
		t.Fatal("a wrong dedup sum was not caught")
	}
}
