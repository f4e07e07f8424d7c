package sim

import (
	"cmp"
	"maps"
	"slices"

	"territory/model"
	"territory/sim/invariants"
)

// staleChecker judges stale reads (model/stale_read.go), which the
// linearizability checkers do not see:
//
//   - stale-read-prefix: a stale read's answer names an LSN no newer than
//     its subgraph's commit index when the read returned, and is what a read
//     of the fold of the committed log at that LSN returns (checked at the
//     end, by folding each log once, the reads in LSN order);
//   - stale-read-monotonic: one client incarnation's stale reads of a
//     subgraph, in the order they returned, never go back to a lower LSN.
type staleChecker struct {
	logs  map[model.SubgraphID][][]byte // committed entries, LSN i at i-1
	reads map[model.SubgraphID][]staleRead
	last  map[clientSub]uint64
	st    StaleStats
}

type staleRead struct {
	client model.HostID
	req    model.Request
	res    model.Result
	atUs   int64
}

type clientSub struct {
	client model.HostID
	sg     model.SubgraphID
}

// StaleStats are the stale reads of a run.
type StaleStats struct {
	Reads        int // answered (ok)
	ByProxy      int // of them, answered by a proxy
	MaxLagEvents int // the largest commit index minus LSN at return
}

func newStaleChecker(*View) Checker {
	return &staleChecker{logs: map[model.SubgraphID][][]byte{}, reads: map[model.SubgraphID][]staleRead{}, last: map[clientSub]uint64{}}
}

func (*staleChecker) Name() string { return "stale" }

func (c *staleChecker) Observe(v *View, e BusEvent) {
	switch e := e.(type) {
	case EntryFolded:
		if l := c.logs[e.Subgraph]; uint64(len(l)) == e.Entry.LSN-1 {
			c.logs[e.Subgraph] = append(l, e.Entry.Data)
		}
	case OpReturned:
		d := e.Done
		if !d.Request.Stale || d.Unknown || d.Result.Status != model.StatusOK {
			return
		}
		c.returned(v, e.Client, d)
	case HostChanged:
		if e.Change == HostCrashed || e.Change == HostLost {
			for k := range c.last { // order: deletions only
				if k.client == e.Host {
					delete(c.last, k)
				}
			}
		}
	}
}

func (c *staleChecker) returned(v *View, client model.HostID, d model.FactOpDone) {
	sg := model.SubgraphOf(d.Request.RoutingNeuron(), v.Config().Subgraphs)
	r := d.Result
	c.st.Reads++
	if r.Proxy {
		c.st.ByProxy++
	}
	committed := uint64(len(c.logs[sg]))
	if r.LSN > committed {
		v.Violate(invariants.StaleReadPrefix, "client %s: stale %s of subgraph %d reflects LSN %d, but %d entries are committed", v.HostName(client), d.Request.String(), sg, r.LSN, committed)
		return
	}
	c.st.MaxLagEvents = max(c.st.MaxLagEvents, int(committed-r.LSN))
	k := clientSub{client, sg}
	if last, ok := c.last[k]; ok && r.LSN < last {
		v.Violate(invariants.StaleReadMonotonic, "client %s: stale %s of subgraph %d reflects LSN %d, after a stale read at LSN %d", v.HostName(client), d.Request.String(), sg, r.LSN, last)
	}
	c.last[k] = max(c.last[k], r.LSN)
	c.reads[sg] = append(c.reads[sg], staleRead{client: client, req: d.Request, res: r, atUs: v.NowUs()})
}

// Final folds each log once and answers every stale read of it at its LSN.
func (c *staleChecker) Final(v *View) []invariants.Violation {
	for _, sg := range slices.Sorted(maps.Keys(c.reads)) {
		reads := c.reads[sg]
		slices.SortStableFunc(reads, func(a, b staleRead) int { return cmp.Compare(a.res.LSN, b.res.LSN) })
		fold := model.NewSubgraphState(sg, v.Config().Subgraphs, model.GenesisPolicy())
		log := c.logs[sg]
		for _, rd := range reads {
			for fold.AppliedLSN < rd.res.LSN {
				ev, err := model.DecodeEvent(log[fold.AppliedLSN])
				if err != nil {
					v.Violate(invariants.StaleReadPrefix, "subgraph %d LSN %d does not decode: %v", sg, fold.AppliedLSN+1, err)
					return nil
				}
				fold.Apply(&ev)
			}
			want := fold.Read(&rd.req)
			if want.Exists != rd.res.Exists || want.Value != rd.res.Value {
				v.Violate(invariants.StaleReadPrefix, "client %s at %dus: stale %s of subgraph %d at LSN %d (proxy %v) returned exists=%v value=%d, the log's fold there exists=%v value=%d",
					v.HostName(rd.client), rd.atUs, rd.req.String(), sg, rd.res.LSN, rd.res.Proxy, rd.res.Exists, rd.res.Value, want.Exists, want.Value)
			}
		}
	}
	return nil
}

func (c *staleChecker) Report(o *Outcome) { o.Stale = c.st }
