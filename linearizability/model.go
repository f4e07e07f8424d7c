package linearizability

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"

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

// state is the per-key state: a neuron's potential or a synapse's weight.
// An absent key always has value 0, so == is the right equality.
type state struct {
	exists bool
	value  int64
}

func (s state) String() string {
	if !s.exists {
		return "absent"
	}
	return "value " + strconv.FormatInt(s.value, 10)
}

// Model returns the porcupine model of one key (neuron or synapse), with the
// partition functions that split a history by [Key].
func Model(b Bounds) porcupine.Model {
	b = b.normalize()
	return porcupine.Model{
		Partition:      partitionOperations,
		PartitionEvent: partitionEvents,
		Init:           func() any { return state{} },
		Step: func(s, in, out any) (bool, any) {
			return step(b, s.(state), in, out)
		},
		Equal: func(x, y any) bool { return x.(state) == y.(state) },
		Hash: func(s any) uint64 {
			st := s.(state)
			h := uint64(st.value) * 0x9E3779B97F4A7C15
			if st.exists {
				h ^= 1
			}
			return h
		},
		DescribeOperation: func(in, out any) string {
			i, ok1 := in.(Input)
			o, ok2 := out.(Output)
			if !ok1 || !ok2 {
				return fmt.Sprintf("%v -> %v", in, out)
			}
			return describe(i, o)
		},
		DescribeState: func(s any) string { return s.(state).String() },
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
func step(b Bounds, st state, input, output any) (bool, state) {
	in, ok1 := input.(Input)
	out, ok2 := output.(Output)
	if !ok1 || !ok2 || !in.Kind.Valid() {
		return false, st
	}
	next, want := apply(b, st, in)
	switch out.Status {
	case StatusUnknown:
		// Took effect here; "never took effect" is linearizing it last.
		return true, next
	case StatusRejected:
		// Policy rejection: allowed for any write in any state, no change.
		return !in.Kind.IsRead(), st
	}
	return matches(in.Kind, want, out), next
}

// apply is the sequential specification: the next state and the output a
// correct store gives when in runs alone in state st.
func apply(b Bounds, st state, in Input) (state, Output) {
	switch in.Kind {
	case CreateNeuron:
		if st.exists {
			return st, Output{Status: StatusAlreadyExists}
		}
		return state{exists: true}, Output{Status: StatusOK}
	case Stimulate, AdjustWeight:
		if !st.exists {
			return st, Output{Status: StatusNotFound}
		}
		lo, hi := b.PotentialMin, b.PotentialMax
		if in.Kind == AdjustWeight {
			lo, hi = b.WeightMin, b.WeightMax
		}
		v := clamp(saturatingAdd(st.value, in.Delta), lo, hi)
		return state{exists: true, value: v}, Output{Status: StatusOK, Value: v}
	case Connect:
		if st.exists {
			return st, Output{Status: StatusAlreadyExists}
		}
		return state{exists: true, value: clamp(in.Weight, b.WeightMin, b.WeightMax)}, Output{Status: StatusOK}
	case Prune:
		if !st.exists {
			return st, Output{Status: StatusNotFound}
		}
		return state{}, Output{Status: StatusOK}
	case ReadNeuron, ReadSynapse:
		return st, Output{Status: StatusOK, Value: st.value, Exists: st.exists}
	case Decay:
		if !st.exists {
			return st, Output{Status: StatusOK}
		}
		return state{exists: true, value: decay(st.value, in.Delta)}, Output{Status: StatusOK}
	}
	panic("linearizability: apply on invalid kind " + in.Kind.String())
}

// matches compares the fields of an output that are defined for its kind.
func matches(k Kind, want, got Output) bool {
	if want.Status != got.Status {
		return false
	}
	if want.Status != StatusOK {
		return true
	}
	switch k {
	case Stimulate, AdjustWeight:
		return want.Value == got.Value
	case ReadNeuron, ReadSynapse:
		return want.Value == got.Value && want.Exists == got.Exists
	}
	return true
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

// decay returns v*keepPM/1e6 rounded toward zero, exactly as the store's fold
// computes it (a 128-bit product, so no overflow).
func decay(v, keepPM int64) int64 {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	hi, lo := bits.Mul64(u, uint64(keepPM))
	q, _ := bits.Div64(hi, lo, 1_000_000)
	if neg {
		return -int64(q)
	}
	return int64(q)
}
