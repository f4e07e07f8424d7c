package model

import (
	"strings"
	"testing"
)

// badFacts returns the FactBadCoordValue observations in out.
func badFacts(out *Outbox) []FactBadCoordValue {
	var got []FactBadCoordValue
	for _, o := range effects[Observe](out) {
		if f, ok := o.Fact.(FactBadCoordValue); ok {
			got = append(got, f)
		}
	}
	return got
}

func wantBadFact(t *testing.T, out *Outbox, reader HostID, key, errText string) {
	t.Helper()
	for _, f := range badFacts(out) {
		if f.Reader == reader && f.Key == key && f.Err != nil && strings.Contains(f.Err.Error(), errText) {
			return
		}
	}
	t.Fatalf("no FactBadCoordValue{%d, %q, ...%q...} in %v", reader, key, errText, out.Effects)
}

// malformedRoutes are route values the core never writes.
var malformedRoutes = [][]byte{
	[]byte("primary=banana epoch=1"),
	[]byte("primary=7"),
	[]byte("primary=7 epoch=1 colour=red"),
	[]byte("primary=99999999999 epoch=1"),
	[]byte("garbage"),
	nil,
}

func TestClientReportsAndSkipsAMalformedRoute(t *testing.T) {
	for _, v := range malformedRoutes {
		c, err := NewClient(DefaultClientConfig(50, 9, 4), &seqRand{})
		if err != nil {
			t.Fatal(err)
		}
		out := &Outbox{}
		c.Step(0, Start{}, out)
		calls := effects[CoordCall](out)
		out.Reset()
		kvs := routesKVs(4, 7, 1)
		kvs[2].Value = v
		c.Step(1, CoordResult{ReqID: calls[0].ReqID, Resp: CoordResponse{KVs: kvs}}, out)
		wantBadFact(t, out, 50, RouteKey(2), "route")
		if len(badFacts(out)) != 1 {
			t.Fatalf("%q: one bad route, facts %v", v, badFacts(out))
		}
		// The other routes are used; subgraph 2 has no route and is read afresh.
		out.Reset()
		c.Step(2, Submit{Req: Request{ID: c.NewID(), Op: OpReadNeuron, Neuron: neuronsIn(0, 1)[0]}}, out)
		if s := effects[Send](out); len(s) != 1 || s[0].To != 7 {
			t.Fatalf("%q: a good route was not used: %v", v, out.Effects)
		}
		out.Reset()
		c.Step(3, Submit{Req: Request{ID: c.NewID(), Op: OpReadNeuron, Neuron: neuronsIn(2, 1)[0]}}, out)
		if len(effects[Send](out)) != 0 {
			t.Fatalf("%q: a request went to a malformed route: %v", v, out.Effects)
		}
	}
}

func TestClientForgetsARouteWatchedIntoGarbage(t *testing.T) {
	c, out := newTestClient(t)
	sg := SubgraphOf(3, 4)
	out.Reset()
	c.Step(2, WatchEvent{KV: KV{Key: RouteKey(sg), Value: []byte("primary=8 epoch=x"), ModRevision: 9}}, out)
	wantBadFact(t, out, 50, RouteKey(sg), "epoch")
	out.Reset()
	c.Step(3, Submit{Req: Request{ID: c.NewID(), Op: OpReadNeuron, Neuron: 3}}, out)
	if len(effects[Send](out)) != 0 {
		t.Fatalf("the stale route was still used: %v", out.Effects)
	}
	// A route key beyond the cluster's subgraphs is bad too.
	out.Reset()
	c.Step(4, WatchEvent{KV: KV{Key: RouteKey(4), Value: EncodeRoute(8, 2), ModRevision: 10}}, out)
	wantBadFact(t, out, 50, RouteKey(4), "beyond")
	// A deleted route is forgotten (a delete event carries no value).
	c2, out2 := newTestClient(t)
	c2.Step(2, WatchEvent{KV: KV{Key: RouteKey(sg), ModRevision: 9}, Deleted: true}, out2)
	out2.Reset()
	c2.Step(3, Submit{Req: Request{ID: c2.NewID(), Op: OpReadNeuron, Neuron: 3}}, out2)
	if len(effects[Send](out2)) != 0 || len(badFacts(out2)) != 0 {
		t.Fatalf("a deleted route was still used: %v", out2.Effects)
	}
}
