package kernel

import "hash/fnv"

// Rand is a small, fast, seedable PRNG (SplitMix64). Each simulated component
// gets its own stream, derived from the run seed and the component's name, so
// adding a component does not shift every other component's randomness.
type Rand struct{ state uint64 }

// NewRand returns a stream seeded directly.
func NewRand(seed uint64) *Rand { return &Rand{state: seed} }

// Stream returns the PRNG stream for a named component of this run.
func (k *Kernel) Stream(name string) *Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return &Rand{state: mix(k.seed ^ mix(h.Sum64()))}
}

func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Uint64 returns the next value of the stream.
func (r *Rand) Uint64() uint64 {
	r.state += 0x9e3779b97f4a7c15
	return mix(r.state)
}

// Intn returns a value in [0, n). n must be positive.
func (r *Rand) Intn(n int) int {
	if n <= 0 {
		panic("kernel: Intn with n <= 0")
	}
	return int(r.Uint64() % uint64(n))
}

// Int63n returns a value in [0, n). n must be positive.
func (r *Rand) Int63n(n int64) int64 {
	if n <= 0 {
		panic("kernel: Int63n with n <= 0")
	}
	return int64(r.Uint64() % uint64(n))
}

// Chance reports true with probability perMillion / 1e6. Integer odds keep a
// replay identical on every CPU (no floats).
func (r *Rand) Chance(perMillion int64) bool {
	if perMillion <= 0 {
		return false
	}
	return int64(r.Uint64()%1_000_000) < perMillion
}

// Between returns a value in [lo, hi].
func (r *Rand) Between(lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + r.Int63n(hi-lo+1)
}

// Fork derives an independent child stream (for per-host sub-components).
func (r *Rand) Fork() *Rand { return &Rand{state: mix(r.Uint64())} }
