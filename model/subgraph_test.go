package model

import "testing"

const testSubgraphs = 4

// neuronsIn returns n neuron ids that all map to subgraph sg.
func neuronsIn(sg SubgraphID, n int) []NeuronID {
	var out []NeuronID
	for id := NeuronID(1); len(out) < n; id++ {
		if SubgraphOf(id, testSubgraphs) == sg {
			out = append(out, id)
		}
	}
	return out
}

type folder struct {
	s      *SubgraphState
	lsn    uint64
	seq    uint64
	nowMs  int64 // the stamp of the next event
	stepMs int64 // how far the clock moves per event (0: it stands still)
}

func newFolder(p Policy) *folder { return &folder{s: NewSubgraphState(1, testSubgraphs, p)} }

func (f *folder) do(t *testing.T, typ EventType, neuron, pre, post NeuronID, value int64) Result {
	t.Helper()
	f.lsn++
	f.seq++
	ev := Event{LSN: f.lsn, UUID: EventUUID{7, f.seq}, Subgraph: 1, Type: typ, Neuron: neuron, Pre: pre, Post: post, Value: value, TimestampMs: f.nowMs}
	f.nowMs += f.stepMs
	r, applied := f.s.Apply(&ev)
	if !applied {
		t.Fatalf("event %d not applied", f.lsn)
	}
	return r
}

func TestFoldSemantics(t *testing.T) {
	n := neuronsIn(1, 3)
	f := newFolder(Policy{Epoch: 1, MaxOutDegree: 1, MaxInDegree: 8, SupernodeDegree: 2})
	if r := f.do(t, EvStimulate, n[0], 0, 0, 5); r.Status != StatusNotFound {
		t.Fatalf("stimulate of a missing neuron: %+v", r)
	}
	if r := f.do(t, EvCreateNeuron, n[0], 0, 0, 0); r.Status != StatusOK {
		t.Fatalf("create: %+v", r)
	}
	if r := f.do(t, EvCreateNeuron, n[0], 0, 0, 0); r.Status != StatusAlreadyExists {
		t.Fatalf("second create: %+v", r)
	}
	f.do(t, EvCreateNeuron, n[1], 0, 0, 0)
	if r := f.do(t, EvStimulate, n[0], 0, 0, 5); r.Status != StatusOK || r.Value != 5 {
		t.Fatalf("stimulate: %+v", r)
	}
	if r := f.do(t, EvStimulate, n[0], 0, 0, PotentialMax); r.Value != PotentialMax {
		t.Fatalf("stimulate must saturate: %+v", r)
	}
	if r := f.do(t, EvConnect, 0, n[0], n[2], 3); r.Reason != ReasonNoSuchNeuron {
		t.Fatalf("connect to a missing neuron: %+v", r)
	}
	if r := f.do(t, EvConnect, 0, n[0], n[1], 3); r.Status != StatusOK || r.Value != 3 {
		t.Fatalf("connect: %+v", r)
	}
	if r := f.do(t, EvConnect, 0, n[0], n[0], 3); r.Reason != ReasonMaxOutDegree {
		t.Fatalf("degree policy not enforced: %+v", r)
	}
	if nn, _ := f.s.Neuron(n[0]); nn.OutDegree != 1 || nn.Supernode {
		t.Fatalf("degrees: %+v", nn)
	}
	// A read-neuron reports the degrees (and only a read does).
	if r := f.s.Read(&Request{Op: OpReadNeuron, Neuron: n[0]}); !r.Exists || r.OutDegree != 1 || r.InDegree != 0 {
		t.Fatalf("read-neuron of pre: %+v", r)
	}
	if r := f.s.Read(&Request{Op: OpReadNeuron, Neuron: n[1]}); !r.Exists || r.OutDegree != 0 || r.InDegree != 1 {
		t.Fatalf("read-neuron of post: %+v", r)
	}
	if r := f.do(t, EvAdjustWeight, 0, n[0], n[1], -5); r.Value != -2 {
		t.Fatalf("adjust: %+v", r)
	}
	if r := f.do(t, EvPrune, 0, n[0], n[1], 0); r.Status != StatusOK {
		t.Fatalf("prune: %+v", r)
	}
	if r := f.do(t, EvPrune, 0, n[0], n[1], 0); r.Status != StatusNotFound {
		t.Fatalf("second prune: %+v", r)
	}
	if nn, _ := f.s.Neuron(n[1]); nn.InDegree != 0 {
		t.Fatalf("prune left an in-degree: %+v", nn)
	}
	other := neuronsIn(2, 1)[0]
	if r := f.do(t, EvConnect, 0, n[0], other, 1); r.Reason != ReasonCrossSubgraph {
		t.Fatalf("cross-subgraph connect: %+v", r)
	}
}

func TestApplyIsIdempotent(t *testing.T) {
	n := neuronsIn(1, 1)[0]
	s := NewSubgraphState(1, testSubgraphs, DefaultPolicy())
	create := Event{LSN: 1, UUID: EventUUID{1, 1}, Subgraph: 1, Type: EvCreateNeuron, Neuron: n}
	stim := Event{LSN: 2, UUID: EventUUID{1, 2}, Subgraph: 1, Type: EvStimulate, Neuron: n, Value: 10}
	s.Apply(&create)
	first, _ := s.Apply(&stim)
	d := s.Digest()
	// The same LSN again: nothing changes, and the original result comes back.
	if r, applied := s.Apply(&stim); applied || r != first || s.Digest() != d {
		t.Fatalf("re-applying LSN 2 changed the state (applied=%v r=%+v)", applied, r)
	}
	// The same event_uuid at a new LSN (a retried append that landed twice).
	dup := stim
	dup.LSN = 3
	r, applied := s.Apply(&dup)
	if applied || r != first {
		t.Fatalf("duplicate uuid applied again: %+v", r)
	}
	if nn, _ := s.Neuron(n); nn.Potential != 10 || s.AppliedLSN != 3 {
		t.Fatalf("after duplicate: potential %d applied %d", nn.Potential, s.AppliedLSN)
	}
}

func TestApplyPanicsOnGap(t *testing.T) {
	s := NewSubgraphState(1, testSubgraphs, DefaultPolicy())
	defer func() {
		if recover() == nil {
			t.Fatal("a gap in the log must be caught")
		}
	}()
	s.Apply(&Event{LSN: 2, Subgraph: 1, Type: EvHeartbeat})
}

func TestDigestIgnoresInsertionOrder(t *testing.T) {
	ids := neuronsIn(1, 20)
	a := NewSubgraphState(1, testSubgraphs, DefaultPolicy())
	b := NewSubgraphState(1, testSubgraphs, DefaultPolicy())
	for i, id := range ids {
		a.setNeuron(id, Neuron{Potential: int64(i)})
	}
	for i := len(ids) - 1; i >= 0; i-- {
		b.setNeuron(ids[i], Neuron{Potential: int64(i)})
	}
	if a.Digest() != b.Digest() {
		t.Fatal("digest depends on map insertion order")
	}
	b.setNeuron(ids[0], Neuron{Potential: 99})
	if a.Digest() == b.Digest() {
		t.Fatal("digest misses a changed potential")
	}
}

func TestDecayFactor(t *testing.T) {
	cases := []struct {
		pm   uint32
		ms   int64
		want int64
	}{
		{0, 10_000, 1_000_000},
		{1000, 0, 1_000_000},
		{500_000, 1000, 500_000},
		{500_000, 2000, 250_000},
		{500_000, 1500, 375_000},
		{1_000_000, 5000, 0},
	}
	for _, c := range cases {
		if got := DecayFactorPM(c.pm, c.ms); got != c.want {
			t.Errorf("DecayFactorPM(%d, %d) = %d, want %d", c.pm, c.ms, got, c.want)
		}
	}
	if got := MulDecay(-1000, 500_000); got != -500 {
		t.Errorf("MulDecay(-1000, .5) = %d", got)
	}
}
