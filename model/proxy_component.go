package model

import "slices"

// proxy is the supernode proxy of a territory (seed protocol 3): it consumes
// the egress stream (egress.go) into a replica of each subgraph the stream
// carries (the subgraphs that hold a supernode) that the territory is
// adjacent to (proxy_adjacency.go), and serves stale reads from it. It
// applies each event once and in LSN order: an event at or below the
// replica's LSN is a redelivery or a republished duplicate and is dropped; an
// event past the next LSN is a gap the egress must never make: the replica
// stops there and reports it (FactProxyGap) rather than fold a wrong state.
//
// It keeps nothing durable: a replica starts from its subgraph's committed
// snapshot, then the stream after it (proxy_snapshot.go), after a crash as
// when newly adjacent. What is not built: a replica restricted to the
// supernodes' potentials and the axon terminals that concern this territory
// (it keeps the whole subgraph, which the digest check compares with the
// primary's fold: folding an event soundly needs the dedup table, every
// neuron's degrees and potential, and every synapse's existence).
type proxy struct {
	noHooks
	t        *Territory
	id       compID
	offset   uint64 // next stream offset to read
	replicas map[SubgraphID]*SubgraphState
	stuck    map[SubgraphID]bool // a gap was seen: the replica no longer advances
	lag      map[SubgraphID]*replicaLag
	want     map[SubgraphID]bool // the subgraphs the territory is adjacent to (refresh)
	// Where the stream holds what (proxy_snapshot.go), for every subgraph
	// read: the marks of its records and the highest LSN read.
	marks   map[SubgraphID][]proxyMark
	seen    map[SubgraphID]uint64
	loading map[SubgraphID]*proxyLoad // snapshot loads in flight: the reads wait
	busy    bool                      // a read or a load is in flight
	tries   int
}

const (
	proxyTagRead      uint8 = iota + 1
	proxyTagPoll            // timer
	proxyTagHead            // a snapshot head (call.sg)
	proxyTagBlob            // its blob
	proxyTagLoadRetry       // timer
)

// proxyBatch bounds the entries of one stream read.
const proxyBatch = 256

// FactProxyApplied: a proxy's replica of Subgraph reached LSN (Digest: the
// replica's state digest, for the prefix check). Offset is the stream offset
// it read through. Its replica lag: Tail is the highest committed LSN of the
// subgraph the stream has told it of (each record carries the tail the egress
// read), LagEvents is Tail - LSN, and LagMs how long, on the territory's own
// clock, the replica has been behind that tail (0: caught up).
//
// Supernodes are the replica's supernodes at LSN, ascending: each has the
// replica's lag (a supernode's state is its subgraph's fold at the replica's
// LSN), which the metrics export per proxy and supernode.
type FactProxyApplied struct {
	Territory  HostID
	Subgraph   SubgraphID
	LSN        uint64
	Digest     uint64
	Offset     uint64
	Tail       uint64
	LagEvents  uint64
	LagMs      int64
	Supernodes []NeuronID
}

// replicaLag is what a proxy knows of how far behind a replica is.
type replicaLag struct {
	tail          uint64 // highest committed LSN the stream told of
	behindSinceMs int64  // when the replica fell behind tail (-1: caught up)
}

// FactProxyGap: a proxy's stream skipped from Applied to LSN for Subgraph.
type FactProxyGap struct {
	Territory HostID
	Subgraph  SubgraphID
	Applied   uint64
	LSN       uint64
}

func (FactProxyApplied) isFact() {}
func (FactProxyGap) isFact()     {}

func newProxy(t *Territory) *proxy {
	p := &proxy{t: t, offset: 1, replicas: map[SubgraphID]*SubgraphState{}, stuck: map[SubgraphID]bool{}, lag: map[SubgraphID]*replicaLag{},
		want: map[SubgraphID]bool{}, marks: map[SubgraphID][]proxyMark{}, seen: map[SubgraphID]uint64{}, loading: map[SubgraphID]*proxyLoad{}}
	p.id = t.register(p)
	return p
}

// start begins consuming at boot.
func (x *proxy) start() { x.poll() }

// poll brings the replicas in line with the adjacency, then reads the stream
// once no snapshot load is in flight (loaded reads then).
func (x *proxy) poll() {
	x.busy = true
	x.refresh()
	if len(x.loading) == 0 {
		x.read()
	}
}

func (x *proxy) read() {
	x.busy = true
	x.t.log(call{comp: x.id, tag: proxyTagRead}, LogRequest{Kind: LogRead, Stream: EgressStream, FromLSN: x.offset, MaxEntries: proxyBatch})
}

func (x *proxy) onTimer(_ *primary, c call) {
	switch {
	case c.tag == proxyTagPoll && !x.busy:
		x.poll()
	case c.tag == proxyTagLoadRetry && x.loading[c.sg] != nil:
		x.getHead(c.sg)
	}
}

func (x *proxy) onResult(_ *primary, c call, res *result) {
	if c.tag == proxyTagHead || c.tag == proxyTagBlob {
		x.onLoad(c, res)
		return
	}
	if c.tag != proxyTagRead {
		return
	}
	x.busy = false
	if !res.ok() {
		x.tries++
		x.t.after(call{comp: x.id, tag: proxyTagPoll}, x.tries)
		return
	}
	x.tries = 0
	entries := res.Log.Entries
	var touched []SubgraphID
	for i := range entries {
		evs, _, tail, err := DecodeEgressRecordTail(entries[i].Data)
		if err != nil {
			x.offset = max(x.offset, entries[i].LSN+1)
			x.t.out.Add(badCoordValue(x.t.cfg.ID, "egress stream", err))
			continue
		}
		if sg := evs[0].Subgraph; uint32(sg) < x.t.cfg.Subgraphs {
			if x.want[sg] && x.replicas[sg] == nil {
				// The first record of a subgraph the replica wants: start it
				// from the snapshot, and read on from this record.
				x.offset = entries[i].LSN
				x.reportAll(touched)
				x.busy = true
				x.load(sg)
				return
			}
			x.mark(sg, evs[0].LSN, evs[len(evs)-1].LSN, entries[i].LSN)
			if x.want[sg] {
				x.learnTail(sg, tail)
			}
		}
		x.offset = max(x.offset, entries[i].LSN+1) // a redelivery reads an older offset again
		for j := range evs {
			ev := &evs[j]
			if uint32(ev.Subgraph) < x.t.cfg.Subgraphs && x.apply(ev) && !slices.Contains(touched, ev.Subgraph) {
				touched = append(touched, ev.Subgraph)
			}
		}
	}
	x.reportAll(touched)
	if len(entries) == proxyBatch {
		x.poll()
		return
	}
	x.t.afterMs(call{comp: x.id, tag: proxyTagPoll}, x.t.cfg.TickMs)
}

// reportAll reports the replicas a batch advanced, in subgraph order.
func (x *proxy) reportAll(touched []SubgraphID) {
	slices.Sort(touched)
	for _, sg := range touched {
		x.learnTail(sg, 0) // a record of several subgraphs is not the egress's, but must not panic
		x.report(sg)
	}
}

// report observes sg's replica and its lag.
func (x *proxy) report(sg SubgraphID) {
	st, l := x.replicas[sg], x.lag[sg]
	f := FactProxyApplied{Territory: x.t.cfg.ID, Subgraph: sg, LSN: st.AppliedLSN, Digest: st.Digest(), Offset: x.offset - 1, Tail: max(l.tail, st.AppliedLSN),
		Supernodes: st.Supernodes()}
	f.LagEvents = f.Tail - st.AppliedLSN
	if f.LagEvents == 0 {
		l.behindSinceMs = -1
	} else {
		f.LagMs = x.t.nowMs - l.behindSinceMs
	}
	x.t.observe(f)
}

// apply folds one event of the stream once, in LSN order, if the territory
// is adjacent to its subgraph; true: applied.
func (x *proxy) apply(ev *Event) bool {
	if !x.want[ev.Subgraph] {
		return false
	}
	st := x.replicas[ev.Subgraph]
	switch {
	case st == nil:
		return false // not a record of the egress: its first event names another subgraph
	case x.stuck[ev.Subgraph]:
		return false
	case ev.LSN <= st.AppliedLSN:
		return false // a duplicate: applied already
	case ev.LSN > st.AppliedLSN+1:
		x.stuck[ev.Subgraph] = true
		x.t.observe(FactProxyGap{Territory: x.t.cfg.ID, Subgraph: ev.Subgraph, Applied: st.AppliedLSN, LSN: ev.LSN})
		return false
	}
	st.Apply(ev)
	return true
}

// learnTail records a committed tail of sg that a record carried.
func (x *proxy) learnTail(sg SubgraphID, tail uint64) {
	l := x.lag[sg]
	if l == nil {
		l = &replicaLag{behindSinceMs: -1}
		x.lag[sg] = l
	}
	l.tail = max(l.tail, tail)
	if st := x.replicas[sg]; l.behindSinceMs < 0 && (st == nil || st.AppliedLSN < l.tail) {
		l.behindSinceMs = x.t.nowMs
	}
}

// Replica is a proxy's replica of sg (nil: none), for checkers and status.
func (t *Territory) Replica(sg SubgraphID) *SubgraphState {
	if t.proxy == nil {
		return nil
	}
	return t.proxy.replicas[sg]
}
