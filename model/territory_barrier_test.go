package model

import "testing"

// servingTerritory is a territory that serves every one of n subgraphs at
// epoch 1, each claimed at revision 1000+sg (set directly: the claim path has
// its own tests).
func servingTerritory(t *testing.T, n uint32) *Territory {
	t.Helper()
	tr, err := NewTerritory(DefaultTerritoryConfig(7, n))
	if err != nil {
		t.Fatal(err)
	}
	tr.booted = true
	for sg := SubgraphID(0); uint32(sg) < n; sg++ {
		tr.subgraphs[sg] = &primary{sg: sg, phase: phaseOperational, epoch: 1, routeValue: EncodeRoute(7, 1),
			route: Route{Subgraph: sg, Primary: 7, Epoch: 1, ModRevision: 1000 + int64(sg)},
			state: NewSubgraphState(sg, n, GenesisPolicy())}
		tr.owned = append(tr.owned, sg)
	}
	return tr
}

// neuronIn finds a neuron of subgraph sg.
func neuronIn(sg SubgraphID, n uint32) NeuronID {
	for id := NeuronID(1); ; id++ {
		if SubgraphOf(id, n) == sg {
			return id
		}
	}
}

// TestBarrierCoversAtMostATxnOfSubgraphs: reads of 200 subgraphs make a first
// barrier of BarrierMaxSubgraphs compares (one per subgraph, two reads of one
// subgraph share one), and the rest wait for a second barrier after it.
func TestBarrierCoversAtMostATxnOfSubgraphs(t *testing.T) {
	const n = 200
	tr := servingTerritory(t, n)
	out := &Outbox{}
	for sg := SubgraphID(0); sg < n; sg++ {
		for k := uint64(0); k < 2; k++ {
			read := &Request{ID: EventUUID{9, uint64(sg)*2 + k + 1}, Op: OpReadNeuron, Neuron: neuronIn(sg, n)}
			tr.Step(1, MessageIn{From: 50, Msg: &Message{Request: read}}, out)
		}
	}
	// The first read started a barrier of its own; the others queued.
	first := effects[CoordCall](out)
	if len(first) != 1 || len(first[0].Req.Compares) != 1 {
		t.Fatalf("the first read must start a barrier at once: %v", first)
	}
	out.Reset()
	tr.Step(2, CoordResult{ReqID: first[0].ReqID, Resp: CoordResponse{Succeeded: true}}, out)
	if s := effects[Send](out); len(s) != 1 || s[0].Msg.Reply.Result.Status != StatusOK {
		t.Fatalf("the first read was not served: %v", out.Effects)
	}
	calls := effects[CoordCall](out)
	if len(calls) != 1 || len(calls[0].Req.Compares) != BarrierMaxSubgraphs {
		t.Fatalf("one barrier of %d compares expected, got %d calls: %+v", BarrierMaxSubgraphs, len(calls), calls[0].Req.Compares[:1])
	}
	for i, c := range calls[0].Req.Compares {
		if c != (Compare{Key: RouteKey(SubgraphID(i)), ModRevision: 1000 + int64(i)}) {
			t.Fatalf("compare %d: %+v", i, c)
		}
	}
	out.Reset()
	tr.Step(3, CoordResult{ReqID: calls[0].ReqID, Resp: CoordResponse{Succeeded: true}}, out)
	sends := effects[Send](out)
	if len(sends) != 2*BarrierMaxSubgraphs-1 {
		t.Fatalf("%d reads answered, want %d", len(sends), 2*BarrierMaxSubgraphs-1)
	}
	for _, s := range sends {
		if s.Msg.Reply.Result.Status == StatusUnavailable || s.Msg.Reply.Result.Status == StatusWrongTerritory {
			t.Fatalf("a read passed its barrier but was refused: %+v", s.Msg.Reply)
		}
	}
	next := effects[CoordCall](out)
	if len(next) != 1 || len(next[0].Req.Compares) != n-BarrierMaxSubgraphs || next[0].Req.Compares[0].Key != RouteKey(BarrierMaxSubgraphs) {
		t.Fatalf("the second barrier must cover the remaining %d subgraphs: %v", n-BarrierMaxSubgraphs, next)
	}
}

// TestFailedBarrierRechecksEachRoute: when a compare fails, every covered
// subgraph's route is read with its own get; a route rewritten with this
// territory's value serves the read (and the next barrier compares the new
// revision), a moved one deposes the primary.
func TestFailedBarrierRechecksEachRoute(t *testing.T) {
	tr := servingTerritory(t, 2)
	out := &Outbox{}
	tr.Step(1, MessageIn{From: 50, Msg: &Message{Request: &Request{ID: EventUUID{9, 9}, Op: OpReadNeuron, Neuron: neuronIn(0, 2)}}}, out)
	first := effects[CoordCall](out)[0]
	for sg := SubgraphID(0); sg < 2; sg++ {
		read := &Request{ID: EventUUID{9, uint64(sg) + 1}, Op: OpReadNeuron, Neuron: neuronIn(sg, 2)}
		tr.Step(1, MessageIn{From: 50, Msg: &Message{Request: read}}, out)
	}
	out.Reset()
	tr.Step(1, CoordResult{ReqID: first.ReqID, Resp: CoordResponse{Succeeded: true}}, out)
	barrier := effects[CoordCall](out)[0]
	if len(barrier.Req.Compares) != 2 {
		t.Fatalf("the second barrier must cover both subgraphs: %+v", barrier.Req)
	}
	out.Reset()
	tr.Step(2, CoordResult{ReqID: barrier.ReqID, Resp: CoordResponse{Succeeded: false}}, out)
	gets := effects[CoordCall](out)
	if len(gets) != 2 || gets[0].Req.Key != RouteKey(0) || gets[1].Req.Key != RouteKey(1) || len(effects[Send](out)) != 0 {
		t.Fatalf("a failed barrier must get each covered route and answer nothing yet: %v", out.Effects)
	}
	out.Reset()
	tr.Step(3, CoordResult{ReqID: gets[0].ReqID, Resp: CoordResponse{KVs: []KV{{Key: RouteKey(0), Value: EncodeRoute(7, 1), ModRevision: 2000}}}}, out)
	if s := effects[Send](out); len(s) != 1 || s[0].Msg.Reply.Result.Status != StatusOK {
		t.Fatalf("a route rewritten with our value must serve the read: %v", out.Effects)
	}
	if got := tr.subgraphs[0].route.ModRevision; got != 2000 {
		t.Fatalf("the next barrier must compare revision 2000, not %d", got)
	}
	out.Reset()
	tr.Step(3, CoordResult{ReqID: gets[1].ReqID, Resp: CoordResponse{KVs: []KV{{Key: RouteKey(1), Value: EncodeRoute(8, 2), ModRevision: 2001}}}}, out)
	if s := effects[Send](out); len(s) != 1 || s[0].Msg.Reply.Result.Status != StatusWrongTerritory || tr.subgraphs[1] != nil {
		t.Fatalf("a moved route must depose the primary and refuse the read: %v", out.Effects)
	}
}

// TestWatchedRouteIsAdoptedWithoutAPoll: a route change that names this
// territory is claimed from the watch event alone; the same revision seen
// again by a poll is not acted on twice.
func TestWatchedRouteIsAdoptedWithoutAPoll(t *testing.T) {
	tr, err := NewTerritory(DefaultTerritoryConfig(7, 2))
	if err != nil {
		t.Fatal(err)
	}
	out := &Outbox{}
	tr.Step(0, Start{}, out)
	var boot, watch CoordCall
	for _, c := range effects[CoordCall](out) {
		switch c.Req.Kind {
		case CoordRange:
			boot = c
		case CoordWatch:
			watch = c
		}
	}
	if watch.Req.Key != RoutesPrefix {
		t.Fatalf("no route watch at boot: %v", out.Effects)
	}
	out.Reset()
	tr.Step(1, CoordResult{ReqID: boot.ReqID, Resp: CoordResponse{KVs: routesKVs(2, 8, 0)}}, out)
	if len(effects[CoordCall](out)) != 0 {
		t.Fatalf("routes of another territory claimed: %v", out.Effects)
	}
	out.Reset()
	tr.Step(2, CoordResult{ReqID: watch.ReqID}, out)
	if c := effects[CoordCall](out); len(c) != 1 || c[0].Req.Kind != CoordRange {
		t.Fatalf("a registered watch must be followed by one re-read: %v", out.Effects)
	}
	moved := KV{Key: RouteKey(1), Value: EncodeRoute(7, 3), ModRevision: 40}
	out.Reset()
	tr.Step(3, WatchEvent{KV: moved}, out)
	claim := effects[CoordCall](out)
	if len(claim) != 1 || claim[0].Req.Kind != CoordGet && (claim[0].Req.Kind != CoordTxn || claim[0].Req.Compares[0].Key != RouteKey(1)) {
		t.Fatalf("the watched route was not claimed: %v", out.Effects)
	}
	out.Reset()
	tr.syncRoutes([]KV{moved})
	if len(out.Effects) != 0 {
		t.Fatalf("a route revision already acted on was acted on again: %v", out.Effects)
	}
}
