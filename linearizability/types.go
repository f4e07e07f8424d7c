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
	// Decay scales a neuron's potential by Delta parts per million (the
	// TerritoryRecovered event's downtime decay). It is recorded by the
	// simulator for each neuron of the recovered subgraph, from the moment
	// the event committed, with an open return.
	Decay
)

var kindNames = [...]string{
	CreateNeuron: "create",
	Stimulate:    "stimulate",
	ReadNeuron:   "read",
	Connect:      "connect",
	AdjustWeight: "adjust",
	Prune:        "prune",
	ReadSynapse:  "read",
	Decay:        "decay",
}

// Valid reports whether k is one of the declared kinds.
func (k Kind) Valid() bool { return k >= CreateNeuron && k <= Decay }

// IsRead reports whether k is ReadNeuron or ReadSynapse.
func (k Kind) IsRead() bool { return k == ReadNeuron || k == ReadSynapse }

// OnSynapse reports whether k addresses a synapse (Pre, Post) rather than a
// neuron.
func (k Kind) OnSynapse() bool { return k >= Connect && k <= ReadSynapse }

func (k Kind) String() string {
	if !k.Valid() {
		return "kind(" + strconv.Itoa(int(k)) + ")"
	}
	if k == ReadSynapse {
		return "read-synapse"
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
)

var statusNames = [...]string{
	StatusOK:            "ok",
	StatusNotFound:      "not-found",
	StatusAlreadyExists: "already-exists",
	StatusRejected:      "rejected",
	StatusUnknown:       "unknown",
}

// Valid reports whether s is one of the declared statuses.
func (s Status) Valid() bool { return s >= StatusOK && s <= StatusUnknown }

func (s Status) String() string {
	if !s.Valid() {
		return "status(" + strconv.Itoa(int(s)) + ")"
	}
	return statusNames[s]
}

// Input is one client request. Neuron is used by the neuron kinds, Pre and
// Post by the synapse kinds; Delta by Stimulate and AdjustWeight; Weight by
// Connect.
type Input struct {
	Kind      Kind
	Neuron    uint64
	Pre, Post uint64
	Delta     int64
	Weight    int64
}

// Output is the response the client saw. Value is the new potential/weight
// for Stimulate/AdjustWeight and the current one for reads; Exists is set by
// reads only.
type Output struct {
	Status Status
	Value  int64
	Exists bool
}

// Key is the partition key of an input: "n/<id>" for neuron kinds,
// "s/<pre>/<post>" for synapse kinds, "?" for an invalid kind.
func Key(in Input) string {
	switch {
	case !in.Kind.Valid():
		return "?"
	case in.Kind.OnSynapse():
		return "s/" + strconv.FormatUint(in.Pre, 10) + "/" + strconv.FormatUint(in.Post, 10)
	default:
		return "n/" + strconv.FormatUint(in.Neuron, 10)
	}
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
		return fmt.Sprintf("decay(n%d, keep %d ppm)", in.Neuron, in.Delta)
	}
	return fmt.Sprintf("%s(neuron=%d, pre=%d, post=%d)", in.Kind, in.Neuron, in.Pre, in.Post)
}

// describe renders an input and its output, e.g. "stimulate(n7, +3) -> 12".
func describe(in Input, out Output) string {
	return in.String() + " -> " + describeOutput(in.Kind, out)
}

func describeOutput(k Kind, out Output) string {
	if out.Status != StatusOK {
		return out.Status.String()
	}
	switch k {
	case Stimulate, AdjustWeight:
		return strconv.FormatInt(out.Value, 10)
	case ReadNeuron, ReadSynapse:
		if !out.Exists {
			return "absent"
		}
		return strconv.FormatInt(out.Value, 10)
	}
	return "ok"
}
