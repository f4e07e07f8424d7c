// Package linearizability records client operations against the connectome
// store and checks them for linearizability with porcupine
// (github.com/anishathalye/porcupine).
//
// It is a leaf package: it imports nothing from the rest of the project. The
// simulator converts its own requests and responses into [Input] and
// [Output], records them with a [Recorder] in virtual time (int64
// microseconds), and calls [Check] on [Recorder.Operations].
//
// # Model
//
// The history is partitioned by key and every key is checked on its own:
// neuron operations under "n/<id>", synapse operations under "s/<pre>/<post>"
// (see [Key]). Per key the state is a tiny immutable value {exists, value}:
// the potential of a neuron or the weight of a synapse, both fixed-point
// int64, clamped to [Bounds]. The sequential semantics are:
//
//	CreateNeuron(n)            exists → AlreadyExists; else potential 0, OK
//	Stimulate(n, Δ)            absent → NotFound; else potential = clamp(p+Δ), OK, Value = new potential
//	ReadNeuron(n)              OK, Exists, Value = potential (0 if absent)
//	Connect(pre, post, w)      exists → AlreadyExists; else weight = clamp(w), OK
//	AdjustWeight(pre, post, Δ) absent → NotFound; else weight = clamp(w+Δ), OK, Value = new weight
//	Prune(pre, post)           absent → NotFound; else delete, OK
//	ReadSynapse(pre, post)     OK, Exists, Value = weight (0 if absent)
//
// Value is compared only where it is defined above (Stimulate/AdjustWeight
// answering OK, and reads); Exists only for reads. Additions saturate before
// clamping, so an absurd Δ cannot wrap around.
//
// # Rejections: a deliberate soundness trade-off
//
// Every write (all kinds except the two reads) may also answer
// [StatusRejected] in any state, and a rejected operation changes nothing.
// Rejections come from policies that depend on other keys — a Connect is
// refused when a neuron does not exist or a degree limit is reached, any write
// may be refused by admission control — and a per-key model cannot see
// those keys. Accepting a rejection everywhere keeps partitioning (and thus
// checking) cheap, at the price that this checker cannot detect a wrongful
// rejection, nor a rejection whose effect leaked into the state (the leak
// itself is caught when a later read sees it). Cross-key invariants such as
// "a synapse only joins existing neurons" belong to the simulator's own
// invariant checks, not here. Reads are never rejected: a rejected read is a
// violation.
//
// # Unknown outcomes
//
// An operation whose outcome the client does not know (a timeout) is
// returned with [StatusUnknown], and an operation that never returned at all
// is treated the same way. Both are recorded with an open return time
// (math.MaxInt64, the convention of etcd's robustness tests), so the checker
// may linearize them anywhere after their call. The model applies their
// effect as if they had run and ignores their Value; "it did not take effect"
// is the linearization that places the operation after everything else, where
// nobody observes it. Such operations are never dropped: a later read may
// observe them, but an unknown operation cannot explain a value that no
// order of the recorded operations produces. Every open operation widens the
// search, so a history with many timeouts on one key checks more slowly.
//
// # Determinism
//
// Partitions are ordered by key, violating keys are sorted, and no map
// iteration order reaches a [Result]. With a timeout of 0 (no limit) a check
// is fully deterministic; with a positive timeout the verdict may be
// [VerdictUnknown] depending on machine speed. The HTML written by
// [Result.WriteHTML] is porcupine's, which orders partial linearizations by
// its own map iteration, so the file is not byte-for-byte reproducible.
package linearizability
