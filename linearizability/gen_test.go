package linearizability

import (
	"math/rand/v2"
	"sort"

	"github.com/anishathalye/porcupine"
)

// genConfig describes a random history produced by a correct (linearizable)
// store: every operation takes effect atomically at a point inside its
// [call, return] interval.
type genConfig struct {
	seed        uint64
	ops         int
	neurons     int // keys n/0 .. n/(neurons-1)
	synapses    int // distinct (pre, post) pairs
	clients     int // each client has at most one operation in flight
	rejectRate  float64
	unknownRate float64
}

// refStore is an independent reference implementation of the store, written
// with maps rather than with the package's apply function.
type refStore struct {
	b        Bounds
	neurons  map[uint64]int64
	synapses map[[2]uint64]int64
}

func (s *refStore) do(in Input) Output {
	switch in.Kind {
	case CreateNeuron:
		if _, ok := s.neurons[in.Neuron]; ok {
			return Output{Status: StatusAlreadyExists}
		}
		s.neurons[in.Neuron] = 0
		return Output{Status: StatusOK}
	case Stimulate:
		p, ok := s.neurons[in.Neuron]
		if !ok {
			return Output{Status: StatusNotFound}
		}
		p = min(max(p+in.Delta, s.b.PotentialMin), s.b.PotentialMax)
		s.neurons[in.Neuron] = p
		return Output{Status: StatusOK, Value: p}
	case ReadNeuron:
		p, ok := s.neurons[in.Neuron]
		return Output{Status: StatusOK, Value: p, Exists: ok}
	}
	k := [2]uint64{in.Pre, in.Post}
	w, ok := s.synapses[k]
	switch in.Kind {
	case Connect:
		if ok {
			return Output{Status: StatusAlreadyExists}
		}
		s.synapses[k] = min(max(in.Weight, s.b.WeightMin), s.b.WeightMax)
		return Output{Status: StatusOK}
	case AdjustWeight:
		if !ok {
			return Output{Status: StatusNotFound}
		}
		w = min(max(w+in.Delta, s.b.WeightMin), s.b.WeightMax)
		s.synapses[k] = w
		return Output{Status: StatusOK, Value: w}
	case Prune:
		if !ok {
			return Output{Status: StatusNotFound}
		}
		delete(s.synapses, k)
		return Output{Status: StatusOK}
	case ReadSynapse:
		return Output{Status: StatusOK, Value: w, Exists: ok}
	}
	panic("refStore: bad kind")
}

func (cfg genConfig) randomInput(rng *rand.Rand, pairs [][2]uint64) Input {
	if rng.IntN(2) == 0 {
		n := uint64(rng.IntN(cfg.neurons))
		switch r := rng.IntN(100); {
		case r < 15:
			return Input{Kind: CreateNeuron, Neuron: n}
		case r < 65:
			return Input{Kind: Stimulate, Neuron: n, Delta: rng.Int64N(201) - 100}
		default:
			return Input{Kind: ReadNeuron, Neuron: n}
		}
	}
	p := pairs[rng.IntN(len(pairs))]
	switch r := rng.IntN(100); {
	case r < 15:
		return Input{Kind: Connect, Pre: p[0], Post: p[1], Weight: rng.Int64N(2001) - 1000}
	case r < 55:
		return Input{Kind: AdjustWeight, Pre: p[0], Post: p[1], Delta: rng.Int64N(201) - 100}
	case r < 65:
		return Input{Kind: Prune, Pre: p[0], Post: p[1]}
	default:
		return Input{Kind: ReadSynapse, Pre: p[0], Post: p[1]}
	}
}

// generate returns a linearizable history recorded through a Recorder.
func generate(cfg genConfig) []porcupine.Operation {
	rng := rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x5eed))
	pairs := make([][2]uint64, cfg.synapses)
	for i := range pairs {
		pairs[i] = [2]uint64{uint64(i % cfg.neurons), uint64((i*7 + 1) % cfg.neurons)}
	}

	type planned struct {
		client         int
		in             Input
		call, lin, ret int64
		rejected       bool
		unknown        bool // outcome unknown to the client
		applied        bool // for unknown ones: did it take effect?
		pending        bool // unknown and never returned at all
		out            Output
	}
	plan := make([]planned, 0, cfg.ops)
	free := make([]int64, cfg.clients)
	for c := range free {
		free[c] = rng.Int64N(10)
	}
	for len(plan) < cfg.ops {
		c := 0 // the client that is free first issues the next operation
		for i := range free {
			if free[i] < free[c] {
				c = i
			}
		}
		p := planned{client: c, in: cfg.randomInput(rng, pairs), call: free[c]}
		p.lin = p.call + 1 + rng.Int64N(40)
		p.ret = p.lin + 1 + rng.Int64N(40)
		if !p.in.Kind.IsRead() && rng.Float64() < cfg.rejectRate {
			p.rejected = true
		} else if rng.Float64() < cfg.unknownRate {
			p.unknown, p.applied, p.pending = true, rng.IntN(2) == 0, rng.IntN(2) == 0
		}
		free[c] = p.ret + rng.Int64N(20)
		plan = append(plan, p)
	}

	// Apply in linearization order to the reference store.
	order := make([]int, len(plan))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return plan[order[a]].lin < plan[order[b]].lin })
	store := &refStore{b: DefaultBounds(), neurons: map[uint64]int64{}, synapses: map[[2]uint64]int64{}}
	for _, i := range order {
		p := &plan[i]
		switch {
		case p.rejected:
			p.out = Output{Status: StatusRejected}
		case p.unknown:
			if p.applied {
				store.do(p.in)
			}
			p.out = Output{Status: StatusUnknown}
		default:
			p.out = store.do(p.in)
		}
	}

	r := NewRecorder()
	for _, p := range plan {
		id := r.Call(p.client, p.in, p.call)
		if !p.pending {
			r.Return(id, p.out, p.ret)
		}
	}
	return r.Operations()
}

// benchConfig is the realistic shape used by the benchmark: 10k operations
// over 50 neurons and 50 synapses from 8 clients, 2% rejections and 1%
// unknown outcomes.
func benchConfig(seed uint64) genConfig {
	return genConfig{seed: seed, ops: 10_000, neurons: 50, synapses: 50, clients: 8, rejectRate: 0.02, unknownRate: 0.01}
}
