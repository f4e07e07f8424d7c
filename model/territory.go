package model

import (
	"slices"
)

// TerritoryConfig configures a territory host. Every queue and retry has a bound.
type TerritoryConfig struct {
	ID             HostID
	Manager        HostID // the control-plane role that commits recovery events; 0: none
	Subgraphs      uint32 // N, fixed when the cluster is created
	Policy         Policy
	CoordTimeoutMs int64
	LogTimeoutMs   int64
	BlobTimeoutMs  int64
	QueueLimit     int   // queued writes per subgraph
	ReadQueueLimit int   // reads waiting for a barrier
	RetryBaseMs    int64 // service retry backoff: base << attempt, capped
	RetryCapMs     int64
	AppendAttempts int // failed attempts of one append before re-claiming the subgraph
	ReplayBatch    int // entries per log read during replay
	TickMs         int64
	LeaseTTLMs     int64 // the liveness lease behind alive/<id>
	KeepAliveMs    int64
	RoutePollMs    int64 // how often routes are re-read to adopt or drop subgraphs
	HeartbeatMs    int64 // an idle subgraph logs a heartbeat this often
	RecoveryMs     int64 // how often an unacknowledged recovery is announced again
	LoadAttempts   int   // snapshot-load attempts before replaying the whole log
}

// DefaultTerritoryConfig fills the timeouts and bounds.
func DefaultTerritoryConfig(id HostID, subgraphs uint32) TerritoryConfig {
	return TerritoryConfig{
		ID: id, Subgraphs: subgraphs, Policy: DefaultPolicy(),
		CoordTimeoutMs: 500, LogTimeoutMs: 1000, BlobTimeoutMs: 2000,
		QueueLimit: 64, ReadQueueLimit: 1024,
		RetryBaseMs: 10, RetryCapMs: 500,
		AppendAttempts: 6, ReplayBatch: 256,
		TickMs: 250, LeaseTTLMs: 2000, KeepAliveMs: 500, RoutePollMs: 500,
		HeartbeatMs: 1000, RecoveryMs: 500, LoadAttempts: 3,
	}
}

// Validate reports a configuration the territory cannot run with.
func (c TerritoryConfig) Validate() error {
	switch {
	case c.ID == 0:
		return errorf("territory config: id must be positive")
	case c.Subgraphs == 0:
		return errorf("territory %d config: subgraphs must be positive", c.ID)
	case c.CoordTimeoutMs <= 0 || c.LogTimeoutMs <= 0 || c.BlobTimeoutMs <= 0:
		return errorf("territory %d config: timeouts must be positive", c.ID)
	case c.QueueLimit <= 0 || c.ReadQueueLimit <= 0 || c.AppendAttempts <= 0 || c.ReplayBatch <= 0 || c.LoadAttempts <= 0:
		return errorf("territory %d config: queue limits, attempts and batch must be positive", c.ID)
	case c.RetryBaseMs <= 0 || c.RetryCapMs < c.RetryBaseMs:
		return errorf("territory %d config: retry backoff base %d cap %d", c.ID, c.RetryBaseMs, c.RetryCapMs)
	case c.TickMs <= 0 || c.KeepAliveMs < c.TickMs || c.LeaseTTLMs <= c.KeepAliveMs || c.RoutePollMs < c.TickMs || c.HeartbeatMs < c.TickMs || c.RecoveryMs < c.TickMs:
		return errorf("territory %d config: tick %d, keepalive %d, lease %d, route poll %d, heartbeat %d, recovery %d: each period must be at least a tick and the lease longer than the keepalive",
			c.ID, c.TickMs, c.KeepAliveMs, c.LeaseTTLMs, c.RoutePollMs, c.HeartbeatMs, c.RecoveryMs)
	}
	return c.Policy.Validate()
}

type phase uint8

const (
	phaseClaiming    phase = iota // bumping the route's epoch by compare-and-swap
	phaseLoading                  // loading the latest good snapshot
	phaseOpening                  // opening the log stream at the new epoch (fences older writers)
	phaseReplaying                // reading the log up to the tail seen at open
	phaseOperational              // serving reads and writes
)

var phaseNames = [...]string{"claiming", "loading", "opening", "replaying", "operational"}

func (p phase) String() string { return phaseNames[p] }

// write is a queued write: a client request (with every client waiting for
// its answer) or an internal event (heartbeat, recovery) with no waiter.
type write struct {
	req      Request
	internal EventType // 0 for client requests
	tsMs     int64     // internal events: their timestamp
	policy   Policy    // EvAdoptPolicy: the policy adopted
	value    int64     // EvTerritoryRecovered: the last heartbeat before the recovery
	waiters  []HostID
	lsn      uint64 // set once appended
	data     []byte
}

// primary is a subgraph this territory serves (or is taking over).
type primary struct {
	sg          SubgraphID
	phase       phase
	gen         uint64 // bumped on every (re)claim: results of older calls are ignored
	route       Route  // last route read or written
	claimedFrom uint64 // the route epoch our claim replaced: > 0 means a recovery
	epoch       uint64 // writer epoch once claimed
	routeValue  []byte // the route value our claim wrote: (this territory, epoch)
	tailLSN     uint64 // tail returned by open; replay target
	state       *SubgraphState
	queue       []*write
	inflight    *write
	attempts    int
	byUUID      map[EventUUID]*write // queued or in flight
	claimTries  int
	freshAdopt  bool  // adopted by this incarnation and not yet operational
	idleTicks   int64 // ticks since the last append: an idle subgraph logs heartbeats
	// recovery: after a claim that replaced an epoch > 0, the control plane
	// must commit TerritoryRecovered for this epoch.
	recoveryDue     bool
	recoveryEpoch   uint64 // the epoch whose claim was the recovery: the event's identity
	recoveryBaseMs  int64  // the last heartbeat before the recovery: decay runs from it
	recoveryWaitTks int64
	hbSeq           uint64 // heartbeats of this claim
	// snapshots
	lastSnapLSN   uint64
	snap          *snapJob
	loadTries     int
	loadRejected  int
	fromCache     bool
	loadCands     []SnapshotRecord
	snapRetryTick int64
	snapAfterRec  bool // a background snapshot follows a recovery
}

type callKind uint8

const (
	callBoot callKind = iota
	callClaim
	callRouteGet
	callOpen
	callReplay
	callAppend
	callBarrier
	callLeaseGrant
	callAlivePut
	callKeepAlive
	callRoutePoll
	callLoadRange
	callLoadBlob
	callSnapRecord
	callSnapUpload
	callSnapVerifying
	callSnapReadBack
	callSnapHead
	callSnapCommit
	callCacheWrite
	callCacheSync
	callCacheRead
)

type call struct {
	kind callKind
	sg   SubgraphID
	gen  uint64
	job  uint64 // snapshot job id, for snapshot calls
}

type timerKind uint8

const (
	timerBoot timerKind = iota
	timerClaim
	timerOpen
	timerReplay
	timerAppend
	timerTick
	timerLoad
)

type timer struct {
	kind timerKind
	sg   SubgraphID
	gen  uint64
}

type pendingRead struct {
	from HostID
	req  Request
}

// Territory is the territory host's state machine: it claims the subgraphs the
// routes assign to it, recovers each from its latest good snapshot and its log,
// and serves client operations. A write is acknowledged only after the log
// reports its event committed; a read is answered only after a route check
// that started after the read arrived shows this territory still holds the
// subgraph's epoch (a read barrier), so a deposed primary never serves a stale
// read. It keeps a liveness lease in the coordination store, logs heartbeats,
// announces recoveries to the control plane, and snapshots in the background.
type Territory struct {
	cfg       TerritoryConfig
	nowMs     int64
	out       *Outbox
	nextID    uint64
	calls     map[uint64]call
	timers    map[uint64]timer
	booted    bool
	bootTries int
	subgraphs map[SubgraphID]*primary
	owned     []SubgraphID // sorted keys of subgraphs: iteration order for outputs
	reads     []pendingRead
	barrierID uint64 // call id of the barrier in flight, 0 if none
	covered   []pendingRead
	ticks     int64
	lease     int64 // the liveness lease, 0 while none is held
	leaseBusy bool  // a grant, put or keepalive is in flight
	pollBusy  bool
	genSeq    uint64 // claim generations, never reused: a re-adopted subgraph must not match its predecessor's calls
	snapSeq   uint64 // snapshot uuid sequence
}

// Internal event_uuids: the high word says who made them, so they never
// collide with client ids (sessions are below 1<<62).
const (
	uuidHeartbeat = 1<<63 | 1<<62
	uuidRecovery  = 1<<63 | 1<<61
	uuidPolicy    = 1<<63 | 1<<60
)

// PolicyUUID is the event_uuid of a subgraph's adoption of a policy epoch:
// two territories adopting the same epoch log it once.
func PolicyUUID(sg SubgraphID, epoch uint64) EventUUID {
	return EventUUID{Hi: uuidPolicy | uint64(sg), Lo: epoch}
}

// RecoveryUUID is the event_uuid of the TerritoryRecovered event of a
// subgraph's epoch: one recovery event per claim, however often announced.
func RecoveryUUID(sg SubgraphID, epoch uint64) EventUUID {
	return EventUUID{Hi: uuidRecovery | uint64(sg), Lo: epoch}
}

// NewTerritory returns a territory that boots on its first Start input.
func NewTerritory(cfg TerritoryConfig) (*Territory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Territory{
		cfg: cfg, calls: make(map[uint64]call), timers: make(map[uint64]timer),
		subgraphs: make(map[SubgraphID]*primary),
	}, nil
}

// ID is the territory's host id.
func (t *Territory) ID() HostID { return t.cfg.ID }

// Operational lists the subgraphs this territory serves as operational primary.
func (t *Territory) Operational() []SubgraphID {
	var ids []SubgraphID
	for _, sg := range t.owned {
		if t.subgraphs[sg].phase == phaseOperational {
			ids = append(ids, sg)
		}
	}
	return ids
}

// State returns a subgraph's state and writer epoch, for checkers; nil if not served.
func (t *Territory) State(sg SubgraphID) (*SubgraphState, uint64) {
	p := t.subgraphs[sg]
	if p == nil {
		return nil, 0
	}
	return p.state, p.epoch
}

// Step feeds one input and appends the resulting effects to out.
func (t *Territory) Step(nowMs int64, in Input, out *Outbox) {
	t.nowMs, t.out = nowMs, out
	switch in := in.(type) {
	case Start:
		t.boot()
	case MessageIn:
		switch {
		case in.Msg.Request != nil:
			t.onRequest(in.From, in.Msg.Request)
		case in.Msg.CommitRecovery != nil:
			t.onCommitRecovery(in.Msg.CommitRecovery)
		}
	case CoordResult:
		t.onCoord(in)
	case LogResult:
		t.onLog(in)
	case BlobResult:
		t.onBlob(in)
	case DiskResult:
		t.onDisk(in)
	case TimerFired:
		t.onTimer(in.ID)
	case WatchEvent:
		// Routes are polled; watches are not needed by this state machine.
	default:
		panic(sprintf("territory %d: unknown input", t.cfg.ID))
	}
	t.out = nil
}

func (t *Territory) id() uint64 {
	t.nextID++
	return t.nextID
}

func (t *Territory) coord(c call, req CoordRequest) uint64 {
	id := t.id()
	t.calls[id] = c
	t.out.Add(CoordCall{ReqID: id, Req: req, TimeoutMs: t.cfg.CoordTimeoutMs})
	return id
}

func (t *Territory) log(kind callKind, p *primary, req LogRequest) {
	id := t.id()
	t.calls[id] = call{kind: kind, sg: p.sg, gen: p.gen}
	t.out.Add(LogCall{ReqID: id, Req: req, TimeoutMs: t.cfg.LogTimeoutMs})
}

func (t *Territory) blob(c call, req BlobRequest) {
	id := t.id()
	t.calls[id] = c
	t.out.Add(BlobCall{ReqID: id, Req: req, TimeoutMs: t.cfg.BlobTimeoutMs})
}

func (t *Territory) disk(c call, req DiskRequest) {
	id := t.id()
	t.calls[id] = c
	t.out.Add(DiskCall{ReqID: id, Req: req, TimeoutMs: t.cfg.BlobTimeoutMs})
}

func (t *Territory) after(kind timerKind, sg SubgraphID, gen uint64, attempt int) {
	t.afterMs(kind, sg, gen, backoffMs(t.cfg.RetryBaseMs, t.cfg.RetryCapMs, attempt))
}

func (t *Territory) afterMs(kind timerKind, sg SubgraphID, gen uint64, ms int64) {
	id := t.id()
	t.timers[id] = timer{kind: kind, sg: sg, gen: gen}
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

// ---- boot, adopt and claim ----

func (t *Territory) boot() {
	if t.booted || len(t.calls) > 0 {
		panic(sprintf("territory %d: Start delivered twice to one incarnation", t.cfg.ID))
	}
	t.coord(call{kind: callBoot}, CoordRequest{Kind: CoordRange, Key: RoutesPrefix})
	t.grantLease()
	t.afterMs(timerTick, 0, 0, t.cfg.TickMs)
}

func (t *Territory) onBoot(res CoordResult) {
	if res.Outcome != OutcomeOK {
		t.bootTries++
		t.after(timerBoot, 0, 0, t.bootTries)
		return
	}
	t.booted = true
	t.syncRoutes(res.Resp.KVs)
}

// syncRoutes adopts every subgraph the routes assign to this territory and
// drops every operational one they assign elsewhere.
func (t *Territory) syncRoutes(kvs []KV) {
	for _, kv := range kvs {
		r, err := ParseRoute(kv)
		if err != nil {
			panic(sprintf("territory %d: %v", t.cfg.ID, err)) // routes are written only by the core
		}
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
		panic(sprintf("territory %d: route for subgraph %d beyond %d", t.cfg.ID, r.Subgraph, t.cfg.Subgraphs))
	}
	if _, ok := t.subgraphs[r.Subgraph]; ok {
		return
	}
	// The state starts from the genesis policy: the policy a subgraph runs
	// under is itself a logged event, so every replay agrees on it.
	p := &primary{sg: r.Subgraph, route: r, byUUID: make(map[EventUUID]*write), freshAdopt: true,
		state: NewSubgraphState(r.Subgraph, t.cfg.Subgraphs, GenesisPolicy())}
	t.subgraphs[r.Subgraph] = p
	i, _ := slices.BinarySearch(t.owned, r.Subgraph)
	t.owned = slices.Insert(t.owned, i, r.Subgraph)
	t.out.Add(Observe{Fact: FactAdopted{Territory: t.cfg.ID, Subgraph: r.Subgraph}})
	t.claim(p)
}

// claim bumps the subgraph's epoch in its route by compare-and-swap. Only then
// may the log stream be opened at that epoch, which fences every older writer.
func (t *Territory) claim(p *primary) {
	t.genSeq++
	p.gen = t.genSeq
	p.phase = phaseClaiming
	p.snap = nil           // a snapshot in progress belongs to the old epoch
	if p.inflight != nil { // it goes first again once we are operational
		p.queue = slices.Insert(p.queue, 0, p.inflight)
		p.inflight = nil
	}
	next := p.route.Epoch + 1
	t.coord(call{kind: callClaim, sg: p.sg, gen: p.gen}, PutIfVersion(RouteKey(p.sg), EncodeRoute(t.cfg.ID, next), p.route.ModRevision))
}

func (t *Territory) onClaim(p *primary, res CoordResult) {
	switch {
	case res.Outcome == OutcomeOK && res.Resp.Succeeded:
		p.claimTries = 0
		p.claimedFrom = p.route.Epoch
		p.route = Route{Subgraph: p.sg, Primary: t.cfg.ID, Epoch: p.route.Epoch + 1, ModRevision: res.Resp.Revision}
		p.epoch = p.route.Epoch
		p.routeValue = EncodeRoute(t.cfg.ID, p.epoch)
		if p.state.AppliedLSN == 0 {
			p.phase = phaseLoading
			p.loadTries = 0
			t.loadSnapshot(p)
			return
		}
		// A re-claim keeps the state it has: a prefix of the committed log.
		p.phase = phaseOpening
		t.open(p)
	case res.Outcome == OutcomeOK:
		// Someone changed the route since we read it: read it again.
		t.coord(call{kind: callRouteGet, sg: p.sg, gen: p.gen}, CoordRequest{Kind: CoordGet, Key: RouteKey(p.sg)})
	default:
		// Failed, or a timeout after which the swap may or may not have landed:
		// read the route again after a backoff and claim from what it says.
		t.claimFailed(p)
	}
}

// claimReleaseTries is how many failed claim attempts in a row a territory
// makes before it releases the clients waiting on the subgraph: cut off from
// the coordination store it cannot know whether it is still the primary.
const claimReleaseTries = 8

// claimFailed retries the claim after a backoff, and after claimReleaseTries
// failures answers every queued client "unavailable" (not final: they retry,
// with the same event_uuid, wherever the routes send them). Queued internal
// events are dropped too; each is queued again when it is still due.
func (t *Territory) claimFailed(p *primary) {
	p.claimTries++
	if p.claimTries == claimReleaseTries {
		for _, w := range p.queue {
			for _, c := range w.waiters {
				t.reply(c, w.req.ID, Result{Status: StatusUnavailable})
			}
			delete(p.byUUID, w.req.ID)
		}
		p.queue = p.queue[:0]
	}
	t.after(timerClaim, p.sg, p.gen, p.claimTries)
}

func (t *Territory) onRouteGet(p *primary, res CoordResult) {
	if res.Outcome != OutcomeOK {
		t.claimFailed(p)
		return
	}
	if len(res.Resp.KVs) == 0 {
		t.stepDown(p, stepDownWhy{reason: StepDownRouteDeleted})
		return
	}
	r, err := ParseRoute(res.Resp.KVs[0])
	if err != nil {
		panic(sprintf("territory %d: %v", t.cfg.ID, err))
	}
	if r.Primary != t.cfg.ID {
		t.stepDown(p, stepDownWhy{reason: StepDownRouteMoved, route: r})
		return
	}
	p.route = r
	t.claim(p)
}

func (t *Territory) open(p *primary) {
	t.log(callOpen, p, LogRequest{Kind: LogOpen, Stream: uint32(p.sg), Epoch: p.epoch})
}

func (t *Territory) onOpen(p *primary, res LogResult) {
	switch {
	case res.Outcome == OutcomeOK:
		p.tailLSN = res.Resp.TailLSN
		p.phase = phaseReplaying
		p.attempts = 0
		t.replay(p)
	case res.Err == ErrFenced:
		// A newer epoch holds the stream: find out from the route who it is.
		t.coord(call{kind: callRouteGet, sg: p.sg, gen: p.gen}, CoordRequest{Kind: CoordGet, Key: RouteKey(p.sg)})
	default:
		p.attempts++
		t.after(timerOpen, p.sg, p.gen, p.attempts)
	}
}

// replay reads the log from the applied LSN + 1: the entry at the snapshot's
// LSN is already in the state.
func (t *Territory) replay(p *primary) {
	if p.state.AppliedLSN >= p.tailLSN {
		t.operational(p)
		return
	}
	t.log(callReplay, p, LogRequest{Kind: LogRead, Stream: uint32(p.sg), FromLSN: p.state.AppliedLSN + 1, MaxEntries: t.cfg.ReplayBatch})
}

func (t *Territory) onReplay(p *primary, res LogResult) {
	if res.Outcome != OutcomeOK || len(res.Resp.Entries) == 0 {
		p.attempts++
		t.after(timerReplay, p.sg, p.gen, p.attempts)
		return
	}
	for _, e := range res.Resp.Entries {
		if e.LSN != p.state.AppliedLSN+1 {
			break // the read started before what we already applied, or skipped: ask again
		}
		ev, err := DecodeEvent(e.Data)
		if err != nil || ev.LSN != e.LSN || ev.Subgraph != p.sg {
			// A corrupt entry is never applied; another read may be served by
			// a healthy bookie.
			p.attempts++
			t.after(timerReplay, p.sg, p.gen, p.attempts)
			return
		}
		p.state.Apply(&ev)
	}
	p.attempts = 0
	t.replay(p)
}

func (t *Territory) operational(p *primary) {
	p.phase = phaseOperational
	p.attempts = 0
	p.idleTicks = 0
	t.out.Add(Observe{Fact: FactOperational{Territory: t.cfg.ID, Subgraph: p.sg, Epoch: p.epoch, AppliedLSN: p.state.AppliedLSN}})
	if p.claimedFrom > 0 && p.freshAdopt {
		// Taking over a subgraph that an earlier epoch served (a restart, a
		// lost host) is a recovery: the control plane commits
		// TerritoryRecovered, and a snapshot follows. The downtime runs from
		// the last heartbeat the log holds now, after the replay and before
		// anything new is logged. A re-claim by this same incarnation (after
		// append failures) kept its state and is not a recovery; a recovery
		// still pending then stays pending, under the epoch it began in.
		p.recoveryDue = true
		p.recoveryEpoch = p.epoch
		p.recoveryBaseMs = p.state.LastHeartbeatMs
		p.snapAfterRec = true
	}
	p.freshAdopt = false
	if p.recoveryDue {
		if _, done := p.state.Deduped(RecoveryUUID(p.sg, p.recoveryEpoch)); done {
			p.recoveryDue = false // it committed before a re-claim: the replay applied it
		} else {
			p.recoveryWaitTks = 0
			t.announceRecovery(p)
		}
	}
	if p.state.Policy.Epoch < t.cfg.Policy.Epoch {
		// A new stream (or a newer configured policy): adopt it, first in line.
		w := &write{req: Request{ID: PolicyUUID(p.sg, t.cfg.Policy.Epoch)}, internal: EvAdoptPolicy, policy: t.cfg.Policy}
		if p.byUUID[w.req.ID] == nil {
			p.queue = slices.Insert(p.queue, 0, w)
			p.byUUID[w.req.ID] = w
		}
	}
	// Writes that waited through the recovery may have landed before it: answer
	// those from the dedup table, then append the rest.
	t.pump(p)
	t.maybeSnapshot(p)
}

// stepDownWhy is why a territory stops serving a subgraph: the reason, and for
// the route reasons the route it saw.
type stepDownWhy struct {
	reason  StepDownReason
	barrier bool
	route   Route
}

// stepDown stops serving a subgraph: every waiting client is told to go
// elsewhere; nothing it waits for was acknowledged.
func (t *Territory) stepDown(p *primary, why stepDownWhy) {
	for _, w := range p.queue {
		for _, c := range w.waiters {
			t.reply(c, w.req.ID, Result{Status: StatusWrongTerritory})
		}
	}
	if w := p.inflight; w != nil {
		for _, c := range w.waiters {
			t.reply(c, w.req.ID, Result{Status: StatusWrongTerritory})
		}
	}
	delete(t.subgraphs, p.sg)
	i, _ := slices.BinarySearch(t.owned, p.sg)
	t.owned = slices.Delete(t.owned, i, i+1)
	t.out.Add(Observe{Fact: FactSteppedDown{Territory: t.cfg.ID, Subgraph: p.sg, Epoch: p.epoch,
		Reason: why.reason, Barrier: why.barrier, Primary: why.route.Primary, RouteEpoch: why.route.Epoch}})
}

// ---- client requests ----

func (t *Territory) onRequest(from HostID, req *Request) {
	if err := req.Validate(); err != nil {
		t.reply(from, req.ID, Result{Status: StatusBadRequest})
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
	if r, ok := p.state.Deduped(req.ID); ok {
		t.reply(from, req.ID, r)
		return
	}
	if w := p.byUUID[req.ID]; w != nil {
		if !slices.Contains(w.waiters, from) {
			w.waiters = append(w.waiters, from)
		}
		return
	}
	if len(p.queue) >= t.cfg.QueueLimit {
		t.reply(from, req.ID, Result{Status: StatusBusy})
		return
	}
	t.enqueue(p, &write{req: *req, waiters: []HostID{from}})
}

func (t *Territory) enqueue(p *primary, w *write) {
	p.queue = append(p.queue, w)
	p.byUUID[w.req.ID] = w
	t.pump(p)
}

// pump appends the next queued write, one at a time per subgraph: the result
// of a write depends on every write before it, and the log is the order.
func (t *Territory) pump(p *primary) {
	for p.phase == phaseOperational && p.inflight == nil && len(p.queue) > 0 {
		w := p.queue[0]
		p.queue = p.queue[1:]
		if r, ok := p.state.Deduped(w.req.ID); ok {
			t.finish(p, w, r)
			continue
		}
		ev, err := t.eventOf(p, w)
		if err != nil {
			panic(sprintf("territory %d: %v", t.cfg.ID, err)) // reads never enter the write queue
		}
		w.lsn, w.data = ev.LSN, ev.Encode()
		p.inflight, p.attempts = w, 0
		p.idleTicks = 0
		t.appendInflight(p)
	}
}

// eventOf builds the event of a queued write. Every event carries the writer's
// clock: the fold keeps the latest as the subgraph's last heartbeat, the base
// of decay on recovery.
func (t *Territory) eventOf(p *primary, w *write) (Event, error) {
	lsn := p.state.AppliedLSN + 1
	if w.internal != 0 {
		ts := w.tsMs // a recovery carries the control plane's clock
		if w.internal == EvHeartbeat {
			ts = t.nowMs // a heartbeat re-queued by a re-claim must not carry a stale time
		}
		if w.internal == EvAdoptPolicy {
			ts = t.nowMs
		}
		return Event{LSN: lsn, UUID: w.req.ID, Subgraph: p.sg, Type: w.internal, WriterEpoch: p.epoch, TimestampMs: ts, Policy: w.policy, Recovery: RecoveryBody{LastHeartbeatMs: w.value}}, nil
	}
	ev, err := EventFromRequest(&w.req, p.sg, lsn, p.epoch)
	ev.TimestampMs = t.nowMs
	return ev, err
}

func (t *Territory) appendInflight(p *primary) {
	w := p.inflight
	t.log(callAppend, p, LogRequest{Kind: LogAppend, Stream: uint32(p.sg), Epoch: p.epoch, LSN: w.lsn, Data: w.data})
}

func (t *Territory) finish(p *primary, w *write, r Result) {
	delete(p.byUUID, w.req.ID)
	for _, c := range w.waiters {
		t.reply(c, w.req.ID, r)
	}
	if w.internal == EvTerritoryRecovered && w.req.ID == RecoveryUUID(p.sg, p.recoveryEpoch) {
		p.recoveryDue = false
	}
}

func (t *Territory) onAppend(p *primary, res LogResult) {
	w := p.inflight
	if w == nil {
		panic(sprintf("territory %d subgraph %d: append result with nothing in flight", t.cfg.ID, p.sg))
	}
	switch {
	case res.Outcome == OutcomeOK:
		ev, err := DecodeEvent(w.data)
		if err != nil {
			panic(sprintf("territory %d: own event does not decode: %v", t.cfg.ID, err))
		}
		r, _ := p.state.Apply(&ev)
		p.inflight = nil
		t.out.Add(Observe{Fact: FactCommitted{Territory: t.cfg.ID, Subgraph: p.sg, LSN: w.lsn, UUID: w.req.ID, Epoch: p.epoch, Type: ev.Type, Result: r}})
		t.finish(p, w, r)
		t.pump(p)
		t.maybeSnapshot(p)
	case res.Err == ErrFenced:
		t.stepDown(p, stepDownWhy{reason: StepDownFenced})
	case res.Err == ErrLSNConflict || res.Err == ErrLSNGap:
		// Our view of the log is wrong: recover it from the log itself.
		t.claim(p)
	default:
		// Timeout or unavailable: the append may have landed. Retrying the
		// same LSN with the same bytes is idempotent; after enough failures,
		// re-claim and learn the truth from the log.
		p.attempts++
		if p.attempts >= t.cfg.AppendAttempts {
			t.claim(p)
			return
		}
		t.after(timerAppend, p.sg, p.gen, p.attempts)
	}
}

// ---- reads ----

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

// startBarrier reads every route in one call; it covers all reads that arrived
// before it was sent.
func (t *Territory) startBarrier() {
	if t.barrierID != 0 || len(t.reads) == 0 {
		return
	}
	t.covered, t.reads = t.reads, nil
	t.barrierID = t.coord(call{kind: callBarrier}, CoordRequest{Kind: CoordRange, Key: RoutesPrefix})
}

func (t *Territory) onBarrier(res CoordResult) {
	covered := t.covered
	t.covered, t.barrierID = nil, 0
	for _, rd := range covered {
		sg := SubgraphOf(rd.req.RoutingNeuron(), t.cfg.Subgraphs)
		p := t.subgraphs[sg]
		switch {
		case res.Outcome != OutcomeOK:
			t.reply(rd.from, rd.req.ID, Result{Status: StatusUnavailable})
		case p == nil:
			t.reply(rd.from, rd.req.ID, Result{Status: StatusWrongTerritory})
		case p.phase != phaseOperational:
			t.reply(rd.from, rd.req.ID, Result{Status: StatusUnavailable})
		default:
			t.answerRead(p, rd, res.Resp.KVs)
		}
	}
	t.startBarrier()
}

// answerRead serves a read if the barrier's routes still name this territory
// at the subgraph's epoch. The common case compares the route's bytes with
// what the claim wrote, without parsing.
func (t *Territory) answerRead(p *primary, rd pendingRead, kvs []KV) {
	key := RouteKey(p.sg)
	var kv *KV
	if i := int(p.sg); i < len(kvs) && kvs[i].Key == key {
		kv = &kvs[i] // routes are dense and sorted: the usual position
	} else {
		for i := range kvs {
			if kvs[i].Key == key {
				kv = &kvs[i]
				break
			}
		}
	}
	if kv != nil && string(kv.Value) == string(p.routeValue) {
		t.reply(rd.from, rd.req.ID, p.state.Read(&rd.req))
		return
	}
	if kv == nil {
		t.stepDown(p, stepDownWhy{reason: StepDownRouteDeleted, barrier: true})
		t.reply(rd.from, rd.req.ID, Result{Status: StatusWrongTerritory})
		return
	}
	r, err := ParseRoute(*kv)
	if err == nil && (r.Primary != t.cfg.ID || r.Epoch > p.epoch) {
		t.stepDown(p, stepDownWhy{reason: StepDownRouteMoved, barrier: true, route: r})
		t.reply(rd.from, rd.req.ID, Result{Status: StatusWrongTerritory})
		return
	}
	t.reply(rd.from, rd.req.ID, Result{Status: StatusUnavailable})
}

// ---- results and timers ----

func (t *Territory) onCoord(res CoordResult) {
	c, ok := t.calls[res.ReqID]
	if !ok {
		return // a late duplicate; drivers deliver each result once, but be strict anyway
	}
	delete(t.calls, res.ReqID)
	switch c.kind {
	case callBoot:
		t.onBoot(res)
		return
	case callBarrier:
		t.onBarrier(res)
		return
	case callLeaseGrant, callAlivePut, callKeepAlive:
		t.onLease(c.kind, res)
		return
	case callRoutePoll:
		t.pollBusy = false
		if res.Outcome == OutcomeOK {
			t.syncRoutes(res.Resp.KVs)
		}
		return
	}
	p := t.subgraphs[c.sg]
	if p == nil || p.gen != c.gen {
		return
	}
	switch c.kind {
	case callClaim:
		t.onClaim(p, res)
	case callRouteGet:
		t.onRouteGet(p, res)
	case callLoadRange:
		t.onLoadRange(p, res)
	case callSnapRecord, callSnapVerifying, callSnapHead, callSnapCommit:
		t.onSnapCoord(p, c, res)
	default:
		panic(sprintf("territory %d: coordination result for call kind %d", t.cfg.ID, c.kind))
	}
}

// takeCall removes a finished call and returns the subgraph it was made for,
// if that subgraph is still served by the same claim (ok=false: a stale result).
func (t *Territory) takeCall(reqID uint64) (call, *primary, bool) {
	c, ok := t.calls[reqID]
	if !ok {
		return c, nil, false // a late duplicate; drivers deliver each result once, but be strict anyway
	}
	delete(t.calls, reqID)
	p := t.subgraphs[c.sg]
	if p == nil || p.gen != c.gen {
		return c, nil, false
	}
	return c, p, true
}

func (t *Territory) onLog(res LogResult) {
	c, p, ok := t.takeCall(res.ReqID)
	if !ok {
		return
	}
	switch c.kind {
	case callOpen:
		t.onOpen(p, res)
	case callReplay:
		t.onReplay(p, res)
	case callAppend:
		t.onAppend(p, res)
	default:
		panic(sprintf("territory %d: log result for call kind %d", t.cfg.ID, c.kind))
	}
}

func (t *Territory) onBlob(res BlobResult) {
	c, p, ok := t.takeCall(res.ReqID)
	if !ok {
		return
	}
	switch c.kind {
	case callLoadBlob:
		t.onLoadBlob(p, res)
	case callSnapUpload, callSnapReadBack:
		t.onSnapBlob(p, c, res)
	default:
		panic(sprintf("territory %d: blob result for call kind %d", t.cfg.ID, c.kind))
	}
}

func (t *Territory) onTimer(id uint64) {
	tm, ok := t.timers[id]
	if !ok {
		return
	}
	delete(t.timers, id)
	switch tm.kind {
	case timerBoot:
		t.coord(call{kind: callBoot}, CoordRequest{Kind: CoordRange, Key: RoutesPrefix})
		return
	case timerTick:
		t.tick()
		return
	}
	p := t.subgraphs[tm.sg]
	if p == nil || p.gen != tm.gen {
		return
	}
	switch tm.kind {
	case timerClaim:
		t.coord(call{kind: callRouteGet, sg: p.sg, gen: p.gen}, CoordRequest{Kind: CoordGet, Key: RouteKey(p.sg)})
	case timerOpen:
		t.open(p)
	case timerReplay:
		t.replay(p)
	case timerAppend:
		if p.inflight != nil {
			t.appendInflight(p)
		}
	case timerLoad:
		t.loadSnapshot(p)
	}
}
