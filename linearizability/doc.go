// Package linearizability records client operations against the connectome
// store and checks them twice: with porcupine
// (github.com/anishathalye/porcupine) against an exact model, and with a log
// checker that takes the committed log as the truth and always finishes.
//
// It is a leaf package: it imports nothing from the rest of the project. The
// simulator converts its requests, answers and log entries into [Input],
// [Output] and [Entry], records operations with a [Recorder] in virtual time
// (int64 microseconds), and calls [Check] and [LogCheck].
//
// # The sequential specification
//
// [Apply] is the one sequential specification both checkers use, written
// from the domain's rules, not from the store's fold. The state is one whole
// subgraph ([State]): its neurons (potential, in- and out-degree) and its
// synapses (weight). Every field of an answer is defined, and an answer is
// legal exactly when it equals the specification's:
//
//	CreateNeuron(n)         exists → already-exists; else potential 0, ok
//	Stimulate(n, Δ)         absent → not-found (no-such-neuron); else potential = clamp(p+Δ), ok, Value, Exists
//	ReadNeuron(n)           ok, Exists, Value = potential
//	Connect(pre, post, w)   post in another subgraph → rejected (cross-subgraph);
//	                        exists → already-exists; a neuron missing → rejected (no-such-neuron);
//	                        out(pre) ≥ max → rejected (max-out-degree); in(post) ≥ max → rejected (max-in-degree);
//	                        else weight = clamp(w), out(pre)++, in(post)++, ok, Value, Exists
//	AdjustWeight(pre,post,Δ) absent → not-found; else weight = clamp(w+Δ), ok, Value, Exists
//	Prune(pre, post)        absent → not-found; else delete, out(pre)--, in(post)--, ok
//	ReadSynapse(pre, post)  ok, Exists, Value = weight
//	Decay(sg, rec, hb)      every potential of the subgraph *= DecayFactorPM(rate, rec-hb), ok
//
// Only a connect is ever rejected, and only for the reason that holds in the
// state it is linearized in. Limits and the decay rate come from the policy.
//
// # Porcupine: partitioned by subgraph
//
// A connect reads both neurons and writes their degrees, and a decay writes
// every neuron of its subgraph, so the partition is the subgraph (one log,
// one order). [Model] is specified by the scenario's policy ([Config]).
// States are small immutable slices with a hash and an equality, so
// porcupine's cache of visited states works.
//
// An operation whose outcome the client does not know ([StatusUnknown]) is
// recorded with an open return (math.MaxInt64): the model applies it as if it
// ran, and linearizing it last stands for "it did not happen". A recovery's
// decay is closed: it is called when its entry is first appended and returns
// when a primary's state holds it.
//
// # The log checker
//
// [LogCheck] folds [Apply] over each subgraph's committed log and places every
// operation on it; see its documentation for exactly what it checks. It runs
// in O(n log n) (plus, for each read, the versions of its key it skips) and
// its verdict is never unknown.
//
// # Determinism
//
// Partitions are ordered by key, violating keys are sorted, and no map
// iteration order reaches a [Result] or [LogResult]. With a timeout of 0 (no
// limit) porcupine's check is deterministic; with a positive timeout its
// verdict may be [VerdictUnknown] depending on machine speed. The HTML written
// by [Result.WriteHTML] is porcupine's, which orders partial linearizations
// by its own map iteration, so the file is not byte-for-byte reproducible.
package linearizability
