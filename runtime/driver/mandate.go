package driver

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"territory/model"
)

// RouteOf is the primary the client's routing cache names for a subgraph
// (0: unknown), read on the owner goroutine.
func (h *Client) RouteOf(ctx context.Context, sg model.SubgraphID) model.HostID {
	ch := make(chan model.HostID, 1)
	if err := h.d.Exec(ctx, func(func(model.Input)) { ch <- h.c.RouteOf(sg) }); err != nil {
		return 0
	}
	select {
	case id := <-ch:
		return id
	case <-ctx.Done():
		return 0
	}
}

// RunMandate executes a growth mandate: one connect per synapse (a
// handshake saga where post lives in another subgraph), at most parallel at
// a time, and returns each synapse's outcome in the mandate's order: fulfilled,
// or a mandate.fulfillment.failed event. An error means the mandate is
// invalid or the client stopped; the outcomes of the synapses that ran are
// returned with it.
func (h *Client) RunMandate(ctx context.Context, m model.Mandate, subgraphs uint32, parallel int) ([]model.SynapseOutcome, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	parallel = max(1, min(parallel, 256))
	out := make([]model.SynapseOutcome, len(m.Synapses))
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, parallel)
	for i, s := range m.Synapses {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return out[:i], fmt.Errorf("mandate %s: stopped after %d of %d synapses: %w", m.ID, i, len(m.Synapses), ctx.Err())
		}
		wg.Add(1)
		go func(i int, s model.MandateSynapse) {
			defer wg.Done()
			defer func() { <-sem }()
			sent, r, err := h.Do(ctx, model.Request{Op: model.OpConnect, Pre: s.Pre, Post: s.Post, Value: s.Weight})
			unknown := errors.Is(err, ErrUnknownOutcome)
			if err != nil && !unknown {
				mu.Lock()
				errs = append(errs, fmt.Errorf("mandate %s synapse n%d->n%d: %w", m.ID, s.Pre, s.Post, err))
				mu.Unlock()
				unknown = true // no final answer: it may have happened
			}
			source := h.RouteOf(ctx, model.SubgraphOf(s.Pre, subgraphs))
			out[i] = model.MandateSynapseOutcome(&m, s, r, unknown, sent.ID, source)
		}(i, s)
	}
	wg.Wait()
	return out, errors.Join(errs...)
}
