package model

import "testing"

// A stale read is answered at once, without a read barrier: by the primary
// from its state, elsewhere by the proxy's replica, never below MinLSN;
// without a replica the territory says wrong-territory.
func TestStaleReadIsServedByPrimaryOrReplica(t *testing.T) {
	const n = 3
	tr := proxyTerritory(t, n)
	tr.booted = true
	fold := func(sg SubgraphID, potentials ...int64) *SubgraphState {
		st := NewSubgraphState(sg, n, GenesisPolicy())
		nn := neuronIn(sg, n)
		evs := []Event{{Type: EvCreateNeuron, Neuron: nn}}
		for _, v := range potentials {
			evs = append(evs, Event{Type: EvStimulate, Neuron: nn, Value: v})
		}
		for i := range evs {
			evs[i].Subgraph, evs[i].LSN, evs[i].UUID = sg, uint64(i+1), EventUUID{Hi: 3, Lo: uint64(i + 1)}
			st.Apply(&evs[i])
		}
		return st
	}
	tr.subgraphs[0] = &primary{sg: 0, phase: phaseOperational, epoch: 1, routeValue: EncodeRoute(7, 1),
		route: Route{Subgraph: 0, Primary: 7, Epoch: 1, ModRevision: 1000}, state: fold(0, 5)}
	tr.owned = []SubgraphID{0}
	tr.proxy.replicas[1] = fold(1, 2, 3) // LSN 3, potential 5

	out := &Outbox{}
	ask := func(sg SubgraphID, minLSN uint64) Result {
		t.Helper()
		out.Reset()
		req := &Request{ID: EventUUID{Hi: 9, Lo: uint64(sg)<<8 | minLSN}, Op: OpReadNeuron, Neuron: neuronIn(sg, n), Stale: true, MinLSN: minLSN}
		tr.Step(1, MessageIn{From: 50, Msg: &Message{Request: req}}, out)
		if len(effects[CoordCall](out)) != 0 {
			t.Fatalf("a stale read started a barrier: %v", out.Effects)
		}
		s := effects[Send](out)
		if len(s) != 1 || s[0].Msg.Reply == nil {
			t.Fatalf("want one reply: %v", out.Effects)
		}
		return s[0].Msg.Reply.Result
	}
	if r := ask(0, 0); r.Status != StatusOK || r.Value != 5 || r.LSN != 2 || r.Proxy {
		t.Fatalf("at the primary: %+v", r)
	}
	if r := ask(1, 2); r.Status != StatusOK || r.Value != 5 || r.LSN != 3 || !r.Proxy {
		t.Fatalf("at the replica: %+v", r)
	}
	if r := ask(1, 4); r.Status != StatusUnavailable {
		t.Fatalf("a replica behind the floor answered: %+v", r)
	}
	if r := ask(0, 3); r.Status != StatusUnavailable {
		t.Fatalf("a primary behind the floor answered: %+v", r)
	}
	if r := ask(2, 0); r.Status != StatusWrongTerritory {
		t.Fatalf("no replica: %+v", r)
	}
}

// A proxy's lag: the tail the records carry minus its replica's LSN, and how
// long (on its clock) it has been behind; zero once it caught up.
func TestProxyReportsReplicaLag(t *testing.T) {
	const n = 3
	tr := proxyTerritory(t, n)
	nn := neuronIn(1, n)
	entry := func(lsn uint64) LogEntry {
		ev := Event{Type: EvStimulate, Neuron: nn, Value: 1, Subgraph: 1, LSN: lsn, UUID: EventUUID{Hi: 3, Lo: lsn}}
		if lsn == 1 {
			ev.Type = EvCreateNeuron
		}
		return LogEntry{LSN: lsn, Data: ev.Encode()}
	}
	adjacentTo(tr, 0, nn)
	d := newProxyDriver(t, tr, nil)
	deliver := func(now int64, from, to, tail uint64) FactProxyApplied {
		t.Helper()
		var es []LogEntry
		for l := from; l <= to; l++ {
			es = append(es, entry(l))
		}
		d.stream = append(d.stream, EncodeEgressRecordTail(es, tail))
		d.now = now
		for range 2 { // the first record loads the (absent) snapshot first
			_, facts := d.step()
			for _, f := range facts {
				if f, ok := f.(FactProxyApplied); ok {
					return f
				}
			}
		}
		t.Fatalf("no FactProxyApplied")
		return FactProxyApplied{}
	}
	if f := deliver(10, 1, 2, 5); f.LSN != 2 || f.Tail != 5 || f.LagEvents != 3 || f.LagMs != 0 {
		t.Fatalf("first record: %+v", f)
	}
	if f := deliver(510, 3, 4, 6); f.LSN != 4 || f.Tail != 6 || f.LagEvents != 2 || f.LagMs != 500 {
		t.Fatalf("still behind: %+v", f)
	}
	if f := deliver(900, 5, 6, 6); f.LSN != 6 || f.LagEvents != 0 || f.LagMs != 0 {
		t.Fatalf("caught up: %+v", f)
	}
}

// adjacentTo makes tr the operational primary of sg, whose state holds a
// committed cross-subgraph synapse to far (proxy_adjacency.go).
func adjacentTo(tr *Territory, sg SubgraphID, far NeuronID) *SubgraphState {
	st := NewSubgraphState(sg, tr.cfg.Subgraphs, GenesisPolicy())
	st.saga.cross[SynapseKey{Pre: neuronIn(sg, tr.cfg.Subgraphs), Post: far}] = EventUUID{Hi: 1, Lo: uint64(far)}
	tr.subgraphs[sg] = &primary{sg: sg, phase: phaseOperational, epoch: 1, routeValue: EncodeRoute(tr.cfg.ID, 1),
		route: Route{Subgraph: sg, Primary: tr.cfg.ID, Epoch: 1, ModRevision: 1000}, state: st}
	tr.owned = append(tr.owned, sg)
	return st
}
