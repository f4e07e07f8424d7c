package model

import "fmt"

// The incremental state digest. A subgraph's neurons, synapses and dedup
// entries are a set; their digest is the sum (mod 2^64) of a mixing hash of
// each element, which an apply updates in O(1): subtract the element's old
// hash, add its new one. Digest combines that sum with the scalar fields and
// the saga records (few: the reservations in flight, the cross-subgraph
// synapses and unlinks), so the periodic state check costs O(subgraphs), not
// O(state). FullDigest recomputes the sums from the maps; CheckDigest compares
// the two, the cross-check that a write which bypassed the helpers below (or
// updated the sum wrongly) is found. Every write of neurons, synapses and the
// dedup table goes through setNeuron, setSynapse, delSynapse and
// dedupTable.put.

// elementSums are the set hashes of a state's elements.
type elementSums struct {
	neurons  uint64
	synapses uint64
	dedup    uint64
}

// hash3 mixes a tagged element of three words (mix64: saga_state.go).
func hash3(tag, a, b, c uint64) uint64 {
	return mix64(tag ^ mix64(a^mix64(b^mix64(c))))
}

func neuronHash(id NeuronID, n Neuron) uint64 {
	return hash3(0x6e, uint64(id), uint64(n.Potential), uint64(n.InDegree)<<32|uint64(n.OutDegree))
}

func synapseHash(k SynapseKey, w int64) uint64 {
	return hash3(0x73, uint64(k.Pre), uint64(k.Post), uint64(w))
}

// resultHash is one recorded result of the dedup table (dedup.go).
func resultHash(id EventUUID, r Result) uint64 {
	exists := uint64(0)
	if r.Exists {
		exists = 1
	}
	return hash3(0x72^uint64(r.Status)<<16^uint64(r.Reason)<<8^exists<<7, id.Hi, id.Lo, uint64(r.Value))
}

func (s *SubgraphState) setNeuron(id NeuronID, n Neuron) {
	if old, ok := s.neurons[id]; ok {
		s.sums.neurons -= neuronHash(id, old)
	}
	s.neurons[id] = n
	s.sums.neurons += neuronHash(id, n)
}

func (s *SubgraphState) setSynapse(k SynapseKey, w int64) {
	if old, ok := s.synapses[k]; ok {
		s.sums.synapses -= synapseHash(k, old)
	}
	s.synapses[k] = w
	s.sums.synapses += synapseHash(k, w)
}

func (s *SubgraphState) delSynapse(k SynapseKey) {
	if old, ok := s.synapses[k]; ok {
		s.sums.synapses -= synapseHash(k, old)
		delete(s.synapses, k)
	}
}

// fullSums recomputes the element sums from the maps.
func (s *SubgraphState) fullSums() elementSums {
	var e elementSums
	for id, n := range s.neurons { // order: a sum, the same in any order
		e.neurons += neuronHash(id, n)
	}
	for k, w := range s.synapses { // order: a sum, the same in any order
		e.synapses += synapseHash(k, w)
	}
	e.dedup = s.dedup.fullSum()
	return e
}

// Digest is a hash of the whole state, identical for identical states whatever
// the order in which they were built. It reads the sums kept by the writes.
func (s *SubgraphState) Digest() uint64 {
	return s.digestWith(elementSums{s.sums.neurons, s.sums.synapses, s.dedup.sum})
}

// FullDigest is Digest computed from the maps, without the kept sums.
func (s *SubgraphState) FullDigest() uint64 { return s.digestWith(s.fullSums()) }

// CheckDigest reports a kept sum that differs from its recomputation.
func (s *SubgraphState) CheckDigest() error {
	kept, full := elementSums{s.sums.neurons, s.sums.synapses, s.dedup.sum}, s.fullSums()
	if kept != full {
		return fmt.Errorf("subgraph %d at LSN %d: incremental digest sums %x, recomputed %x", s.ID, s.AppliedLSN, kept, full)
	}
	return nil
}

func (s *SubgraphState) digestWith(e elementSums) uint64 {
	h := newDigest()
	h.u64(uint64(s.ID))
	h.u64(s.AppliedLSN)
	h.u64(s.Policy.Epoch)
	h.u64(uint64(s.Policy.MaxOutDegree)<<32 | uint64(s.Policy.MaxInDegree))
	h.u64(uint64(s.Policy.DecayPerSecondPM)<<32 | uint64(s.Policy.SupernodeDegree))
	h.u64(uint64(s.LastHeartbeatMs))
	h.u64(uint64(len(s.neurons)))
	h.u64(e.neurons)
	h.u64(uint64(len(s.synapses)))
	h.u64(e.synapses)
	h.u64(uint64(s.dedup.len()))
	h.u64(s.dedup.headSeq)
	h.u64(uint64(s.dedup.maxTsMs))
	h.u64(e.dedup)
	s.digestSaga(h)
	return h.sum
}
