package model

// Stale reads (seed protocol 3): a client that can do with a state that is
// not the latest asks for a stale read (Request.Stale). It is answered at
// once, without the read barrier, from a committed state of the subgraph:
//
//   - by the primary, from its own state, if this territory serves the
//     subgraph and is operational;
//   - else by this territory's proxy, from its replica of the subgraph (the
//     fold of a prefix of the committed log, proxy_component.go);
//
// and only from a state at or past Request.MinLSN, the client's floor: the
// highest LSN of the subgraph it has read. A territory that can do neither
// answers wrong-territory (no replica here) or unavailable (behind the
// floor), and the client asks the primary. The answer says which LSN it
// reflects (Result.LSN) and whether a proxy served it (Result.Proxy).
//
// Either state is one the primary had at that LSN, and no LSN is served
// before it is committed: the primary applies an entry only once the log
// committed it, and the egress publishes only committed entries.
func (t *Territory) onStaleRead(from HostID, req *Request) {
	sg := SubgraphOf(req.RoutingNeuron(), t.cfg.Subgraphs)
	if p := t.subgraphs[sg]; p != nil && p.phase == phaseOperational {
		if p.state.AppliedLSN < req.MinLSN {
			t.reply(from, req.ID, Result{Status: StatusUnavailable}) // deposed and behind the client
			return
		}
		r := p.state.Read(req)
		r.LSN = p.state.AppliedLSN
		t.reply(from, req.ID, r)
		return
	}
	st := t.Replica(sg)
	switch {
	case st == nil || st.AppliedLSN == 0:
		t.reply(from, req.ID, Result{Status: StatusWrongTerritory})
	case st.AppliedLSN < req.MinLSN:
		t.reply(from, req.ID, Result{Status: StatusUnavailable})
	default:
		r := st.Read(req)
		r.LSN, r.Proxy = st.AppliedLSN, true
		t.reply(from, req.ID, r)
	}
}
