package model

import (
	"fmt"
	"testing"
)

// The proxy's per-poll and per-batch work, at a territory's scale: refresh
// (the adjacency, every TickMs) over subgraphs operational subgraphs of cross
// committed cross synapses each, and a batch's report (its supernodes) of a
// replica of neurons neurons.

func benchProxyTerritory(b *testing.B, subgraphs, cross int) *Territory {
	const n = 1024
	cfg := DefaultTerritoryConfig(7, n)
	cfg.Proxy = true
	tr, err := NewTerritory(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for i := range subgraphs {
		sg := SubgraphID(i)
		st := NewSubgraphState(sg, n, GenesisPolicy())
		for j := range cross {
			far := SubgraphID((i*7919 + j*31) % n)
			st.saga.cross[SynapseKey{Pre: neuronIn(sg, n), Post: neuronIn(far, n) + NeuronID(n*j)}] = EventUUID{Hi: uint64(i), Lo: uint64(j)}
		}
		tr.subgraphs[sg] = &primary{sg: sg, phase: phaseOperational, epoch: 1, state: st}
		tr.owned = append(tr.owned, sg)
	}
	return tr
}

func BenchmarkProxyRefresh(b *testing.B) {
	for _, c := range []struct{ subgraphs, cross int }{{16, 100}, {64, 1000}} {
		b.Run(fmt.Sprintf("subgraphs=%d/cross=%d", c.subgraphs, c.cross), func(b *testing.B) {
			tr := benchProxyTerritory(b, c.subgraphs, c.cross)
			tr.out = &Outbox{}
			for b.Loop() {
				tr.proxy.refresh()
				tr.out.Reset()
			}
		})
	}
}

func BenchmarkProxyReport(b *testing.B) {
	for _, neurons := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("neurons=%d", neurons), func(b *testing.B) {
			tr := benchProxyTerritory(b, 0, 0)
			tr.out = &Outbox{}
			st := NewSubgraphState(1, 1024, GenesisPolicy())
			for i := range neurons {
				st.setNeuron(neuronIn(1, 1024)+NeuronID(1024*i), Neuron{Supernode: i%97 == 0})
			}
			x := tr.proxy
			x.replicas[1] = st
			x.learnTail(1, 0)
			for b.Loop() {
				x.report(1)
				tr.out.Reset()
			}
		})
	}
}
