package linearizability

import (
	"fmt"
	"strconv"
)

// Kind is the operation a client invoked. The zero Kind is invalid.
type Kind uint8

const (
	CreateNeuron Kind = iota + 1
	Stimulate
	ReadNeuron
	Connect
	AdjustWeight
	Prune
	ReadSynapse
	// Decay is a recovery's downtime decay (the TerritoryRecovered event):
	// one atomic operation over its whole subgraph that scales every
	// potential by a factor recomputed from RecoveryMs - HeartbeatMs at the
	// policy's decay rate. The simulator records it from the entry's first
	// append to the moment it became visible (applied by a primary).
	Decay
	// SagaEffect is one step of a cross-subgraph handshake saga, as the
	// log decided it: a degree change of Neuron (a reservation or its
	// release at pre, an in-slot or its release at post), or the insert of
	// the synapse Pre->Post with Weight when pre's log commits the saga.
	// Its answer is always ok; the saga's decisions are checked by the
	// simulator's saga and degree checks, and the client's answer to the
	// cross-subgraph connect against pre's log.
	SagaEffect
)

var kindNames = [...]string{
	CreateNeuron: "create",
	Stimulate:    "stimulate",
	ReadNeuron:   "read",
	Connect:      "connect",
	AdjustWeight: "adjust",
	Prune:        "prune",
	ReadSynapse:  "read-synapse",
	Decay:        "decay",
	SagaEffect:   "saga",
}

// Valid reports whether k is one of the declared kinds.
func (k Kind) Valid() bool { return k >= CreateNeuron && k <= SagaEffect }

// IsRead reports whether k is ReadNeuron or ReadSynapse.
func (k Kind) IsRead() bool { return k == ReadNeuron || k == ReadSynapse }

// OnSynapse reports whether k addresses a synapse (Pre, Post) rather than a
// neuron.
func (k Kind) OnSynapse() bool { return k >= Connect && k <= ReadSynapse }

func (k Kind) String() string {
	if !k.Valid() {
		return "kind(" + strconv.Itoa(int(k)) + ")"
	}
	return kindNames[k]
}

// Status is the outcome reported to the client. The zero Status is invalid.
type Status uint8

const (
	StatusOK Status = iota + 1
	StatusNotFound
	StatusAlreadyExists
	StatusRejected
	// StatusUnknown: the client does not know whether the operation took
	// effect (timeout, lost connection). Recorded with an open return.
	StatusUnknown
	// StatusBadRequest: the store called a request malformed. Every recorded
	// input is well formed, so the model never allows it. (A bad request
	// refused by the client itself was never sent and is not recorded.)
	StatusBadRequest
)

var statusNames = [...]string{
	StatusOK:            "ok",
	StatusNotFound:      "not-found",
	StatusAlreadyExists: "already-exists",
	StatusRejected:      "rejected",
	StatusUnknown:       "unknown",
	StatusBadRequest:    "bad-request",
}

// Valid reports whether s is one of the declared statuses.
func (s Status) Valid() bool { return s >= StatusOK && s <= StatusBadRequest }

func (s Status) String() string {
	if !s.Valid() {
		return "status(" + strconv.Itoa(int(s)) + ")"
	}
	return statusNames[s]
}

// Reason qualifies an answer the way the domain does (the
// mandate.fulfillment.failed reason codes): a rejected connect says why, and
// a stimulate of a missing neuron answers not-found with ReasonNoSuchNeuron.
type Reason uint8

const (
	ReasonNone Reason = iota
	ReasonMaxOutDegree
	ReasonMaxInDegree
	ReasonNoSuchNeuron
	ReasonCrossSubgraph
)

var reasonNames = [...]string{"", "max-out-degree", "max-in-degree", "no-such-neuron", "cross-subgraph"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// UUID is a request's event_uuid (the idempotency key); the log checker
// finds a write's log entry by it.
type UUID struct{ Hi, Lo uint64 }

// IsZero reports the zero UUID.
func (u UUID) IsZero() bool { return u == UUID{} }

func (u UUID) String() string { return fmt.Sprintf("%016x-%016x", u.Hi, u.Lo) }

// Input is one request. Subgraph is the subgraph that owns it (of Neuron, or
// of Pre for synapse kinds): the partition. PostSubgraph is Post's subgraph
// (connects across subgraphs are rejected). Delta is used by Stimulate and
// AdjustWeight, Weight by Connect, RecoveryMs and HeartbeatMs by Decay.
type Input struct {
	Kind         Kind
	ID           UUID
	Subgraph     uint32
	PostSubgraph uint32
	Neuron       uint64
	Pre, Post    uint64
	Delta        int64
	Weight       int64
	RecoveryMs   int64
	HeartbeatMs  int64
	DIn, DOut    int8 // SagaEffect: the degree change of Neuron
}

// Output is the response the client saw, compared field by field with the
// sequential specification: Value is the new potential or weight (stimulate,
// adjust), the weight set (connect) or the value read; Exists is set by reads
// of a present key and by successful stimulate, connect and adjust.
type Output struct {
	Status Status
	Reason Reason
	Value  int64
	Exists bool
}

// Key is the partition key of an input: its subgraph, "sg/<n>"; "?" for an
// invalid kind. A connect reads and writes both of its neurons (degrees), so
// the unit of order is the subgraph, which has one log.
func Key(in Input) string {
	if !in.Kind.Valid() {
		return "?"
	}
	return "sg/" + strconv.FormatUint(uint64(in.Subgraph), 10)
}

// String renders the input as in the HTML picture, e.g. "stimulate(n7, +3)".
func (in Input) String() string {
	switch in.Kind {
	case CreateNeuron, ReadNeuron:
		return fmt.Sprintf("%s(n%d)", in.Kind, in.Neuron)
	case Stimulate:
		return fmt.Sprintf("stimulate(n%d, %+d)", in.Neuron, in.Delta)
	case Connect:
		return fmt.Sprintf("connect(n%d->n%d, w=%d)", in.Pre, in.Post, in.Weight)
	case AdjustWeight:
		return fmt.Sprintf("adjust(n%d->n%d, %+d)", in.Pre, in.Post, in.Delta)
	case Prune, ReadSynapse:
		return fmt.Sprintf("%s(n%d->n%d)", in.Kind, in.Pre, in.Post)
	case Decay:
		return fmt.Sprintf("decay(sg%d, down %dms)", in.Subgraph, in.RecoveryMs-in.HeartbeatMs)
	case SagaEffect:
		if in.Neuron != 0 {
			return fmt.Sprintf("saga(n%d in %+d out %+d)", in.Neuron, in.DIn, in.DOut)
		}
		return fmt.Sprintf("saga(commit n%d->n%d, w=%d)", in.Pre, in.Post, in.Weight)
	}
	return fmt.Sprintf("%s(neuron=%d, pre=%d, post=%d)", in.Kind, in.Neuron, in.Pre, in.Post)
}

// describe renders an input and its output, e.g. "stimulate(n7, +3) -> 12".
func describe(in Input, out Output) string {
	return in.String() + " -> " + describeOutput(in.Kind, out)
}

func describeOutput(k Kind, out Output) string {
	if out.Status != StatusOK {
		if out.Reason != ReasonNone {
			return out.Status.String() + " (" + out.Reason.String() + ")"
		}
		return out.Status.String()
	}
	switch k {
	case Stimulate, AdjustWeight, Connect:
		return strconv.FormatInt(out.Value, 10)
	case ReadNeuron, ReadSynapse:
		if !out.Exists {
			return "absent"
		}
		return strconv.FormatInt(out.Value, 10)
	}
	return "ok"
}
