package daemon

import (
	"context"
	"fmt"

	"territory/model"
)

// RunMandate executes a growth mandate through the client (see
// driver.Client.RunMandate), asking the daemon for the cluster's subgraph
// count first.
func (c *Client) RunMandate(ctx context.Context, m model.Mandate, parallel int) ([]model.SynapseOutcome, error) {
	subgraphs, _, err := c.remote.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("mandate %s: asking for the cluster layout: %w", m.ID, err)
	}
	return c.cl.RunMandate(ctx, m, subgraphs, parallel)
}
