package model

// A client's route reads. The first read, before any succeeded, is of every
// route. After it, a retry re-reads only the route of the subgraph it is
// about, with one get: the cost of a client's timeout does not grow with the
// cluster. Operations waiting for routes of more than one subgraph (after a
// failed read, say) make the next read one of every route again: a bounded
// fallback, never a read per operation.

// refreshFor refreshes the routes for a retry of an operation on sg.
func (c *Client) refreshFor(sg SubgraphID) {
	if c.refreshing {
		return
	}
	c.hint = int64(sg)
	c.refresh()
	c.hint = -1
}

// routeRead is the coordination read of the next refresh.
func (c *Client) routeRead() CoordRequest {
	all := CoordRequest{Kind: CoordRange, Key: RoutesPrefix}
	if !c.routesLoaded {
		return all
	}
	sg, have := SubgraphID(c.hint), c.hint >= 0
	for _, id := range c.waiting {
		op := c.ops[id]
		if op == nil {
			continue
		}
		s := SubgraphOf(op.req.RoutingNeuron(), c.cfg.Subgraphs)
		switch {
		case !have:
			sg, have = s, true
		case s != sg:
			return all
		}
	}
	if !have {
		return all
	}
	return CoordRequest{Kind: CoordGet, Key: RouteKey(sg)}
}
