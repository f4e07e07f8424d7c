package linearizability

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"
)

// Bounds are the inclusive clamp bounds of potentials and weights. The zero
// Bounds stands for [DefaultBounds].
type Bounds struct {
	PotentialMin, PotentialMax int64
	WeightMin, WeightMax       int64
}

// DefaultBounds returns ±1<<40 for potentials and ±1<<30 for weights.
func DefaultBounds() Bounds {
	return Bounds{
		PotentialMin: -1 << 40, PotentialMax: 1 << 40,
		WeightMin: -1 << 30, WeightMax: 1 << 30,
	}
}

// normalize maps the zero Bounds to the defaults and panics on an empty
// interval, which is a configuration bug.
func (b Bounds) normalize() Bounds {
	if b == (Bounds{}) {
		return DefaultBounds()
	}
	if b.PotentialMin > b.PotentialMax || b.WeightMin > b.WeightMax {
		panic(fmt.Sprintf("linearizability: invalid bounds %+v", b))
	}
	return b
}

// Policy is the part of a policy epoch the sequential specification needs:
// the degree limits of connect and the decay rate of a recovery.
type Policy struct {
	Epoch            uint64
	MaxOutDegree     uint32
	MaxInDegree      uint32
	DecayPerSecondPM uint32
}

// Config is what the porcupine model is specified by: the clamp bounds and
// the policy every subgraph runs under (the scenario's). The log checker
// instead starts from the zero policy and adopts the ones the log holds.
type Config struct {
	Bounds Bounds
	Policy Policy
}

// neuron and synapse are the specification's view of the domain.
type neuron struct {
	id        uint64
	potential int64
	in, out   uint32
}

type synapse struct {
	pre, post uint64
	weight    int64
}

// State is one subgraph: its neurons (sorted by id) and synapses (sorted by
// pre, post). It is immutable: every change copies the slice it touches,
// which is cheap for the few keys of a subgraph and lets porcupine keep
// states in its cache without aliasing.
type State struct {
	neurons  []neuron
	synapses []synapse
}

func (s State) neuron(id uint64) (int, bool) {
	return slices.BinarySearchFunc(s.neurons, id, func(n neuron, id uint64) int { return cmp.Compare(n.id, id) })
}

func (s State) synapse(pre, post uint64) (int, bool) {
	return slices.BinarySearchFunc(s.synapses, [2]uint64{pre, post}, func(x synapse, k [2]uint64) int {
		if c := cmp.Compare(x.pre, k[0]); c != 0 {
			return c
		}
		return cmp.Compare(x.post, k[1])
	})
}

// Equal reports identical contents.
func (s State) Equal(o State) bool {
	return slices.Equal(s.neurons, o.neurons) && slices.Equal(s.synapses, o.synapses)
}

// Hash is FNV-1a over the contents, word by word.
func (s State) Hash() uint64 {
	h := uint64(14695981039346656037)
	mix := func(v uint64) { h ^= v; h *= 1099511628211 }
	for _, n := range s.neurons {
		mix(n.id)
		mix(uint64(n.potential))
		mix(uint64(n.in)<<32 | uint64(n.out))
	}
	mix(math.MaxUint64)
	for _, x := range s.synapses {
		mix(x.pre)
		mix(x.post)
		mix(uint64(x.weight))
	}
	return h
}

func (s State) String() string {
	var b strings.Builder
	for i, n := range s.neurons {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "n%d=%d(in %d out %d)", n.id, n.potential, n.in, n.out)
	}
	for _, x := range s.synapses {
		fmt.Fprintf(&b, " n%d->n%d=%d", x.pre, x.post, x.weight)
	}
	if b.Len() == 0 {
		return "empty"
	}
	return b.String()
}

// Model returns the porcupine model: one partition per subgraph, its state
// the whole subgraph under cfg's policy.
func Model(cfg Config) porcupine.Model {
	cfg.Bounds = cfg.Bounds.normalize()
	return porcupine.Model{
		Partition:      partitionOperations,
		PartitionEvent: partitionEvents,
		Init:           func() any { return State{} },
		Step: func(s, in, out any) (bool, any) {
			return step(&cfg, s.(State), in, out)
		},
		Equal: func(x, y any) bool { return x.(State).Equal(y.(State)) },
		Hash:  func(s any) uint64 { return s.(State).Hash() },
		DescribeOperation: func(in, out any) string {
			i, ok1 := in.(Input)
			o, ok2 := out.(Output)
			if !ok1 || !ok2 {
				return fmt.Sprintf("%v -> %v", in, out)
			}
			return describe(i, o)
		},
		DescribeState: func(s any) string { return s.(State).String() },
		DescribeOperationMetadata: func(m any) string {
			if id, ok := m.(OpID); ok {
				return "op " + strconv.Itoa(int(id))
			}
			return ""
		},
	}
}

// step is the porcupine step function: may the operation (input, output)
// happen in state st, and if so, what is the next state?
func step(cfg *Config, st State, input, output any) (bool, any) {
	in, ok1 := input.(Input)
	out, ok2 := output.(Output)
	if !ok1 || !ok2 || !in.Kind.Valid() {
		return false, st
	}
	next, want := Apply(cfg, st, in)
	if out.Status == StatusUnknown {
		// Took effect here; "never took effect" is linearizing it last.
		return true, next
	}
	return want == out, next
}

// Apply is the sequential specification: the next state and the one answer a
// correct store gives when in runs alone in st. Every field of the answer is
// defined, so a store's answer is legal exactly when it equals this one.
//
// Only a connect is ever rejected, checking in this order: Post in another
// subgraph (cross-subgraph); the synapse exists (already-exists, not a
// rejection); a neuron missing (no-such-neuron); Pre's out-degree at the
// policy's maximum; Post's in-degree at its maximum.
func Apply(cfg *Config, st State, in Input) (State, Output) {
	b := &cfg.Bounds
	if *b == (Bounds{}) {
		d := DefaultBounds()
		b = &d
	}
	switch in.Kind {
	case CreateNeuron:
		i, ok := st.neuron(in.Neuron)
		if ok {
			return st, Output{Status: StatusAlreadyExists}
		}
		st.neurons = slices.Insert(slices.Clip(st.neurons), i, neuron{id: in.Neuron})
		return st, Output{Status: StatusOK}
	case Stimulate:
		i, ok := st.neuron(in.Neuron)
		if !ok {
			return st, Output{Status: StatusNotFound, Reason: ReasonNoSuchNeuron}
		}
		st.neurons = slices.Clone(st.neurons)
		n := &st.neurons[i]
		n.potential = clamp(saturatingAdd(n.potential, in.Delta), b.PotentialMin, b.PotentialMax)
		return st, Output{Status: StatusOK, Value: n.potential, Exists: true}
	case ReadNeuron:
		i, ok := st.neuron(in.Neuron)
		if !ok {
			return st, Output{Status: StatusOK}
		}
		return st, Output{Status: StatusOK, Value: st.neurons[i].potential, Exists: true}
	case Connect:
		return connect(cfg, st, in)
	case AdjustWeight:
		i, ok := st.synapse(in.Pre, in.Post)
		if !ok {
			return st, Output{Status: StatusNotFound}
		}
		st.synapses = slices.Clone(st.synapses)
		x := &st.synapses[i]
		x.weight = clamp(saturatingAdd(x.weight, in.Delta), b.WeightMin, b.WeightMax)
		return st, Output{Status: StatusOK, Value: x.weight, Exists: true}
	case Prune:
		i, ok := st.synapse(in.Pre, in.Post)
		if !ok {
			return st, Output{Status: StatusNotFound}
		}
		st.synapses = slices.Delete(slices.Clone(st.synapses), i, i+1)
		st.neurons = slices.Clone(st.neurons)
		st.degree(in.Pre, 0, -1)
		if in.PostSubgraph == in.Subgraph {
			st.degree(in.Post, -1, 0) // across subgraphs, post's saga releases its in-slot later
		}
		return st, Output{Status: StatusOK}
	case ReadSynapse:
		i, ok := st.synapse(in.Pre, in.Post)
		if !ok {
			return st, Output{Status: StatusOK}
		}
		return st, Output{Status: StatusOK, Value: st.synapses[i].weight, Exists: true}
	case SagaEffect:
		return sagaEffect(st, in), Output{Status: StatusOK}
	case Decay:
		keep := DecayFactorPM(cfg.Policy.DecayPerSecondPM, in.RecoveryMs-in.HeartbeatMs)
		if keep != decayScale && len(st.neurons) > 0 {
			st.neurons = slices.Clone(st.neurons)
			for i := range st.neurons {
				st.neurons[i].potential = mulDecay(st.neurons[i].potential, keep)
			}
		}
		return st, Output{Status: StatusOK}
	}
	panic("linearizability: Apply on invalid kind " + in.Kind.String())
}

func connect(cfg *Config, st State, in Input) (State, Output) {
	if in.PostSubgraph != in.Subgraph {
		return st, Output{Status: StatusRejected, Reason: ReasonCrossSubgraph}
	}
	i, exists := st.synapse(in.Pre, in.Post)
	if exists {
		return st, Output{Status: StatusAlreadyExists}
	}
	p, okPre := st.neuron(in.Pre)
	q, okPost := st.neuron(in.Post)
	switch {
	case !okPre || !okPost:
		return st, Output{Status: StatusRejected, Reason: ReasonNoSuchNeuron}
	case st.neurons[p].out >= cfg.Policy.MaxOutDegree:
		return st, Output{Status: StatusRejected, Reason: ReasonMaxOutDegree}
	case st.neurons[q].in >= cfg.Policy.MaxInDegree:
		return st, Output{Status: StatusRejected, Reason: ReasonMaxInDegree}
	}
	b := cfg.Bounds
	if b == (Bounds{}) {
		b = DefaultBounds()
	}
	w := clamp(in.Weight, b.WeightMin, b.WeightMax)
	st.synapses = slices.Insert(slices.Clip(st.synapses), i, synapse{pre: in.Pre, post: in.Post, weight: w})
	st.neurons = slices.Clone(st.neurons)
	st.degree(in.Pre, 0, +1)
	st.degree(in.Post, +1, 0)
	return st, Output{Status: StatusOK, Value: w, Exists: true}
}

// sagaEffect applies a saga step the log decided (see [SagaEffect]).
func sagaEffect(st State, in Input) State {
	if in.Neuron != 0 {
		if _, ok := st.neuron(in.Neuron); ok {
			st.neurons = slices.Clone(st.neurons)
			st.degree(in.Neuron, int(in.DIn), int(in.DOut))
		}
		return st
	}
	if i, exists := st.synapse(in.Pre, in.Post); !exists {
		st.synapses = slices.Insert(slices.Clip(st.synapses), i, synapse{pre: in.Pre, post: in.Post, weight: in.Weight})
	}
	return st
}

// degree adjusts a neuron's degrees in place; st.neurons must be a private
// copy. A synapse endpoint without a neuron is a bug of the specification.
func (st *State) degree(id uint64, dIn, dOut int) {
	i, ok := st.neuron(id)
	if !ok {
		panic(fmt.Sprintf("linearizability: synapse endpoint n%d has no neuron", id))
	}
	n := &st.neurons[i]
	n.in = uint32(int(n.in) + dIn)
	n.out = uint32(int(n.out) + dOut)
}

func saturatingAdd(a, d int64) int64 {
	s := a + d
	switch {
	case d > 0 && s < a:
		return math.MaxInt64
	case d < 0 && s > a:
		return math.MinInt64
	}
	return s
}

func clamp(v, lo, hi int64) int64 {
	return min(max(v, lo), hi)
}

// decayScale is 1.0 for decay factors: parts per million.
const decayScale = 1_000_000

// DecayFactorPM is the domain's decay law, restated: after downtimeMs at a
// decay of perSecondPM per second, a potential keeps (1-rate)^seconds (fixed
// point, by binary exponentiation truncating every product to parts per
// million) times (1 - rate*fraction) for the millisecond remainder. No
// downtime or no rate keeps everything.
func DecayFactorPM(perSecondPM uint32, downtimeMs int64) int64 {
	if downtimeMs <= 0 || perSecondPM == 0 {
		return decayScale
	}
	rate := int64(perSecondPM)
	keep, sq := int64(decayScale), decayScale-rate
	for e := downtimeMs / 1000; e != 0 && keep != 0; e /= 2 {
		if e%2 == 1 {
			keep = keep * sq / decayScale
		}
		sq = sq * sq / decayScale
	}
	return keep * (decayScale - rate*(downtimeMs%1000)/1000) / decayScale
}

// mulDecay returns v*keepPM/1e6 rounded toward zero (a 128-bit product, so no
// overflow).
func mulDecay(v, keepPM int64) int64 {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	hi, lo := bits.Mul64(u, uint64(keepPM))
	q, _ := bits.Div64(hi, lo, decayScale)
	if neg {
		return -int64(q)
	}
	return int64(q)
}
