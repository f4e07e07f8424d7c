package model

import (
	"maps"
	"slices"
)

// Which replicas a proxy keeps (seed protocol 3: "a territory that holds
// neurons with synapses to or from a supernode hosts a proxy cache of it").
//
// A territory is adjacent to a subgraph S when one of its operational
// primaries holds a committed cross-subgraph synapse with an endpoint in S:
// on the pre side a committed cross synapse whose post is in S (the saga
// state's cross records), on the post side a committed in-slot whose pre is
// in S. Its own operational subgraphs are not in the set: their stale reads
// are served by the primary. The proxy keeps a replica of S only while the
// territory is adjacent to S and S is in the egress stream (it holds a
// supernode). This is adjacency to S, a superset of adjacency to S's
// supernodes: whether the far endpoint is itself a supernode is known only
// to S's fold, which the territory does not have before it replicates S.
//
// A stale read of a subgraph the territory does not replicate is answered
// wrong-territory, and the client asks the subgraph's primary
// (client_stale.go): the primary, not another proxy, since only the routes
// name a territory that surely has the state.

// CrossPeers adds to set the subgraphs at the far end of s's committed
// cross-subgraph synapses.
func (s *SubgraphState) CrossPeers(set map[SubgraphID]bool) {
	for k := range s.saga.cross { // order: set insertion
		set[SubgraphOf(k.Post, s.Count)] = true
	}
	for _, slot := range s.saga.in { // order: set insertion
		if slot.Committed {
			set[SubgraphOf(slot.Pre, s.Count)] = true
		}
	}
}

// AdjacentSubgraphs is the sorted set of subgraphs this territory is
// adjacent to through its operational primaries, without those.
func AdjacentSubgraphs(operational []SubgraphID, state func(SubgraphID) *SubgraphState) []SubgraphID {
	set := map[SubgraphID]bool{}
	for _, sg := range operational {
		if st := state(sg); st != nil {
			st.CrossPeers(set)
		}
	}
	for _, sg := range operational {
		delete(set, sg)
	}
	return slices.Sorted(maps.Keys(set))
}

// FactProxyDropped: a proxy dropped its replica of Subgraph, at LSN, since
// the territory is no longer adjacent to it. A later replica of it starts
// again from LSN 0.
type FactProxyDropped struct {
	Territory HostID
	Subgraph  SubgraphID
	LSN       uint64
}

func (FactProxyDropped) isFact() {}

// adjacent is AdjacentSubgraphs of this territory now.
func (t *Territory) adjacent() []SubgraphID {
	return AdjacentSubgraphs(t.Operational(), func(sg SubgraphID) *SubgraphState { return t.subgraphs[sg].state })
}

// refresh brings the replicas in line with the adjacency: a replica no
// longer adjacent is dropped; one newly adjacent starts from its snapshot
// (proxy_snapshot.go): now if the proxy has read records of it (it then
// reads again from the record that holds the snapshot's LSN + 1), else when
// its first record comes.
func (x *proxy) refresh() {
	adj := x.t.adjacent()
	for _, sg := range slices.Sorted(maps.Keys(x.want)) {
		if slices.Contains(adj, sg) {
			continue
		}
		delete(x.want, sg)
		if st := x.replicas[sg]; st != nil {
			x.t.observe(FactProxyDropped{Territory: x.t.cfg.ID, Subgraph: sg, LSN: st.AppliedLSN})
		}
		delete(x.replicas, sg)
		delete(x.stuck, sg)
		delete(x.lag, sg)
	}
	for _, sg := range adj {
		if x.want[sg] {
			continue
		}
		x.want[sg] = true
		if x.seen[sg] > 0 {
			x.load(sg)
		}
	}
}

// Adjacent reports whether this territory's proxy keeps a replica of sg
// when the stream carries it.
func (t *Territory) Adjacent(sg SubgraphID) bool { return t.proxy != nil && t.proxy.want[sg] }
