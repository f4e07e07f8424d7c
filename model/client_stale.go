package model

// The client's side of stale reads (stale_read.go). A stale read goes first
// to the client's home territory (ClientConfig.Home), whose proxy or primary
// may answer it at once; if the home cannot (no replica of the subgraph,
// behind the floor, down), it goes to the subgraph's primary like any read.
//
// Never backwards: the client keeps, per subgraph, the highest LSN a read of
// it returned (its floor; linearizable reads raise it too), sends it with
// every stale read as Request.MinLSN, and refuses an answer below it (one
// served while a concurrent read raised the floor): that read asks the
// primary again.

// readAnswered reports whether a final answer ends op; for reads, it keeps
// the floor, and a stale answer below it does not end the operation.
func (c *Client) readAnswered(op *clientOp, r Result) bool {
	if !op.req.Op.IsRead() || r.Status != StatusOK {
		return true
	}
	sg := SubgraphOf(op.req.RoutingNeuron(), c.cfg.Subgraphs)
	if op.req.Stale && r.LSN < max(c.floor[sg], op.req.MinLSN) {
		op.toPrimary = true
		return false
	}
	c.floor[sg] = max(c.floor[sg], r.LSN)
	return true
}

// Floor is the highest LSN of sg a read of this client returned.
func (c *Client) Floor(sg SubgraphID) uint64 {
	if uint32(sg) >= c.cfg.Subgraphs {
		return 0
	}
	return c.floor[sg]
}
