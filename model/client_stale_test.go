package model

import "testing"

// A stale read goes to the client's home first; a home without a replica
// sends it to the primary (the route stays); an answer below the client's
// floor is refused and asked again of the primary, with the floor as MinLSN.
func TestClientStaleReadHomeFloorAndFallback(t *testing.T) {
	cfg := DefaultClientConfig(50, 9, 4)
	cfg.Home = 6
	c, err := NewClient(cfg, &seqRand{})
	if err != nil {
		t.Fatal(err)
	}
	out := &Outbox{}
	c.Step(0, Start{}, out)
	calls := effects[CoordCall](out)
	out.Reset()
	c.Step(1, CoordResult{ReqID: calls[0].ReqID, Resp: CoordResponse{KVs: routesKVs(4, 7, 1)}}, out)
	sg := SubgraphOf(3, 4)
	send := func(Request, int64) Send {
		t.Helper()
		s := effects[Send](out)
		if len(s) != 1 {
			t.Fatalf("want one send: %v", out.Effects)
		}
		return s[0]
	}
	answer := func(now int64, from HostID, id EventUUID, r Result) {
		out.Reset()
		c.Step(now, MessageIn{From: from, Msg: &Message{Reply: &Reply{ID: id, Result: r}}}, out)
	}

	// 1. home answers at LSN 5: done, floor 5.
	r1 := Request{ID: c.NewID(), Op: OpReadNeuron, Neuron: 3, Stale: true}
	out.Reset()
	c.Step(2, Submit{Req: r1}, out)
	if s := send(r1, 2); s.To != 6 || !s.Msg.Request.Stale || s.Msg.Request.MinLSN != 0 {
		t.Fatalf("first stale read: %+v to %d", s.Msg.Request, s.To)
	}
	answer(3, 6, r1.ID, Result{Status: StatusOK, Exists: true, Value: 10, LSN: 5, Proxy: true})
	if d := effects[Observe](out); len(d) != 1 || d[0].Fact.(FactOpDone).Result.LSN != 5 || c.Floor(sg) != 5 {
		t.Fatalf("answer at LSN 5: %v, floor %d", out.Effects, c.Floor(sg))
	}

	// 2. home has no replica: to the primary, with MinLSN 5, route kept.
	r2 := Request{ID: c.NewID(), Op: OpReadNeuron, Neuron: 3, Stale: true}
	out.Reset()
	c.Step(4, Submit{Req: r2}, out)
	if s := send(r2, 4); s.To != 6 || s.Msg.Request.MinLSN != 5 {
		t.Fatalf("second stale read: %+v to %d", s.Msg.Request, s.To)
	}
	answer(5, 6, r2.ID, Result{Status: StatusWrongTerritory})
	if s := send(r2, 5); s.To != 7 || s.Msg.Request.MinLSN != 5 {
		t.Fatalf("after the home's wrong-territory: %+v to %d", s.Msg.Request, s.To)
	}
	if c.RouteOf(sg) != 7 {
		t.Fatalf("the home's answer cleared the route: %d", c.RouteOf(sg))
	}

	// 3. an answer below the floor (4 < 5) is refused: asked again.
	answer(6, 7, r2.ID, Result{Status: StatusOK, Exists: true, Value: 9, LSN: 4})
	if len(effects[Observe](out)) != 0 {
		t.Fatalf("an answer below the floor ended the read: %v", out.Effects)
	}
	tm := effects[SetTimer](out)
	out.Reset()
	c.Step(6+tm[len(tm)-1].AfterMs, TimerFired{ID: tm[len(tm)-1].ID}, out) // the backoff before asking the primary again
	if s := send(r2, 6); s.To != 7 || s.Msg.Request.MinLSN != 5 {
		t.Fatalf("the refused answer's retry: %+v to %d", s.Msg.Request, s.To)
	}
	answer(7, 7, r2.ID, Result{Status: StatusOK, Exists: true, Value: 12, LSN: 8})
	if c.Floor(sg) != 8 || len(effects[Observe](out)) != 1 {
		t.Fatalf("floor %d after the answer at 8: %v", c.Floor(sg), out.Effects)
	}
}

// A stale read on a write is a bad request.
func TestStaleWriteIsInvalid(t *testing.T) {
	req := Request{ID: EventUUID{Hi: 1, Lo: 1}, Op: OpStimulate, Neuron: 1, Stale: true}
	if req.Validate() == nil {
		t.Fatal("a stale stimulate validated")
	}
}
