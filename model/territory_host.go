package model

import (
	"fmt"
	"slices"
)

// The host's own calls and timers.
const (
	hostBoot uint8 = iota // read the routes at boot
	hostBarrier
	hostLeaseGrant
	hostAlivePut
	hostKeepAlive
	hostRoutePoll
	hostRecheck   // a route get after a failed barrier
	hostWatch     // the route watch registration
	hostBootRetry // timer
	hostTick      // timer
)

// hostPart is the host as the router's component 0.
type hostPart struct{ t *Territory }

func (hostPart) adopted(*primary)              {}
func (hostPart) claiming(*primary)             {}
func (hostPart) claimStalled(*primary)         {}
func (hostPart) operational(*primary, bool)    {}
func (hostPart) committed(*primary)            {}
func (hostPart) tick(*primary)                 {}
func (hostPart) steppedDown(*primary)          {}
func (hostPart) message(HostID, *Message) bool { return false }

func (h hostPart) onResult(_ *primary, c call, res *result) {
	t := h.t
	switch c.tag {
	case hostBoot:
		t.onBoot(res)
	case hostBarrier:
		t.onBarrier(res)
	case hostRecheck:
		t.onRecheck(c.job, res)
	case hostWatch:
		t.onWatchRegistered(res)
	case hostLeaseGrant, hostAlivePut, hostKeepAlive:
		t.onLease(c.tag, res)
	case hostRoutePoll:
		t.pollBusy = false
		if res.ok() {
			t.syncRoutes(res.Coord.KVs)
		}
	default:
		panic(fmt.Sprintf("territory %d: host result for tag %d", t.cfg.ID, c.tag))
	}
}

func (h hostPart) onTimer(_ *primary, c call) {
	switch c.tag {
	case hostBootRetry:
		h.t.readRoutesAtBoot()
	case hostTick:
		h.t.tick()
	}
}

func (t *Territory) hostCall(tag uint8) call { return call{comp: hostComp, tag: tag} }

// ---- boot, adopt and step down ----

func (t *Territory) boot() {
	if t.booted || len(t.pending) > 0 {
		panic(fmt.Sprintf("territory %d: Start delivered twice to one incarnation", t.cfg.ID))
	}
	t.readRoutesAtBoot()
	t.watchRoutes()
	t.grantLease()
	t.afterMs(t.hostCall(hostTick), t.cfg.TickMs)
	if t.proxy != nil {
		t.proxy.start()
	}
}

func (t *Territory) readRoutesAtBoot() {
	t.coord(t.hostCall(hostBoot), CoordRequest{Kind: CoordRange, Key: RoutesPrefix})
}

func (t *Territory) onBoot(res *result) {
	if !res.ok() {
		t.bootTries++
		t.after(t.hostCall(hostBootRetry), t.bootTries)
		return
	}
	t.booted = true
	t.syncRoutes(res.Coord.KVs)
}

// syncRoutes adopts every subgraph the routes assign to this territory and
// drops every operational one they assign elsewhere.
func (t *Territory) syncRoutes(kvs []KV) {
	for _, kv := range kvs {
		if sg, err := ParseRouteKey(kv.Key); err == nil && t.routeSeen(sg, kv.ModRevision) {
			continue
		}
		r, err := ParseRoute(kv)
		if err == nil && uint32(r.Subgraph) >= t.cfg.Subgraphs {
			err = fmt.Errorf("route %s: subgraph %d beyond the %d of the cluster", kv.Key, r.Subgraph, t.cfg.Subgraphs)
		}
		if err != nil {
			t.out.Add(badCoordValue(t.cfg.ID, kv.Key, err)) // not the core's: leave that subgraph as it is
			continue
		}
		t.peers[r.Subgraph] = r.Primary
		t.markRoute(r.Subgraph, r.ModRevision)
		p := t.subgraphs[r.Subgraph]
		switch {
		case r.Primary == t.cfg.ID && p == nil:
			t.adopt(r)
		case p != nil && p.phase == phaseOperational && r.ModRevision > p.route.ModRevision && (r.Primary != t.cfg.ID || r.Epoch != p.epoch):
			// Only a route newer than our own claim deposes us: a poll answered
			// from before the claim must not.
			t.stepDown(p, stepDownWhy{reason: StepDownRouteMoved, route: r})
			if r.Primary == t.cfg.ID {
				t.adopt(r)
			}
		}
	}
}

// adopt starts serving a subgraph whose route names this territory.
func (t *Territory) adopt(r Route) {
	if uint32(r.Subgraph) >= t.cfg.Subgraphs {
		panic(fmt.Sprintf("territory %d: route for subgraph %d beyond %d", t.cfg.ID, r.Subgraph, t.cfg.Subgraphs))
	}
	if _, ok := t.subgraphs[r.Subgraph]; ok {
		return
	}
	// The state starts from the genesis policy: the policy a subgraph runs
	// under is itself a logged event, so every replay agrees on it.
	p := &primary{sg: r.Subgraph, route: r, state: NewSubgraphState(r.Subgraph, t.cfg.Subgraphs, GenesisPolicy())}
	t.subgraphs[r.Subgraph] = p
	i, _ := slices.BinarySearch(t.owned, r.Subgraph)
	t.owned = slices.Insert(t.owned, i, r.Subgraph)
	t.observe(FactAdopted{Territory: t.cfg.ID, Subgraph: r.Subgraph})
	for _, c := range t.comps[1:] {
		c.adopted(p)
	}
}

// stepDownWhy is why a territory stops serving a subgraph: the reason, and for
// the route reasons the route it saw.
type stepDownWhy struct {
	reason  StepDownReason
	barrier bool
	route   Route
}

// stepDown stops serving a subgraph: every component lets go of it (the write
// pipeline tells its waiting clients to go elsewhere; nothing they wait for
// was acknowledged).
func (t *Territory) stepDown(p *primary, why stepDownWhy) {
	for _, c := range t.comps[1:] {
		c.steppedDown(p)
	}
	delete(t.subgraphs, p.sg)
	t.markRoute(p.sg, 0)
	i, _ := slices.BinarySearch(t.owned, p.sg)
	t.owned = slices.Delete(t.owned, i, i+1)
	t.observe(FactSteppedDown{Territory: t.cfg.ID, Subgraph: p.sg, Epoch: p.epoch,
		Reason: why.reason, Barrier: why.barrier, Primary: why.route.Primary, RouteEpoch: why.route.Epoch})
}

// ---- messages and reads ----

func (t *Territory) onMessage(from HostID, m *Message) {
	if m.Request != nil {
		t.onRequest(from, m.Request)
		return
	}
	for _, c := range t.comps[1:] {
		if c.message(from, m) {
			return
		}
	}
}

func (t *Territory) onRequest(from HostID, req *Request) {
	if err := req.Validate(); err != nil {
		t.reply(from, req.ID, Result{Status: StatusBadRequest})
		return
	}
	if req.Stale {
		t.onStaleRead(from, req)
		return
	}
	sg := SubgraphOf(req.RoutingNeuron(), t.cfg.Subgraphs)
	p := t.subgraphs[sg]
	if p == nil {
		t.reply(from, req.ID, Result{Status: StatusWrongTerritory})
		return
	}
	if req.Op.IsRead() {
		t.onRead(from, p, req)
		return
	}
	if req.Op == OpConnect && SubgraphOf(req.Post, t.cfg.Subgraphs) != sg {
		t.sagas.onConnect(from, p, req)
		return
	}
	t.writes.onRequest(from, p, req)
}

func (t *Territory) onRead(from HostID, p *primary, req *Request) {
	if p.phase != phaseOperational {
		t.reply(from, req.ID, Result{Status: StatusUnavailable})
		return
	}
	if len(t.reads) >= t.cfg.ReadQueueLimit {
		t.reply(from, req.ID, Result{Status: StatusBusy})
		return
	}
	t.reads = append(t.reads, pendingRead{from: from, req: *req})
	t.startBarrier()
}

// enqueueBarrierWait queues a saga query behind the next read barrier.
func (t *Territory) enqueueBarrierWait(from HostID, p *primary, g *SagaMsg) {
	if len(t.reads) >= t.cfg.ReadQueueLimit {
		return // post asks again
	}
	t.reads = append(t.reads, pendingRead{from: from, saga: g, sg: p.sg})
	t.startBarrier()
}

// peerOf is the primary the routes last named for a subgraph (0: unknown).
func (t *Territory) peerOf(sg SubgraphID) HostID { return t.peers[sg] }
