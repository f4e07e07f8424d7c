package model

// PlantSagaLeak is a planted bug for the checkers' own tests (sim): it
// forgets saga id's reservation (at pre) or in-slot (at post) in this
// subgraph without giving back the degree it holds, as a compensation or a
// release that lost its bookkeeping would. It reports whether there was such
// a record. Nothing in the protocol calls it.
func (s *SubgraphState) PlantSagaLeak(id EventUUID) bool {
	g := &s.saga
	if o, ok := g.out[id]; ok {
		delete(g.out, id)
		delete(g.reserved, SynapseKey{o.Pre, o.Post})
		return true
	}
	if _, ok := g.in[id]; ok {
		delete(g.in, id)
		return true
	}
	return false
}
