package linearizability

import "github.com/anishathalye/porcupine"

// PruneUnknown returns ops without the unknown-outcome operations that cannot
// matter, as etcd's robustness tests patch a history from the raft log before
// porcupine sees it:
//
//   - an unknown read: it has no output to explain and changes no state, so
//     every linearization of the rest takes it anywhere;
//   - an unknown write whose event_uuid is in no committed log: the state is the
//     fold of the log, so it never took effect. Porcupine could only linearize
//     it last (no effect seen by anybody) or use it to explain an answer the
//     log contradicts; dropping it is never weaker than keeping it.
//
// An unknown write that is in a log stays, with its open return. Each open
// operation multiplies porcupine's search, and pauses and split brains leave
// dozens per subgraph; without this, seeds of pause-fencing ran past the
// checker's budget. The log checker reads the unpruned history.
func PruneUnknown(ops []porcupine.Operation, logs []SubgraphLog) []porcupine.Operation {
	logged := map[UUID]bool{}
	for _, l := range logs {
		for _, e := range l.Entries {
			logged[e.ID] = true
		}
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		in, okIn := op.Input.(Input)
		o, okOut := op.Output.(Output)
		if okIn && okOut && o.Status == StatusUnknown && (in.Kind.IsRead() || !logged[in.ID]) {
			continue
		}
		out = append(out, op)
	}
	return out
}
