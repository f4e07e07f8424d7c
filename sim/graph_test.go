package sim

import (
	"strings"
	"testing"

	"territory/sim/kernel"
)

func TestGraphValidate(t *testing.T) {
	good := Graph{Neurons: []uint64{5, 9}, Synapses: [][3]int64{{5, 9, 3}, {9, 9, 1}}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, g := range map[string]Graph{
		"empty":       {},
		"no synapses": {Neurons: []uint64{1}},
		"zero id":     {Neurons: []uint64{0, 1}, Synapses: [][3]int64{{1, 1, 1}}},
		"dup":         {Neurons: []uint64{1, 1}, Synapses: [][3]int64{{1, 1, 1}}},
		"stranger":    {Neurons: []uint64{1, 2}, Synapses: [][3]int64{{1, 3, 1}}},
		"zero weight": {Neurons: []uint64{1, 2}, Synapses: [][3]int64{{1, 2, 0}}},
	} {
		if err := g.Validate(); err == nil || !strings.Contains(err.Error(), "workload graph") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestGraphWorkloadDrawsOnlyTheGraph: with a graph, every operation names its
// neurons and synapses, and a connect carries the synapse's weight.
func TestGraphWorkloadDrawsOnlyTheGraph(t *testing.T) {
	cfg := Config{Subgraphs: 4, Workload: Workload{Neurons: 3, Mix: OpMix{Create: 1, Stimulate: 1, ReadNeuron: 1, Connect: 3, Adjust: 1, Prune: 1, ReadSynapse: 1},
		Graph: &Graph{Neurons: []uint64{11, 22, 33}, Synapses: [][3]int64{{11, 22, 700}, {33, 11, 900}}}}}
	w := &World{cfg: cfg}
	w.rndWorkload = kernel.NewRand(7)
	neurons := map[uint64]bool{11: true, 22: true, 33: true}
	connects := 0
	for range 2000 {
		req := w.nextOp()
		switch {
		case req.Neuron != 0:
			if !neurons[uint64(req.Neuron)] {
				t.Fatalf("%+v names a neuron outside the graph", req)
			}
		default:
			k := [2]uint64{uint64(req.Pre), uint64(req.Post)}
			if k != [2]uint64{11, 22} && k != [2]uint64{33, 11} {
				t.Fatalf("%+v names a synapse outside the graph", req)
			}
			if req.Op.String() == "connect" {
				connects++
				if (k[0] == 11 && req.Value != 700) || (k[0] == 33 && req.Value != 900) {
					t.Fatalf("%+v: not the synapse's weight", req)
				}
			}
		}
	}
	if connects < 500 {
		t.Fatalf("%d connects in 2000 operations", connects)
	}
}
