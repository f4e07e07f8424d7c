package model

// A territory is a host plus components. The host (territory.go,
// territory_host.go, territory_liveness.go) owns the lease, the route cache,
// adopt and step-down, and read-barrier batching; each protocol is a component
// with its own per-subgraph state, call tags, timers, file and tests:
//
//	claimer    claim_component.go     claim the route, open the log, replay
//	loader     snapload_component.go  load the latest good snapshot on recovery
//	recoverer  recovery_component.go  announce a recovery until its event commits
//	writer     write_component.go     the write queue: one append at a time
//	snapshotter territory_snapshot.go the background snapshot job
//
// A component registers with the host and gets a compID. Every call or timer
// it starts is recorded by the host's router under the request id as
// (component, tag, subgraph, claim generation); a result or timer goes back to
// the component that started it, with its tag, and only while the subgraph is
// held by the same claim (a result of an older claim is dropped by the
// router). No switch in the host lists another component's tags.
//
// Lifecycle hooks tell every component, in registration order, what happened
// to a subgraph. A new protocol (migration source or destination, proxy, saga,
// shadow) is a new component: it embeds noHooks, overrides what it needs, and
// is registered in NewTerritory. No other component changes
// (component_test.go registers one that is defined in a test).

// compID names a registered component: its index in Territory.comps.
type compID uint8

// hostComp is the host itself: boot, lease, route poll, read barrier, tick.
const hostComp compID = 0

// call is what the router remembers of a call or timer in flight.
type call struct {
	comp   compID
	tag    uint8      // the component's own call or timer kind
	scoped bool       // made for a subgraph: delivered only while sg is held by claim gen
	sg     SubgraphID // scoped calls
	gen    uint64
	job    uint64 // a component's own sub-identity (e.g. a snapshot job)
}

// result is a call's outcome, whatever the service: the tag says which
// response field holds the answer.
type result struct {
	Outcome Outcome
	Err     ServiceErr
	Coord   CoordResponse
	Log     LogResponse
	Blob    BlobResponse
	Disk    DiskResponse
}

func (r *result) ok() bool { return r.Outcome == OutcomeOK }

// component is one protocol of a territory.
type component interface {
	// onResult delivers the result of a call the component started; p is the
	// subgraph of a scoped call (nil for an unscoped one).
	onResult(p *primary, c call, res *result)
	// onTimer delivers a timer the component set.
	onTimer(p *primary, c call)

	// Hooks, in registration order. adopted: the host started serving p.
	adopted(p *primary)
	// claiming: a (re)claim of p starts under a new generation; the calls of
	// the previous one will never be delivered.
	claiming(p *primary)
	// claimStalled: the claim failed claimReleaseTries times in a row.
	claimStalled(p *primary)
	// operational: p became operational; recovered says this incarnation took
	// it over from an earlier epoch (a restart or a lost host).
	operational(p *primary, recovered bool)
	// committed: an event of p was committed and applied.
	committed(p *primary)
	// tick: the periodic tick, for each operational subgraph.
	tick(p *primary)
	// steppedDown: the host no longer serves p.
	steppedDown(p *primary)
	// message offers a message the host does not handle; true: taken.
	message(from HostID, m *Message) bool
}

// noHooks gives a component every hook as a no-op.
type noHooks struct{}

func (noHooks) adopted(*primary)                 {}
func (noHooks) claiming(*primary)                {}
func (noHooks) claimStalled(*primary)            {}
func (noHooks) operational(*primary, bool)       {}
func (noHooks) committed(*primary)               {}
func (noHooks) tick(*primary)                    {}
func (noHooks) steppedDown(*primary)             {}
func (noHooks) message(HostID, *Message) bool    { return false }
func (noHooks) onTimer(*primary, call)           {}
func (noHooks) onResult(*primary, call, *result) {}

// perSubgraph is a component's state for each subgraph it serves, created on
// first use and dropped on step-down. Only looked up, never iterated.
type perSubgraph[S any] map[SubgraphID]*S

func (m perSubgraph[S]) of(p *primary) *S {
	s := m[p.sg]
	if s == nil {
		s = new(S)
		m[p.sg] = s
	}
	return s
}

// register adds a component; its id goes into every call it makes.
func (t *Territory) register(c component) compID {
	if len(t.comps) >= 255 {
		panic("territory: too many components")
	}
	t.comps = append(t.comps, c)
	return compID(len(t.comps) - 1)
}

// scoped is a call of component comp for subgraph p under its current claim.
func scoped(comp compID, tag uint8, p *primary) call {
	return call{comp: comp, tag: tag, scoped: true, sg: p.sg, gen: p.gen}
}

// take removes a call from the router and returns its subgraph (nil for an
// unscoped call); ok=false: unknown id, or a scoped call of an older claim.
func (t *Territory) take(id uint64) (call, *primary, bool) {
	c, ok := t.pending[id]
	if !ok {
		return c, nil, false // a late duplicate; drivers deliver each result once, but be strict anyway
	}
	delete(t.pending, id)
	if !c.scoped {
		return c, nil, true
	}
	p := t.subgraphs[c.sg]
	if p == nil || p.gen != c.gen {
		return c, nil, false
	}
	return c, p, true
}

func (t *Territory) deliver(id uint64, res *result) {
	if c, p, ok := t.take(id); ok {
		t.comps[c.comp].onResult(p, c, res)
	}
}

func (t *Territory) fire(id uint64) {
	if c, p, ok := t.take(id); ok {
		t.comps[c.comp].onTimer(p, c)
	}
}

func (t *Territory) id() uint64 {
	t.nextID++
	return t.nextID
}

func (t *Territory) coord(c call, req CoordRequest) uint64 {
	id := t.id()
	t.pending[id] = c
	t.out.Add(CoordCall{ReqID: id, Req: req, TimeoutMs: t.cfg.CoordTimeoutMs})
	return id
}

func (t *Territory) log(c call, req LogRequest) {
	id := t.id()
	t.pending[id] = c
	t.out.Add(LogCall{ReqID: id, Req: req, TimeoutMs: t.cfg.LogTimeoutMs})
}

func (t *Territory) blob(c call, req BlobRequest) {
	id := t.id()
	t.pending[id] = c
	t.out.Add(BlobCall{ReqID: id, Req: req, TimeoutMs: t.cfg.BlobTimeoutMs})
}

func (t *Territory) disk(c call, req DiskRequest) {
	id := t.id()
	t.pending[id] = c
	t.out.Add(DiskCall{ReqID: id, Req: req, TimeoutMs: t.cfg.BlobTimeoutMs})
}

// after sets a timer with the service retry backoff for attempt.
func (t *Territory) after(c call, attempt int) {
	t.afterMs(c, backoffMs(t.cfg.RetryBaseMs, t.cfg.RetryCapMs, attempt))
}

func (t *Territory) afterMs(c call, ms int64) {
	id := t.id()
	t.pending[id] = c
	t.out.Add(SetTimer{ID: id, AfterMs: ms})
}

// backoffMs is base << attempt, capped.
func backoffMs(base, limit int64, attempt int) int64 {
	if attempt > 30 {
		return limit
	}
	return min(limit, base<<attempt)
}

func (t *Territory) reply(to HostID, id EventUUID, r Result) {
	t.out.Add(Send{To: to, Msg: &Message{Reply: &Reply{ID: id, Result: r}}})
}

func (t *Territory) observe(f Fact) { t.out.Add(Observe{Fact: f}) }

// Hook fan-out, in registration order.

func (t *Territory) hookClaiming(p *primary) {
	for _, c := range t.comps[1:] {
		c.claiming(p)
	}
}

func (t *Territory) hookClaimStalled(p *primary) {
	for _, c := range t.comps[1:] {
		c.claimStalled(p)
	}
}

func (t *Territory) hookOperational(p *primary, recovered bool) {
	for _, c := range t.comps[1:] {
		c.operational(p, recovered)
	}
}

func (t *Territory) hookCommitted(p *primary) {
	for _, c := range t.comps[1:] {
		c.committed(p)
	}
}
