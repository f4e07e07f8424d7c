package sim

import (
	"bytes"
	"maps"
	"slices"

	"territory/model"
	"territory/sim/invariants"
)

// egressChecker judges the supernode path (model/egress.go,
// model/proxy_component.go): the egress stream against the committed logs,
// and every proxy's replica against the reference fold.
//
//   - egress-no-gap: each subgraph's events in the stream, in offset order,
//     start at LSN 1 and never skip one; an event at or below the highest
//     already published is a redelivery and must be byte-identical to the
//     committed entry (so is every event).
//   - proxy-prefix: every replica a proxy reports is, by digest, the
//     reference fold of its subgraph's committed log at the replica's LSN;
//     so is every snapshot a proxy starts a replica from.
//   - proxy-monotonic: a proxy's LSN of a subgraph never goes down within
//     one incarnation of its territory (a restart rebuilds from the stream).
//   - egress-lag: once faults heal (the healed tick) and at the end, for every
//     subgraph whose fold held a supernode more than the lag bound ago, the
//     stream and every proxy up longer than the bound, whose territory has
//     been adjacent to the subgraph (model/proxy_adjacency.go) longer than
//     the bound and did not drop its replica within it, hold every entry
//     committed more than the bound ago.
//   - proxy-adjacent: a running territory keeps no replica of a subgraph it
//     has not been adjacent to for longer than the bound.
//
// Adjacency is sampled from the territories' live operational states, at
// most every adjacencySampleUs (on any bus event) and at each lag check.
//
// It does nothing in a run without egress.
type egressChecker struct {
	on       bool
	lagUs    int64
	logs     map[model.SubgraphID]*refLog
	streamTo map[model.SubgraphID]uint64 // highest LSN in the stream
	redeliv  int                         // duplicates in the stream
	proxies  map[proxyKey]uint64         // the LSN each running proxy reported
	bootUs   map[model.HostID]int64
	lag      EgressStats // the maxima of the lag figures
	// adjacency samples (proxy-adjacent, egress-lag)
	sampledUs int64
	adjSince  map[proxyKey]int64                                               // adjacent at every sample since
	unadjRepl map[proxyKey]int64                                               // a replica kept while not adjacent, at every sample since
	droppedUs map[proxyKey]int64                                               // the proxy's last FactProxyDropped
	adjOf     func(*View, model.HostID) []model.SubgraphID                     // liveAdjacency; tests plant their own
	replicaOf func(*View, model.HostID, model.SubgraphID) *model.SubgraphState // (*View).Replica; tests plant their own
}

// liveAdjacency is a territory's adjacency from its live operational states.
func liveAdjacency(v *View, t model.HostID) []model.SubgraphID {
	return model.AdjacentSubgraphs(v.Operational(t), func(sg model.SubgraphID) *model.SubgraphState {
		st, _ := v.State(t, sg)
		return st
	})
}

// adjacencySampleUs is the least period of the adjacency samples.
const adjacencySampleUs = 200_000

// refLog is what the checker keeps of one committed log.
type refLog struct {
	data     [][]byte // LSN i at i-1
	digests  []uint64 // the fold's digest after LSN i
	commitUs []int64
	superUs  int64 // when the fold first held a supernode (0: never)
}

type proxyKey struct {
	host model.HostID
	sg   model.SubgraphID
}

func newEgressChecker(v *View) Checker {
	lag := v.Config().EgressLagMs
	if lag <= 0 {
		lag = 3_000
	}
	return &egressChecker{on: v.Config().Egress > 0, lagUs: lag * 1000, logs: map[model.SubgraphID]*refLog{},
		streamTo: map[model.SubgraphID]uint64{}, proxies: map[proxyKey]uint64{}, bootUs: map[model.HostID]int64{},
		adjSince: map[proxyKey]int64{}, unadjRepl: map[proxyKey]int64{}, droppedUs: map[proxyKey]int64{},
		adjOf: liveAdjacency, replicaOf: (*View).Replica, sampledUs: -adjacencySampleUs}
}

func (*egressChecker) Name() string { return "egress" }

func (c *egressChecker) log(sg model.SubgraphID) *refLog {
	l := c.logs[sg]
	if l == nil {
		l = &refLog{}
		c.logs[sg] = l
	}
	return l
}

func (c *egressChecker) Observe(v *View, e BusEvent) {
	if !c.on {
		return
	}
	if v.NowUs()-c.sampledUs >= adjacencySampleUs {
		c.sample(v)
	}
	switch e := e.(type) {
	case EntryFolded:
		l := c.log(e.Subgraph)
		if uint64(len(l.data)) != e.Entry.LSN-1 {
			return // not the next entry: the fold checker reports it
		}
		l.data = append(l.data, e.Entry.Data)
		l.digests = append(l.digests, e.Fold.Digest())
		l.commitUs = append(l.commitUs, v.NowUs())
		if l.superUs == 0 && e.Fold.HasSupernode() {
			l.superUs = max(v.NowUs(), 1)
		}
	case EgressCommitted:
		c.streamEntry(v, e)
	case FactObserved:
		switch f := e.Fact.(type) {
		case model.FactProxyApplied:
			c.proxyApplied(v, f)
			c.lag.MaxReplicaLagEvents = max(c.lag.MaxReplicaLagEvents, f.LagEvents)
			c.lag.MaxReplicaLagMs = max(c.lag.MaxReplicaLagMs, f.LagMs)
		case model.FactEgressCursor:
			if f.Tail >= f.LSN {
				c.lag.MaxEgressLagEvents = max(c.lag.MaxEgressLagEvents, f.Tail-f.LSN)
			}
		case model.FactProxyDropped:
			k := proxyKey{f.Territory, f.Subgraph}
			delete(c.proxies, k)
			c.droppedUs[k] = v.NowUs()
		case model.FactProxySnapshot:
			c.lag.ReplicaStarts++
			switch {
			case f.Rejected == "":
				c.lag.FromSnapshot++
				c.lag.SnapshotLSNs += f.LSN
				// The snapshot is judged as a replica at its LSN: the fold
				// there, and not behind a replica the proxy still holds.
				c.proxyApplied(v, model.FactProxyApplied{Territory: f.Territory, Subgraph: f.Subgraph, LSN: f.LSN, Digest: f.Digest})
			case f.Rejected != "none":
				c.lag.SnapshotRejected++
			}
			if f.Rewind > 0 {
				c.lag.Rewinds++
			}
		case model.FactProxyGap:
			v.Violate(invariants.EgressNoGap, "proxy %s: subgraph %d's stream skips from LSN %d to %d", v.HostName(f.Territory), f.Subgraph, f.Applied, f.LSN)
		}
	case HostChanged:
		switch e.Change {
		case HostBooted:
			c.bootUs[e.Host] = v.NowUs()
		case HostCrashed, HostLost:
			for k := range c.proxies { // order: deletions only
				if k.host == e.Host {
					delete(c.proxies, k)
				}
			}
		}
	case Tick:
		if e.Kind == TickHealed {
			c.checkLag(v)
		}
	}
}

func (c *egressChecker) streamEntry(v *View, e EgressCommitted) {
	evs, raws, err := model.DecodeEgressRecord(e.Data)
	if err != nil {
		v.Violate(invariants.EgressNoGap, "stream offset %d: %v", e.Offset, err)
		return
	}
	for i := range evs {
		ev := &evs[i]
		l, top := c.log(ev.Subgraph), c.streamTo[ev.Subgraph]
		switch {
		case ev.LSN == 0 || ev.LSN > uint64(len(l.data)) || !bytes.Equal(l.data[ev.LSN-1], raws[i]):
			v.Violate(invariants.EgressNoGap, "stream offset %d: subgraph %d LSN %d is not the committed entry (%d committed)", e.Offset, ev.Subgraph, ev.LSN, len(l.data))
		case ev.LSN > top+1:
			v.Violate(invariants.EgressNoGap, "stream offset %d: subgraph %d skips from LSN %d to %d", e.Offset, ev.Subgraph, top, ev.LSN)
		case ev.LSN <= top:
			c.redeliv++
		}
		c.streamTo[ev.Subgraph] = max(top, ev.LSN)
	}
}

func (c *egressChecker) proxyApplied(v *View, f model.FactProxyApplied) {
	k := proxyKey{f.Territory, f.Subgraph}
	if last, ok := c.proxies[k]; ok && f.LSN < last {
		v.Violate(invariants.ProxyMonotonic, "proxy %s: subgraph %d went back from LSN %d to %d", v.HostName(f.Territory), f.Subgraph, last, f.LSN)
	}
	c.proxies[k] = f.LSN
	l := c.log(f.Subgraph)
	switch {
	case f.LSN == 0 || f.LSN > uint64(len(l.digests)):
		v.Violate(invariants.ProxyPrefix, "proxy %s: subgraph %d at LSN %d, but %d entries are committed", v.HostName(f.Territory), f.Subgraph, f.LSN, len(l.digests))
	case l.digests[f.LSN-1] != f.Digest:
		v.Violate(invariants.ProxyPrefix, "proxy %s: subgraph %d at LSN %d has digest %016x, the fold of the log there %016x", v.HostName(f.Territory), f.Subgraph, f.LSN, f.Digest, l.digests[f.LSN-1])
	}
}

// checkLag: what was committed more than the bound ago is in the stream and
// in every proxy up longer than the bound.
func (c *egressChecker) checkLag(v *View) {
	c.sample(v)
	now := v.NowUs()
	for _, sg := range slices.Sorted(maps.Keys(c.logs)) {
		l := c.logs[sg]
		if l.superUs == 0 || l.superUs > now-c.lagUs {
			continue
		}
		due := uint64(0) // the last LSN committed more than the bound ago
		for i, at := range l.commitUs {
			if at <= now-c.lagUs {
				due = uint64(i + 1)
			}
		}
		if due == 0 {
			continue
		}
		if c.streamTo[sg] < due {
			v.Violate(invariants.EgressLag, "subgraph %d: the stream holds LSN %d, but %d was committed more than %dms ago", sg, c.streamTo[sg], due, c.lagUs/1000)
			continue
		}
		for _, t := range v.Territories() {
			k := proxyKey{t, sg}
			if since, ok := c.adjSince[k]; !ok || since > now-c.lagUs || !v.Running(t) || c.bootUs[t] > now-c.lagUs || c.droppedUs[k] > now-c.lagUs {
				continue
			}
			if got := c.proxies[proxyKey{t, sg}]; got < due {
				v.Violate(invariants.EgressLag, "proxy %s: subgraph %d at LSN %d, but %d was committed more than %dms ago", v.HostName(t), sg, got, due, c.lagUs/1000)
			}
		}
	}
}

// sample reads each running territory's adjacency from its operational
// states: adjacent since when, and a replica kept while not adjacent since
// when (proxy-adjacent).
func (c *egressChecker) sample(v *View) {
	now := v.NowUs()
	c.sampledUs = now
	streamed := slices.Sorted(maps.Keys(c.streamTo))
	for _, t := range v.Territories() {
		if !v.Running(t) {
			for _, sg := range streamed {
				delete(c.adjSince, proxyKey{t, sg})
				delete(c.unadjRepl, proxyKey{t, sg})
			}
			continue
		}
		adj := c.adjOf(v, t)
		for _, sg := range streamed {
			k := proxyKey{t, sg}
			switch {
			case slices.Contains(adj, sg):
				if _, ok := c.adjSince[k]; !ok {
					c.adjSince[k] = now
				}
				delete(c.unadjRepl, k)
			case c.replicaOf(v, t, sg) == nil:
				delete(c.adjSince, k)
				delete(c.unadjRepl, k)
			default:
				delete(c.adjSince, k)
				since, ok := c.unadjRepl[k]
				if !ok {
					c.unadjRepl[k] = now
				} else if since < now-c.lagUs {
					v.Violate(invariants.ProxyAdjacent, "proxy %s: keeps a replica of subgraph %d (at LSN %d), not adjacent to it for %dms", v.HostName(t), sg, c.replicaOf(v, t, sg).AppliedLSN, (now-since)/1000)
					c.unadjRepl[k] = now
				}
			}
		}
	}
}

func (c *egressChecker) Final(v *View) []invariants.Violation {
	if c.on {
		c.checkLag(v)
		c.measure(v)
	}
	return nil
}

// measure counts the replicas the running proxies hold at the end.
func (c *egressChecker) measure(v *View) {
	for _, t := range v.Territories() {
		for _, sg := range slices.Sorted(maps.Keys(c.streamTo)) {
			if r := v.Replica(t, sg); r != nil {
				c.lag.Replicas++
				c.lag.ReplicaNeurons += r.Neurons()
				c.lag.ReplicaSynapses += r.Synapses()
			}
		}
	}
}

// Report adds the stream's figures to the outcome.
func (c *egressChecker) Report(o *Outcome) {
	o.Egress.Redeliveries = c.redeliv
	o.Egress.MaxReplicaLagEvents, o.Egress.MaxReplicaLagMs, o.Egress.MaxEgressLagEvents = c.lag.MaxReplicaLagEvents, c.lag.MaxReplicaLagMs, c.lag.MaxEgressLagEvents
	for _, to := range c.streamTo { // order: a sum
		o.Egress.Published += int(to)
	}
	o.Egress.Subgraphs = len(c.streamTo)
	o.Egress.Replicas, o.Egress.ReplicaNeurons, o.Egress.ReplicaSynapses = c.lag.Replicas, c.lag.ReplicaNeurons, c.lag.ReplicaSynapses
	o.Egress.ReplicaStarts, o.Egress.FromSnapshot, o.Egress.SnapshotLSNs = c.lag.ReplicaStarts, c.lag.FromSnapshot, c.lag.SnapshotLSNs
	o.Egress.SnapshotRejected, o.Egress.Rewinds = c.lag.SnapshotRejected, c.lag.Rewinds
}

// EgressStats are the supernode path's figures of a run.
type EgressStats struct {
	Subgraphs    int // subgraphs the stream carries
	Published    int // their entries published (distinct)
	Redeliveries int // duplicates in the stream
	// The largest lags the proxies and the egress reported (FactProxyApplied,
	// FactEgressCursor): in events, and a replica's time behind in ms.
	MaxReplicaLagEvents uint64
	MaxReplicaLagMs     int64
	MaxEgressLagEvents  uint64
	// What the running proxies hold at the end: replicas, and their neurons
	// and synapses (the replica memory).
	Replicas        int
	ReplicaNeurons  int
	ReplicaSynapses int
	// How the proxies started their replicas (model.FactProxySnapshot): all
	// starts, those from a committed snapshot and the LSNs those did not fold
	// (the sum of their snapshots' LSNs), the snapshots rejected (not
	// counting "no snapshot"), and the starts that read the stream again
	// from an earlier offset.
	ReplicaStarts    int
	FromSnapshot     int
	SnapshotLSNs     uint64
	SnapshotRejected int
	Rewinds          int
}
