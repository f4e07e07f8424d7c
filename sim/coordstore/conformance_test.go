package coordstore

import (
	"slices"
	"testing"

	"territory/conformance"
	"territory/model"
)

// simCoord runs the coordination suite on the simulated store. The store is
// a pure data structure: the adapter keeps the virtual clock (each request
// takes 1 ms) and the per-host watch queues that the world's notifier would
// feed.
type simCoord struct {
	s      *Store
	nowUs  int64
	hosts  model.HostID
	queues map[model.HostID][]model.WatchEvent
	lose   conformance.Alternate
}

func newSimCoord() *simCoord {
	c := &simCoord{s: New(), queues: map[model.HostID][]model.WatchEvent{}}
	c.s.SetNotifier(func(h model.HostID, ev model.WatchEvent) { c.queues[h] = append(c.queues[h], ev) })
	return c
}

func (c *simCoord) Client() conformance.CoordClient {
	c.hosts++
	return &simCoordClient{c: c, host: c.hosts}
}

func (c *simCoord) Sleep(ms int64) {
	c.nowUs += ms * 1000
	c.s.Tick(c.nowUs)
}

type simCoordClient struct {
	c    *simCoord
	host model.HostID
}

func (cl *simCoordClient) Do(req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
	cl.c.nowUs += 1000
	r, se := cl.c.s.Apply(cl.c.nowUs, cl.host, req)
	return r, se, nil
}

func (cl *simCoordClient) DoLost(req model.CoordRequest) {
	if cl.c.lose.AnswerLost() {
		cl.Do(req)
	}
}

func (cl *simCoordClient) Watch(prefix string) (conformance.CoordWatch, error) {
	if _, se, _ := cl.Do(model.CoordRequest{Kind: model.CoordWatch, Key: prefix}); se != model.ErrNone {
		return nil, se2err(se)
	}
	return &simWatch{c: cl.c, host: cl.host}, nil
}

type simWatch struct {
	c    *simCoord
	host model.HostID
}

func (w *simWatch) Next(waitMs int64) (model.WatchEvent, bool) {
	for waited := int64(0); ; waited += 10 {
		if q := w.c.queues[w.host]; len(q) > 0 {
			w.c.queues[w.host] = q[1:]
			return q[0], true
		}
		if waited >= waitMs {
			return model.WatchEvent{}, false
		}
		w.c.Sleep(10)
	}
}

type svcErr model.ServiceErr

func (e svcErr) Error() string { return model.ServiceErr(e).String() }

func se2err(se model.ServiceErr) error { return svcErr(se) }

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.CoordCases(), nil, func(*testing.T) conformance.CoordService { return newSimCoord() })
}

// ---- planted violations: each broken store must fail the named case ----

// brokenCoord wraps the simulated store's clients with one defect.
type brokenCoord struct {
	*simCoord
	wrap func(*simCoordClient) conformance.CoordClient
}

func (b brokenCoord) Client() conformance.CoordClient {
	return b.wrap(b.simCoord.Client().(*simCoordClient))
}

type doFunc struct {
	*simCoordClient
	do func(cl *simCoordClient, req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error)
}

func (d doFunc) Do(req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
	return d.do(d.simCoordClient, req)
}

func (d doFunc) DoLost(req model.CoordRequest) {
	if d.c.lose.AnswerLost() {
		d.Do(req)
	}
}

type reorderWatch struct {
	conformance.CoordWatch
	held *model.WatchEvent
}

// Next swaps every pair of events.
func (w *reorderWatch) Next(waitMs int64) (model.WatchEvent, bool) {
	if w.held != nil {
		ev := *w.held
		w.held = nil
		return ev, true
	}
	a, ok := w.CoordWatch.Next(waitMs)
	if !ok {
		return a, false
	}
	b, ok := w.CoordWatch.Next(waitMs)
	if !ok {
		return a, true
	}
	w.held = &a
	return b, true
}

type reorderClient struct{ *simCoordClient }

func (r reorderClient) Watch(prefix string) (conformance.CoordWatch, error) {
	w, err := r.simCoordClient.Watch(prefix)
	return &reorderWatch{CoordWatch: w}, err
}

func TestConformancePlanted(t *testing.T) {
	cache := map[string]model.CoordResponse{}
	for _, tc := range []struct {
		name  string
		cases []string
		do    func(cl *simCoordClient, req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error)
		wrap  func(*simCoordClient) conformance.CoordClient
	}{
		{name: "compares ignored", cases: []string{"cas", "txn-compares", "lost-answer-cas"},
			do: func(cl *simCoordClient, req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
				req.Compares = nil
				return cl.Do(req)
			}},
		{name: "a failed txn bumps the revision", cases: []string{"noop-txn-keeps-revision", "cas"},
			do: func(cl *simCoordClient, req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
				r, se, err := cl.Do(req)
				if req.Kind == model.CoordTxn && !r.Succeeded {
					r.Revision++
				}
				return r, se, err
			}},
		{name: "duplicate keys accepted (the simulator before the suite found it)", cases: []string{"txn-duplicate-key"},
			do: func(cl *simCoordClient, req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
				last := func(ops []model.TxnOp) []model.TxnOp {
					var out []model.TxnOp
					for i, op := range ops {
						if !slices.ContainsFunc(ops[i+1:], func(o model.TxnOp) bool { return o.Key == op.Key }) {
							out = append(out, op)
						}
					}
					return out
				}
				req.Then, req.Else = last(req.Then), last(req.Else)
				return cl.Do(req)
			}},
		{name: "range unsorted", cases: []string{"range-prefix"},
			do: func(cl *simCoordClient, req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
				r, se, err := cl.Do(req)
				if req.Kind == model.CoordRange {
					slices.Reverse(r.KVs)
				}
				return r, se, err
			}},
		{name: "stale reads from a client cache", cases: []string{"linearizable-clients"},
			do: func(cl *simCoordClient, req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
				if req.Kind == model.CoordGet {
					k := string(rune(cl.host)) + req.Key
					if r, ok := cache[k]; ok {
						return r, model.ErrNone, nil
					}
					r, se, err := cl.Do(req)
					cache[k] = r
					return r, se, err
				}
				return cl.Do(req)
			}},
		{name: "leases never expire", cases: []string{"lease-expiry"},
			do: func(cl *simCoordClient, req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
				if req.Kind == model.CoordLeaseGrant {
					req.TTLMs = 1 << 40
				}
				return cl.Do(req)
			}},
		{name: "revoke keeps the keys", cases: []string{"lease-revoke"},
			do: func(cl *simCoordClient, req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
				if req.Kind == model.CoordLeaseRevoke {
					return model.CoordResponse{Revision: cl.c.s.Revision()}, model.ErrNone, nil
				}
				return cl.Do(req)
			}},
		{name: "lease errors hidden", cases: []string{"lease-errors", "lease-expiry"},
			do: func(cl *simCoordClient, req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
				r, se, err := cl.Do(req)
				if se == model.ErrLeaseExpired {
					se = model.ErrNone
				}
				return r, se, err
			}},
		{name: "watch events reordered", cases: []string{"watch-order", "lease-expiry"},
			wrap: func(cl *simCoordClient) conformance.CoordClient { return reorderClient{cl} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range tc.cases {
				wrap := tc.wrap
				if wrap == nil {
					wrap = func(cl *simCoordClient) conformance.CoordClient { return doFunc{cl, tc.do} }
				}
				clear(cache)
				svc := brokenCoord{simCoord: newSimCoord(), wrap: wrap}
				if err := conformance.Find(conformance.CoordCases(), name).Run(svc, "planted/"); err == nil {
					t.Errorf("case %s passed a store whose %s", name, tc.name)
				} else {
					t.Logf("case %s caught it: %v", name, err)
				}
			}
		})
	}
}
