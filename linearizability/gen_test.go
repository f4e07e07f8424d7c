package linearizability

import (
	"math/rand/v2"
	"sort"

	"github.com/anishathalye/porcupine"
)

// genConfig describes a random history produced by a correct store: every
// operation takes effect atomically at a point inside its [call, return]
// interval, writes in the order of their subgraph's log.
type genConfig struct {
	seed        uint64
	ops         int
	subgraphs   int
	neurons     int // ids 1..neurons; subgraph = id % subgraphs
	clients     int // each client has at most one operation in flight
	unknownRate float64
	decayRate   float64 // chance that an operation is preceded by a recovery's decay
	loseWrite   int     // >0: the loseWrite-th successful stimulate is acknowledged but neither applied nor logged
	policy      Policy
}

func (cfg genConfig) sgOf(n uint64) uint32 { return uint32(n % uint64(cfg.subgraphs)) }

// refStore is an independent reference implementation of one subgraph,
// written with maps rather than with the package's Apply.
type refStore struct {
	cfg      *genConfig
	b        Bounds
	pot      map[uint64]int64
	in, out  map[uint64]uint32
	synapses map[[2]uint64]int64
}

func newRefStore(cfg *genConfig) *refStore {
	return &refStore{cfg: cfg, b: DefaultBounds(), pot: map[uint64]int64{}, in: map[uint64]uint32{}, out: map[uint64]uint32{}, synapses: map[[2]uint64]int64{}}
}

func (s *refStore) do(in Input) Output {
	switch in.Kind {
	case CreateNeuron:
		if _, ok := s.pot[in.Neuron]; ok {
			return Output{Status: StatusAlreadyExists}
		}
		s.pot[in.Neuron] = 0
		return Output{Status: StatusOK}
	case Stimulate:
		p, ok := s.pot[in.Neuron]
		if !ok {
			return Output{Status: StatusNotFound, Reason: ReasonNoSuchNeuron}
		}
		p = min(max(p+in.Delta, s.b.PotentialMin), s.b.PotentialMax)
		s.pot[in.Neuron] = p
		return Output{Status: StatusOK, Value: p, Exists: true}
	case ReadNeuron:
		p, ok := s.pot[in.Neuron]
		return Output{Status: StatusOK, Value: p, Exists: ok}
	case Decay:
		keep := DecayFactorPM(s.cfg.policy.DecayPerSecondPM, in.RecoveryMs-in.HeartbeatMs)
		for n, p := range s.pot {
			s.pot[n] = p * keep / 1_000_000 // no overflow for the potentials generated here
		}
		return Output{Status: StatusOK}
	}
	k := [2]uint64{in.Pre, in.Post}
	w, ok := s.synapses[k]
	switch in.Kind {
	case Connect:
		_, okPre := s.pot[in.Pre]
		_, okPost := s.pot[in.Post]
		switch {
		case s.cfg.sgOf(in.Post) != s.cfg.sgOf(in.Pre):
			return Output{Status: StatusRejected, Reason: ReasonCrossSubgraph}
		case ok:
			return Output{Status: StatusAlreadyExists}
		case !okPre || !okPost:
			return Output{Status: StatusRejected, Reason: ReasonNoSuchNeuron}
		case s.out[in.Pre] >= s.cfg.policy.MaxOutDegree:
			return Output{Status: StatusRejected, Reason: ReasonMaxOutDegree}
		case s.in[in.Post] >= s.cfg.policy.MaxInDegree:
			return Output{Status: StatusRejected, Reason: ReasonMaxInDegree}
		}
		w = min(max(in.Weight, s.b.WeightMin), s.b.WeightMax)
		s.synapses[k] = w
		s.out[in.Pre]++
		s.in[in.Post]++
		return Output{Status: StatusOK, Value: w, Exists: true}
	case AdjustWeight:
		if !ok {
			return Output{Status: StatusNotFound}
		}
		w = min(max(w+in.Delta, s.b.WeightMin), s.b.WeightMax)
		s.synapses[k] = w
		return Output{Status: StatusOK, Value: w, Exists: true}
	case Prune:
		if !ok {
			return Output{Status: StatusNotFound}
		}
		delete(s.synapses, k)
		s.out[in.Pre]--
		s.in[in.Post]--
		return Output{Status: StatusOK}
	case ReadSynapse:
		return Output{Status: StatusOK, Value: w, Exists: ok}
	}
	panic("refStore: bad kind")
}

func (cfg genConfig) randomInput(rng *rand.Rand) Input {
	nid := func() uint64 { return 1 + uint64(rng.IntN(cfg.neurons)) }
	if rng.IntN(2) == 0 {
		n := nid()
		in := Input{Neuron: n, Subgraph: cfg.sgOf(n)}
		switch r := rng.IntN(100); {
		case r < 15:
			in.Kind = CreateNeuron
		case r < 65:
			in.Kind, in.Delta = Stimulate, (rng.Int64N(13)-4)*16384
		default:
			in.Kind = ReadNeuron
		}
		return in
	}
	pre := nid()
	post := nid()
	for range 8 { // mostly within the subgraph, sometimes across
		if cfg.sgOf(post) == cfg.sgOf(pre) {
			break
		}
		post = nid()
	}
	in := Input{Pre: pre, Post: post, Subgraph: cfg.sgOf(pre), PostSubgraph: cfg.sgOf(post)}
	switch r := rng.IntN(100); {
	case r < 25:
		in.Kind, in.Weight = Connect, rng.Int64N(2001)-1000
	case r < 55:
		in.Kind, in.Delta = AdjustWeight, rng.Int64N(201)-100
	case r < 70:
		in.Kind = Prune
	default:
		in.Kind = ReadSynapse
	}
	return in
}

// genHistory is a generated history and the logs of the store that made it.
type genHistory struct {
	ops  []porcupine.Operation
	logs []SubgraphLog
}

const decayClient = 1 << 20

// generate returns a linearizable history, recorded through a Recorder, and
// the committed logs (an adopt-policy entry first, then the writes and decays
// in linearization order, committed at their linearization point).
func generate(cfg genConfig) genHistory {
	rng := rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x5eed))
	type planned struct {
		client         int
		in             Input
		call, lin, ret int64
		unknown        bool // outcome unknown to the client
		applied        bool // for unknown ones: did it take effect?
		pending        bool // unknown and never returned at all
		out            Output
	}
	plan := make([]planned, 0, cfg.ops)
	free := make([]int64, cfg.clients)
	for c := range free {
		free[c] = 1 + rng.Int64N(10)
	}
	var seq uint64
	for len(plan) < cfg.ops {
		c := 0 // the client that is free first issues the next operation
		for i := range free {
			if free[i] < free[c] {
				c = i
			}
		}
		seq++
		p := planned{client: c, in: cfg.randomInput(rng), call: free[c]}
		p.in.ID = UUID{Hi: uint64(c) + 1, Lo: seq}
		p.lin = p.call + 1 + rng.Int64N(40)
		p.ret = p.lin + 1 + rng.Int64N(40)
		if rng.Float64() < cfg.unknownRate {
			p.unknown, p.applied, p.pending = true, rng.IntN(2) == 0, rng.IntN(2) == 0
		}
		free[c] = p.ret + rng.Int64N(20)
		plan = append(plan, p)
		if rng.Float64() < cfg.decayRate {
			seq++
			hb := rng.Int64N(100_000)
			d := planned{client: decayClient, call: p.call, lin: p.call + 1 + rng.Int64N(30)}
			d.ret = d.lin + rng.Int64N(30)
			d.in = Input{Kind: Decay, ID: UUID{Hi: 1 << 40, Lo: seq}, Subgraph: uint32(rng.IntN(cfg.subgraphs)), HeartbeatMs: hb, RecoveryMs: hb + rng.Int64N(8000)}
			plan = append(plan, d)
		}
	}

	// Apply in linearization order to the reference store; the writes that
	// take effect go to their subgraph's log.
	order := make([]int, len(plan))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return plan[order[a]].lin < plan[order[b]].lin })
	stores := make([]*refStore, cfg.subgraphs)
	logs := make([]SubgraphLog, cfg.subgraphs)
	for sg := range stores {
		stores[sg] = newRefStore(&cfg)
		logs[sg] = SubgraphLog{Subgraph: uint32(sg), Entries: []Entry{{LSN: 1, Kind: EntryAdoptPolicy, Policy: cfg.policy}}}
	}
	stimulates := 0
	for _, i := range order {
		p := &plan[i]
		st := stores[p.in.Subgraph]
		if p.unknown && !p.applied {
			p.out = Output{Status: StatusUnknown}
			continue
		}
		if _, exists := st.pot[p.in.Neuron]; p.in.Kind == Stimulate && exists && !p.unknown {
			if stimulates++; stimulates == cfg.loseWrite {
				before := st.pot[p.in.Neuron]
				p.out = st.do(p.in)
				st.pot[p.in.Neuron] = before
				continue
			}
		}
		out := st.do(p.in)
		if !p.in.Kind.IsRead() {
			l := &logs[p.in.Subgraph]
			kind := EntryWrite
			if p.in.Kind == Decay {
				kind = EntryDecay
			}
			l.Entries = append(l.Entries, Entry{LSN: uint64(len(l.Entries) + 1), CommitUs: p.lin, Kind: kind, ID: p.in.ID, Op: p.in})
			if rng.IntN(10) == 0 {
				l.Entries = append(l.Entries, Entry{LSN: uint64(len(l.Entries) + 1), CommitUs: p.lin, Kind: EntryHeartbeat, ID: UUID{Hi: 1 << 41, Lo: uint64(len(l.Entries))}})
			}
		}
		p.out = out
		if p.unknown {
			p.out = Output{Status: StatusUnknown}
		}
	}

	r := NewRecorder()
	for _, p := range plan {
		id := r.Call(p.client, p.in, p.call)
		if !p.pending {
			r.Return(id, p.out, p.ret)
		}
	}
	return genHistory{ops: r.Operations(), logs: logs}
}

func testPolicy() Policy {
	return Policy{Epoch: 1, MaxOutDegree: 2, MaxInDegree: 2, DecayPerSecondPM: 20_000}
}

// benchConfig is the shape of today's scenarios: 16 subgraphs of 3 neurons,
// 4 clients, 1% unknown outcomes, a few recoveries.
func benchConfig(seed uint64, ops int) genConfig {
	return genConfig{seed: seed, ops: ops, subgraphs: 16, neurons: 48, clients: 4, unknownRate: 0.01, decayRate: 0.001, policy: testPolicy()}
}
