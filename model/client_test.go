package model

import "testing"

// A client configured as in production registers no route watch: it reads
// the routes and learns of a move only from an answer (here a wrong-territory
// reply), after which it reads that subgraph's route again and follows it.
func TestClientWithoutWatchesFollowsMovesOnlyFromAnswers(t *testing.T) {
	cfg := DefaultClientConfig(50, 9, 4)
	if cfg.WatchRoutes {
		t.Fatal("the default client config watches routes; production clients have no watch")
	}
	c, err := NewClient(cfg, &seqRand{})
	if err != nil {
		t.Fatal(err)
	}
	out := &Outbox{}
	c.Step(0, Start{}, out)
	calls := effects[CoordCall](out)
	if len(calls) != 1 || calls[0].Req.Kind != CoordRange {
		t.Fatalf("start must read the routes and register no watch: %v", out.Effects)
	}
	out.Reset()
	c.Step(1, CoordResult{ReqID: calls[0].ReqID, Resp: CoordResponse{KVs: routesKVs(4, 7, 1)}}, out)

	// The route moves to 8: nothing tells this client, so it asks 7.
	req := Request{ID: c.NewID(), Op: OpReadNeuron, Neuron: 3}
	out.Reset()
	c.Step(2, Submit{Req: req}, out)
	if s := effects[Send](out); len(s) != 1 || s[0].To != 7 {
		t.Fatalf("first attempt goes to the cached (deposed) primary: %v", out.Effects)
	}
	out.Reset()
	c.Step(3, MessageIn{From: 7, Msg: &Message{Reply: &Reply{ID: req.ID, Result: Result{Status: StatusWrongTerritory}}}}, out)
	var refresh *CoordCall
	for _, cc := range effects[CoordCall](out) {
		if cc.Req.Kind == CoordWatch {
			t.Fatalf("a client without watches registered one: %v", out.Effects)
		}
		if cc.Req.Kind == CoordRange || cc.Req.Kind == CoordGet {
			refresh = &cc
		}
	}
	// Only the route of the operation's subgraph is read again, with one get.
	if sg := SubgraphOf(3, 4); refresh == nil || refresh.Req.Kind != CoordGet || refresh.Req.Key != RouteKey(sg) {
		t.Fatalf("a wrong-territory answer must make the client get the route of subgraph %d: %v", sg, out.Effects)
	}
	retry := effects[SetTimer](out)
	out.Reset()
	moved := routesKVs(4, 8, 2)[SubgraphOf(3, 4)]
	c.Step(4, CoordResult{ReqID: refresh.ReqID, Resp: CoordResponse{KVs: []KV{moved}}}, out)
	out.Reset()
	c.Step(4+retry[len(retry)-1].AfterMs, TimerFired{ID: retry[len(retry)-1].ID}, out)
	if s := effects[Send](out); len(s) != 1 || s[0].To != 8 {
		t.Fatalf("the retry must go to the route read after the answer: %v", out.Effects)
	}
}
