package linearizability

import (
	"fmt"
	"math"

	"github.com/anishathalye/porcupine"
)

// OpID identifies a recorded operation; it is its index in record order.
type OpID int

// Open is the return time of an operation whose outcome is unknown: it may
// be linearized at any point after its call.
const Open int64 = math.MaxInt64

// Recorder collects a history in virtual time. It is not safe for concurrent
// use (the simulator is single-threaded); wrap it in a mutex to share it.
//
// Misuse — an invalid kind or status, an unknown OpID, a second Return, a
// return before the call — is a bug in the caller and panics.
type Recorder struct {
	ops       []porcupine.Operation
	returned  []bool
	discarded []bool
	perKey    map[string]int
	dropped   int
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{perKey: make(map[string]int)}
}

// Call records the invocation of in by clientID (zero-based, used for the
// HTML picture) at virtual time callUs. Until Return is called the operation
// counts as having an unknown outcome.
func (r *Recorder) Call(clientID int, in Input, callUs int64) OpID {
	if !in.Kind.Valid() {
		panic(fmt.Sprintf("linearizability: Call with invalid kind %d", in.Kind))
	}
	id := OpID(len(r.ops))
	r.ops = append(r.ops, porcupine.Operation{
		ClientId: clientID,
		Input:    in,
		Call:     callUs,
		Output:   Output{Status: StatusUnknown},
		Return:   Open,
		Metadata: id,
	})
	r.returned = append(r.returned, false)
	r.discarded = append(r.discarded, false)
	r.perKey[Key(in)]++
	return id
}

// Discard removes operation id from the history: it was never an operation
// (a client refused it before sending it: busy, bad request). Discarding an
// operation that returned is a bug in the caller and panics.
func (r *Recorder) Discard(id OpID) {
	if id < 0 || int(id) >= len(r.ops) {
		panic(fmt.Sprintf("linearizability: Discard of unknown op %d", id))
	}
	if r.returned[id] || r.discarded[id] {
		panic(fmt.Sprintf("linearizability: Discard of op %d after its return", id))
	}
	r.discarded[id] = true
	r.perKey[Key(r.ops[id].Input.(Input))]--
	r.dropped++
}

// Discarded is the number of discarded operations.
func (r *Recorder) Discarded() int { return r.dropped }

// Return records the response of operation id at virtual time returnUs. If
// out.Status is StatusUnknown the return stays open (returnUs is ignored):
// the operation may or may not have taken effect.
func (r *Recorder) Return(id OpID, out Output, returnUs int64) {
	if id < 0 || int(id) >= len(r.ops) {
		panic(fmt.Sprintf("linearizability: Return of unknown op %d", id))
	}
	if r.returned[id] || r.discarded[id] {
		panic(fmt.Sprintf("linearizability: op %d returned twice or after its discard", id))
	}
	if !out.Status.Valid() {
		panic(fmt.Sprintf("linearizability: op %d returned invalid status %d", id, out.Status))
	}
	op := &r.ops[id]
	r.returned[id] = true
	op.Output = out
	if out.Status == StatusUnknown {
		return
	}
	if returnUs < op.Call {
		panic(fmt.Sprintf("linearizability: op %d returns at %dus before its call at %dus", id, returnUs, op.Call))
	}
	op.Return = returnUs
}

// Len is the number of recorded operations, returned or not, not discarded.
func (r *Recorder) Len() int { return len(r.ops) - r.dropped }

// Operations returns a copy of the history without discarded operations.
// Calls that never returned are included with StatusUnknown and an open
// return. Metadata is each operation's OpID.
func (r *Recorder) Operations() []porcupine.Operation {
	out := make([]porcupine.Operation, 0, r.Len())
	for i, op := range r.ops {
		if !r.discarded[i] {
			out = append(out, op)
		}
	}
	return out
}

// MaxOpsPerKey returns the key with the most operations (the smallest such
// key on a tie) and its count; ("", 0) for an empty recorder. Per-key history
// length is what drives checking cost.
func (r *Recorder) MaxOpsPerKey() (key string, n int) {
	for k, c := range r.perKey {
		if c > n || (c == n && k < key) {
			key, n = k, c
		}
	}
	return key, n
}
