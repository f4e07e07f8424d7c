// Package model is the protocol core of territory: the domain (neurons,
// synapses, subgraphs, policy), the events of the replicated log and their
// encoding, the subgraph state as a pure fold of events, and the state machines
// of the territory host and the client.
//
// The package is sans-IO in the style of etcd's raft: a state machine takes an
// Input (a message, a service result, a timer) and appends Effects to an Outbox
// (messages to send, log appends, coordination-store calls, timers). It never
// reads a clock, never draws randomness it was not handed, never starts a
// goroutine and never touches the network or a disk. The simulator and the
// production runtime are two drivers of this same code.
package model

import "fmt"

// NeuronID names a neuron.
type NeuronID uint64

// SubgraphID names a subgraph: the unit of routing, logging, snapshotting and
// migration. Each subgraph has its own log stream and LSN sequence.
type SubgraphID uint32

// SynapseKey names the synapse from Pre to Post. A synapse lives in the
// subgraph of its pre neuron (the axon terminal's side).
type SynapseKey struct{ Pre, Post NeuronID }

// FixedOne is 1.0 in the fixed-point representation of potentials and weights.
// Integers, not floats, so that a replay on any CPU gives the same state.
const FixedOne int64 = 1 << 16

// Clamp bounds of the fixed-point values. Stimulate and adjust saturate at them.
const (
	PotentialMin int64 = -(1 << 40)
	PotentialMax int64 = 1 << 40
	WeightMin    int64 = -(1 << 30)
	WeightMax    int64 = 1 << 30
)

func clamp(v, lo, hi int64) int64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// addClamped adds without overflow and saturates to [lo, hi].
func addClamped(a, b, lo, hi int64) int64 {
	s := a + b
	// Overflow happens only when both operands share a sign and the sum does not.
	if (a > 0 && b > 0 && s < 0) || (a < 0 && b < 0 && s >= 0) {
		if a > 0 {
			return hi
		}
		return lo
	}
	return clamp(s, lo, hi)
}

// SubgraphOf maps a neuron to its subgraph: hash(neuron) mod count. The hash
// is a fixed integer mixer (SplitMix64's finalizer), identical on every
// platform and version, because the mapping is persistent routing data.
func SubgraphOf(n NeuronID, count uint32) SubgraphID {
	if count == 0 {
		panic("model: SubgraphOf with zero subgraphs")
	}
	z := uint64(n)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return SubgraphID(z % uint64(count))
}

// Policy is one policy epoch: the versioned configuration every territory
// applies. Adopting an epoch is itself a logged event.
type Policy struct {
	Epoch            uint64
	MaxOutDegree     uint32
	MaxInDegree      uint32
	DecayPerSecondPM uint32 // potential lost per second of downtime, in parts per million
	SupernodeDegree  uint32 // in+out degree at which a neuron becomes a supernode
	SnapshotEvery    uint32 // events between snapshots (0: never)
}

// DefaultPolicy is the policy of a new cluster.
func DefaultPolicy() Policy {
	return Policy{Epoch: 1, MaxOutDegree: 8, MaxInDegree: 8, DecayPerSecondPM: 1000, SupernodeDegree: 12, SnapshotEvery: 0}
}

// GenesisPolicy is the policy of a subgraph before its log adopts one (epoch
// 0: nothing allowed, no decay). The first event a primary logs on a new
// stream adopts the cluster's policy, so the state is a fold of the log alone.
func GenesisPolicy() Policy { return Policy{} }

// Validate reports a policy that no territory could apply.
func (p Policy) Validate() error {
	if p.Epoch == 0 {
		return fmt.Errorf("policy: epoch must be positive")
	}
	if p.MaxOutDegree == 0 || p.MaxInDegree == 0 {
		return fmt.Errorf("policy epoch %d: max degrees must be positive (out=%d in=%d)", p.Epoch, p.MaxOutDegree, p.MaxInDegree)
	}
	if p.DecayPerSecondPM > 1_000_000 {
		return fmt.Errorf("policy epoch %d: decay %d ppm per second exceeds 1e6", p.Epoch, p.DecayPerSecondPM)
	}
	return nil
}

// EventUUID identifies a client request across retries (the idempotency key).
// Drivers and clients build it from a client id and a per-client sequence, so
// it needs no randomness.
type EventUUID struct{ Hi, Lo uint64 }

// IsZero reports the zero UUID, which no request may carry.
func (u EventUUID) IsZero() bool { return u.Hi == 0 && u.Lo == 0 }

func (u EventUUID) String() string { return fmt.Sprintf("%016x-%016x", u.Hi, u.Lo) }
