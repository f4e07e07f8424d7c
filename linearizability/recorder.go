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
	ops      []porcupine.Operation
	returned []bool
	perKey   map[string]int
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
	r.perKey[Key(in)]++
	return id
}

// Return records the response of operation id at virtual time returnUs. If
// out.Status is StatusUnknown the return stays open (returnUs is ignored):
// the operation may or may not have taken effect.
func (r *Recorder) Return(id OpID, out Output, returnUs int64) {
	if id < 0 || int(id) >= len(r.ops) {
		panic(fmt.Sprintf("linearizability: Return of unknown op %d", id))
	}
	if r.returned[id] {
		panic(fmt.Sprintf("linearizability: op %d returned twice", id))
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

// Len is the number of recorded operations, returned or not.
func (r *Recorder) Len() int { return len(r.ops) }

// Operations returns a copy of the history. Calls that never returned are
// included with StatusUnknown and an open return.
func (r *Recorder) Operations() []porcupine.Operation {
	return append([]porcupine.Operation(nil), r.ops...)
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
