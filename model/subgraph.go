package model

import (
	"fmt"
	"math/bits"
	"slices"
)

// Neuron is the state of one neuron.
type Neuron struct {
	Potential int64
	InDegree  uint32
	OutDegree uint32
	Supernode bool
}

// SubgraphState is the state of one subgraph: a pure fold of its log.
type SubgraphState struct {
	ID              SubgraphID
	Count           uint32 // subgraphs in the cluster, for SubgraphOf
	AppliedLSN      uint64
	Policy          Policy
	LastHeartbeatMs int64
	neurons         map[NeuronID]Neuron
	synapses        map[SynapseKey]int64 // pre side: local synapses and committed cross-subgraph ones
	dedup           dedupTable
	saga            sagaState
	sums            elementSums // set hashes of neurons and synapses, kept by every write (subgraph_digest.go)
}

// NewSubgraphState is the empty state at LSN 0.
func NewSubgraphState(id SubgraphID, count uint32, policy Policy) *SubgraphState {
	if uint32(id) >= count {
		panic(fmt.Sprintf("model: subgraph %d out of range %d", id, count))
	}
	return &SubgraphState{
		ID: id, Count: count, Policy: policy,
		neurons: make(map[NeuronID]Neuron), synapses: make(map[SynapseKey]int64),
		dedup: newDedupTable(), saga: newSagaState(),
	}
}

// Neurons and Synapses count the subgraph's contents.
func (s *SubgraphState) Neurons() int  { return len(s.neurons) }
func (s *SubgraphState) Synapses() int { return len(s.synapses) }

// Neuron returns one neuron.
func (s *SubgraphState) Neuron(id NeuronID) (Neuron, bool) {
	n, ok := s.neurons[id]
	return n, ok
}

// Synapse returns one synapse's weight.
func (s *SubgraphState) Synapse(k SynapseKey) (int64, bool) {
	w, ok := s.synapses[k]
	return w, ok
}

// Deduped returns the recorded result of a request already applied.
func (s *SubgraphState) Deduped(id EventUUID) (Result, bool) { return s.dedup.get(id) }

// Apply folds one event into the state and returns the operation's result.
// An event at or below AppliedLSN changes nothing (applied=false). An event
// whose event_uuid was already applied advances AppliedLSN but changes nothing
// else, and returns the original result: a retried write is applied once.
func (s *SubgraphState) Apply(ev *Event) (res Result, applied bool) {
	if ev.Subgraph != s.ID {
		panic(fmt.Sprintf("model: event for subgraph %d applied to subgraph %d", ev.Subgraph, s.ID))
	}
	if ev.LSN <= s.AppliedLSN {
		if r, ok := s.dedup.get(ev.UUID); ok {
			return r, false
		}
		return Result{}, false
	}
	if ev.LSN != s.AppliedLSN+1 {
		// The log is contiguous; a gap means a driver skipped entries.
		panic(fmt.Sprintf("model: subgraph %d: LSN gap, applied %d, next event %d", s.ID, s.AppliedLSN, ev.LSN))
	}
	s.AppliedLSN = ev.LSN
	if !ev.UUID.IsZero() {
		if r, ok := s.dedup.get(ev.UUID); ok {
			return r, false
		}
	}
	res = s.mutate(ev)
	// Every event carries its writer's clock: the latest is the subgraph's
	// last heartbeat, the base of decay when it recovers.
	if ev.Type != EvTerritoryRecovered && ev.TimestampMs > s.LastHeartbeatMs {
		s.LastHeartbeatMs = ev.TimestampMs
	}
	if !ev.UUID.IsZero() {
		s.dedup.put(ev.UUID, res, ev.TimestampMs)
	}
	return res, true
}

func (s *SubgraphState) mutate(ev *Event) Result {
	if ev.Type.IsSaga() {
		return s.mutateSaga(ev)
	}
	switch ev.Type {
	case EvCreateNeuron:
		if _, ok := s.neurons[ev.Neuron]; ok {
			return Result{Status: StatusAlreadyExists}
		}
		s.setNeuron(ev.Neuron, Neuron{})
		return Result{Status: StatusOK}
	case EvStimulate:
		n, ok := s.neurons[ev.Neuron]
		if !ok {
			return Result{Status: StatusNotFound, Reason: ReasonNoSuchNeuron}
		}
		n.Potential = addClamped(n.Potential, ev.Value, PotentialMin, PotentialMax)
		s.setNeuron(ev.Neuron, n)
		return Result{Status: StatusOK, Value: n.Potential, Exists: true}
	case EvConnect:
		return s.connect(ev)
	case EvAdjustWeight:
		k := SynapseKey{ev.Pre, ev.Post}
		w, ok := s.synapses[k]
		if !ok {
			return Result{Status: StatusNotFound}
		}
		w = addClamped(w, ev.Value, WeightMin, WeightMax)
		s.setSynapse(k, w)
		return Result{Status: StatusOK, Value: w, Exists: true}
	case EvPrune:
		k := SynapseKey{ev.Pre, ev.Post}
		if _, ok := s.synapses[k]; !ok {
			return Result{Status: StatusNotFound}
		}
		if saga, ok := s.saga.cross[k]; ok {
			return s.pruneCross(k, saga)
		}
		s.delSynapse(k)
		s.setDegree(ev.Pre, 0, -1)
		s.setDegree(ev.Post, -1, 0)
		return Result{Status: StatusOK}
	case EvAdoptPolicy:
		if ev.Policy.Epoch > s.Policy.Epoch {
			s.Policy = ev.Policy
		}
		return Result{Status: StatusOK}
	case EvHeartbeat:
		return Result{Status: StatusOK}
	case EvTerritoryRecovered:
		// Decay for the downtime: the recovery timestamp minus the last
		// heartbeat before the recovery, both in the event. The result
		// carries the factor kept.
		keep := DecayFactorPM(s.Policy.DecayPerSecondPM, ev.TimestampMs-ev.Recovery.LastHeartbeatMs)
		s.decay(keep)
		if ev.TimestampMs > s.LastHeartbeatMs {
			s.LastHeartbeatMs = ev.TimestampMs
		}
		return Result{Status: StatusOK, Value: keep}
	}
	panic(fmt.Sprintf("model: subgraph %d: unknown event type %d at LSN %d", s.ID, ev.Type, ev.LSN))
}

func (s *SubgraphState) connect(ev *Event) Result {
	if SubgraphOf(ev.Post, s.Count) != s.ID {
		return Result{Status: StatusRejected, Reason: ReasonCrossSubgraph}
	}
	k := SynapseKey{ev.Pre, ev.Post}
	if _, ok := s.synapses[k]; ok {
		return Result{Status: StatusAlreadyExists}
	}
	pre, okPre := s.neurons[ev.Pre]
	post, okPost := s.neurons[ev.Post]
	if !okPre || !okPost {
		return Result{Status: StatusRejected, Reason: ReasonNoSuchNeuron}
	}
	if pre.OutDegree >= s.Policy.MaxOutDegree {
		return Result{Status: StatusRejected, Reason: ReasonMaxOutDegree}
	}
	if post.InDegree >= s.Policy.MaxInDegree {
		return Result{Status: StatusRejected, Reason: ReasonMaxInDegree}
	}
	s.setSynapse(k, clamp(ev.Value, WeightMin, WeightMax))
	s.setDegree(ev.Pre, 0, +1)
	s.setDegree(ev.Post, +1, 0)
	return Result{Status: StatusOK, Value: s.synapses[k], Exists: true}
}

func (s *SubgraphState) setDegree(id NeuronID, dIn, dOut int) {
	n, ok := s.neurons[id]
	if !ok {
		panic(fmt.Sprintf("model: subgraph %d: synapse endpoint n%d has no neuron", s.ID, id))
	}
	n.InDegree = uint32(int(n.InDegree) + dIn)
	n.OutDegree = uint32(int(n.OutDegree) + dOut)
	n.Supernode = s.Policy.SupernodeDegree > 0 && n.InDegree+n.OutDegree >= s.Policy.SupernodeDegree
	s.setNeuron(id, n)
}

// decayScale is 1.0 for decay factors: parts per million.
const decayScale = 1_000_000

// DecayFactorPM is the fraction of potential kept after downtimeMs at a decay
// of perSecondPM per second, in parts per million: (1-rate)^seconds, computed
// by squaring in integers so every CPU gets the same answer.
func DecayFactorPM(perSecondPM uint32, downtimeMs int64) int64 {
	if downtimeMs <= 0 || perSecondPM == 0 {
		return decayScale
	}
	keepPerSecond := int64(decayScale - perSecondPM)
	result, base := int64(decayScale), keepPerSecond
	for sec := downtimeMs / 1000; sec > 0 && result > 0; sec >>= 1 {
		if sec&1 == 1 {
			result = result * base / decayScale
		}
		base = base * base / decayScale
	}
	// The fraction of a second left over decays linearly.
	frac := downtimeMs % 1000
	return result * (decayScale - int64(perSecondPM)*frac/1000) / decayScale
}

func (s *SubgraphState) decay(keep int64) {
	if keep == decayScale {
		return
	}
	for id, n := range s.neurons { // order: each neuron is updated independently
		n.Potential = MulDecay(n.Potential, keep)
		s.setNeuron(id, n)
	}
}

// MulDecay returns v*keep/1e6 (keep in parts per million) without overflow,
// rounding toward zero: a potential after decay.
func MulDecay(v, keep int64) int64 {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	hi, lo := bits.Mul64(u, uint64(keep))
	q, _ := bits.Div64(hi, lo, decayScale)
	if neg {
		return -int64(q)
	}
	return int64(q)
}

// Read answers a read request from the state.
func (s *SubgraphState) Read(req *Request) Result {
	switch req.Op {
	case OpReadNeuron:
		n, ok := s.neurons[req.Neuron]
		return Result{Status: StatusOK, Exists: ok, Value: n.Potential, InDegree: n.InDegree, OutDegree: n.OutDegree}
	case OpReadSynapse:
		w, ok := s.synapses[SynapseKey{req.Pre, req.Post}]
		return Result{Status: StatusOK, Exists: ok, Value: w}
	}
	panic(fmt.Sprintf("model: Read of a write operation %s", req.Op))
}

func compareSynapse(a, b SynapseKey) int {
	switch {
	case a.Pre < b.Pre:
		return -1
	case a.Pre > b.Pre:
		return 1
	case a.Post < b.Post:
		return -1
	case a.Post > b.Post:
		return 1
	}
	return 0
}

// digest is FNV-1a over 64-bit words.
type digest struct{ sum uint64 }

func newDigest() *digest { return &digest{sum: 14695981039346656037} }

func (d *digest) u64(v uint64) {
	for i := 0; i < 8; i++ {
		d.sum ^= v & 0xff
		d.sum *= 1099511628211
		v >>= 8
	}
}

// Fold builds a subgraph's state from its committed log entries, the way a
// recovering territory does. It is what the checkers compare live state with.
func Fold(id SubgraphID, count uint32, policy Policy, entries []LogEntry) (*SubgraphState, error) {
	s := NewSubgraphState(id, count, policy)
	for i := range entries {
		ev, err := DecodeEvent(entries[i].Data)
		if err != nil {
			return nil, fmt.Errorf("fold subgraph %d: entry at LSN %d: %w", id, entries[i].LSN, err)
		}
		if ev.LSN != entries[i].LSN {
			return nil, fmt.Errorf("fold subgraph %d: entry at LSN %d carries LSN %d", id, entries[i].LSN, ev.LSN)
		}
		s.Apply(&ev)
	}
	return s, nil
}

// Supernodes lists the subgraph's supernodes, ascending.
func (s *SubgraphState) Supernodes() []NeuronID {
	var ids []NeuronID
	for id, n := range s.neurons { // order: sorted below
		if n.Supernode {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// HasSupernode reports whether any neuron of the subgraph is a supernode.
func (s *SubgraphState) HasSupernode() bool {
	for _, n := range s.neurons { // order: an existence test, nothing reaches an output
		if n.Supernode {
			return true
		}
	}
	return false
}
