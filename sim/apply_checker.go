package sim

import (
	"territory/model"
	"territory/sim/invariants"
)

// applyChecker guards exactly-once-apply: within one incarnation of a
// subgraph's state on a host (from FactAdopted, which starts from the empty
// state, or FactSnapshotLoaded, which starts at the snapshot's LSN), every LSN
// is applied exactly once and in order. It counts the applications the host
// reports (FactReplayed ranges and FactCommitted), never infers them from the
// state: an LSN below the next expected one was applied twice, one above it
// means the LSNs between were skipped. This is the exactly-once promise a
// migration's catch-up (replay from snapshot_LSN + 1) rests on.
type applyChecker struct {
	next map[applyKey]uint64 // the LSN each incarnation must apply next (a crashed host's next FactAdopted resets it)
}

type applyKey struct {
	host model.HostID
	sg   model.SubgraphID
}

func newApplyChecker(*View) Checker { return &applyChecker{next: map[applyKey]uint64{}} }

func (*applyChecker) Name() string { return "exactly-once-apply" }

func (c *applyChecker) Observe(v *View, e BusEvent) {
	if e, ok := e.(FactObserved); ok {
		switch f := e.Fact.(type) {
		case model.FactAdopted:
			c.next[applyKey{f.Territory, f.Subgraph}] = 1
		case model.FactSnapshotLoaded:
			if f.UUID != "" {
				c.next[applyKey{f.Territory, f.Subgraph}] = f.LSN + 1
			}
		case model.FactMigration:
			if f.Step == model.MigStepInstalled {
				// A migration's image: the state starts at snapshot_LSN.
				c.next[applyKey{f.Territory, f.Subgraph}] = f.LSN + 1
			}
		case model.FactSteppedDown:
			delete(c.next, applyKey{f.Territory, f.Subgraph})
		case model.FactReplayed:
			c.apply(v, applyKey{f.Territory, f.Subgraph}, f.FromLSN, f.ToLSN)
		case model.FactCommitted:
			c.apply(v, applyKey{f.Territory, f.Subgraph}, f.LSN, f.LSN)
		}
	}
}

func (c *applyChecker) apply(v *View, k applyKey, from, to uint64) {
	next, ok := c.next[k]
	if !ok {
		v.Violate(invariants.ExactlyOnceApply, "%s applied LSNs %d..%d of subgraph %d without having adopted it", v.HostName(k.host), from, to, k.sg)
		return
	}
	switch {
	case to < from:
		v.Violate(invariants.ExactlyOnceApply, "%s reported an empty range %d..%d of subgraph %d", v.HostName(k.host), from, to, k.sg)
	case from < next:
		v.Violate(invariants.ExactlyOnceApply, "%s applied LSN %d of subgraph %d twice (next due was %d)", v.HostName(k.host), from, k.sg, next)
	case from > next:
		v.Violate(invariants.ExactlyOnceApply, "%s skipped LSNs %d..%d of subgraph %d (applied %d next)", v.HostName(k.host), next, from-1, k.sg, from)
	}
	c.next[k] = max(next, to+1)
}

func (c *applyChecker) Final(*View) []invariants.Violation { return nil }
