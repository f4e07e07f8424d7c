package model

import "testing"

// TestRouteReadIsOneGetUnlessManySubgraphsWait: before the first successful
// read, and when waiting operations are about two subgraphs, the refresh reads
// every route; a retry of one subgraph's operation gets that route only.
func TestRouteReadIsOneGetUnlessManySubgraphsWait(t *testing.T) {
	c, err := NewClient(DefaultClientConfig(50, 9, 64), &seqRand{})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.routeRead(); r.Kind != CoordRange || r.Key != RoutesPrefix {
		t.Fatalf("the first read must be of every route: %+v", r)
	}
	c.routesLoaded = true
	c.hint = 5
	if r := c.routeRead(); r.Kind != CoordGet || r.Key != RouteKey(5) {
		t.Fatalf("a retry must get its own route: %+v", r)
	}
	c.hint = -1
	wait := func(n NeuronID) {
		op := &clientOp{req: Request{ID: c.NewID(), Op: OpReadNeuron, Neuron: n}}
		c.ops[op.req.ID] = op
		c.waiting = append(c.waiting, op.req.ID)
	}
	a := NeuronID(1)
	wait(a)
	if r := c.routeRead(); r.Kind != CoordGet || r.Key != RouteKey(SubgraphOf(a, 64)) {
		t.Fatalf("one waiting subgraph: one get, got %+v", r)
	}
	b := a + 1
	for SubgraphOf(b, 64) == SubgraphOf(a, 64) {
		b++
	}
	wait(b)
	if r := c.routeRead(); r.Kind != CoordRange || r.Key != RoutesPrefix {
		t.Fatalf("two waiting subgraphs: every route, got %+v", r)
	}
}
