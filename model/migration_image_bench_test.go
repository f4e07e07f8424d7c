package model

import (
	"fmt"
	"testing"
)

// bigState is one subgraph with the given number of synapses (a tenth as many
// neurons), under a policy with no degree limit that bites.
func bigState(synapses int) *SubgraphState {
	st := NewSubgraphState(0, 1, GenesisPolicy())
	lsn := uint64(1)
	apply := func(ev Event) {
		ev.LSN, ev.Subgraph = lsn, 0
		lsn++
		st.Apply(&ev)
	}
	apply(Event{UUID: EventUUID{1, 1}, Type: EvAdoptPolicy, Policy: Policy{Epoch: 1, MaxOutDegree: 1 << 20, MaxInDegree: 1 << 20, SupernodeDegree: 1 << 30}})
	neurons := synapses/10 + 2
	for n := 0; n < neurons; n++ {
		ev, _ := EventFromRequest(&Request{ID: EventUUID{2, uint64(n + 1)}, Op: OpCreateNeuron, Neuron: NeuronID(n)}, 0, 0, 1)
		apply(ev)
	}
	for i := 0; i < synapses; i++ {
		pre, post := i%neurons, (i/neurons+1+i)%neurons
		ev, _ := EventFromRequest(&Request{ID: EventUUID{3, uint64(i + 1)}, Op: OpConnect, Pre: NeuronID(pre), Post: NeuronID(post), Value: 5}, 0, 0, 1)
		apply(ev)
	}
	return st
}

// BenchmarkMigrationImage is what taking a migration image costs the source
// territory inside Step today: EncodeSnapshot of the whole state, O(state)
// (the seed asks for an O(1) copy-on-write image; see the README).
func BenchmarkMigrationImage(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		st := bigState(n)
		b.Run(fmt.Sprintf("synapses=%d", n), func(b *testing.B) {
			var size int
			for i := 0; i < b.N; i++ {
				size = len(EncodeSnapshot(st))
			}
			b.ReportMetric(float64(size), "bytes")
			b.ReportMetric(float64(len(st.synapses)), "synapses_held")
		})
	}
}
