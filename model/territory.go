package model

import "fmt"

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
	RoutePollMs    int64 // how often routes are re-read to adopt or drop subgraphs, without a watch
	// RouteResyncMs: with a route watch registered, the full re-read is only
	// the fallback for lost watch events, this often.
	RouteResyncMs int64
	HeartbeatMs   int64 // an idle subgraph logs a heartbeat this often
	RecoveryMs    int64 // how often an unacknowledged recovery is announced again
	LoadAttempts  int   // snapshot-load attempts before replaying the whole log
	SagaTimeoutMs int64 // a saga pre has no answer for after this long is compensated
	SagaRetryMs   int64 // the base period of a saga's message retries
	SagaLimit     int   // open sagas per subgraph (reservations); beyond, connects are busy
	Proxy         bool  // host a supernode proxy: consume the egress stream (proxy_component.go)
	// A migration's image travels in chunks of MigChunkBytes, MigChunkWindow
	// unacknowledged at a time (migration_source.go).
	MigChunkBytes  int
	MigChunkWindow int
}

// DefaultTerritoryConfig fills the timeouts and bounds.
func DefaultTerritoryConfig(id HostID, subgraphs uint32) TerritoryConfig {
	return TerritoryConfig{
		ID: id, Subgraphs: subgraphs, Policy: DefaultPolicy(),
		CoordTimeoutMs: 500, LogTimeoutMs: 1000, BlobTimeoutMs: 2000,
		QueueLimit: 64, ReadQueueLimit: 1024,
		RetryBaseMs: 10, RetryCapMs: 500,
		AppendAttempts: 6, ReplayBatch: 256,
		TickMs: 250, LeaseTTLMs: 2000, KeepAliveMs: 500, RoutePollMs: 500, RouteResyncMs: 4000,
		HeartbeatMs: 1000, RecoveryMs: 500, LoadAttempts: 3,
		SagaTimeoutMs: 3000, SagaRetryMs: 250, SagaLimit: 64,
		MigChunkBytes: 64 << 10, MigChunkWindow: 8,
	}
}

// Validate reports a configuration the territory cannot run with.
func (c TerritoryConfig) Validate() error {
	switch {
	case c.ID == 0:
		return fmt.Errorf("territory config: id must be positive")
	case c.Subgraphs == 0:
		return fmt.Errorf("territory %d config: subgraphs must be positive", c.ID)
	case c.CoordTimeoutMs <= 0 || c.LogTimeoutMs <= 0 || c.BlobTimeoutMs <= 0:
		return fmt.Errorf("territory %d config: timeouts must be positive", c.ID)
	case c.QueueLimit <= 0 || c.ReadQueueLimit <= 0 || c.AppendAttempts <= 0 || c.ReplayBatch <= 0 || c.LoadAttempts <= 0:
		return fmt.Errorf("territory %d config: queue limits, attempts and batch must be positive", c.ID)
	case c.MigChunkBytes <= 0 || c.MigChunkWindow <= 0:
		return fmt.Errorf("territory %d config: migration chunk %d bytes, window %d must be positive", c.ID, c.MigChunkBytes, c.MigChunkWindow)
	case c.SagaTimeoutMs <= 0 || c.SagaRetryMs <= 0 || c.SagaLimit <= 0:
		return fmt.Errorf("territory %d config: saga timeout %d, retry %d and limit %d must be positive", c.ID, c.SagaTimeoutMs, c.SagaRetryMs, c.SagaLimit)
	case c.RetryBaseMs <= 0 || c.RetryCapMs < c.RetryBaseMs:
		return fmt.Errorf("territory %d config: retry backoff base %d cap %d", c.ID, c.RetryBaseMs, c.RetryCapMs)
	case c.TickMs <= 0 || c.KeepAliveMs < c.TickMs || c.LeaseTTLMs <= c.KeepAliveMs || c.RoutePollMs < c.TickMs || c.RouteResyncMs < c.RoutePollMs || c.HeartbeatMs < c.TickMs || c.RecoveryMs < c.TickMs:
		return fmt.Errorf("territory %d config: tick %d, keepalive %d, lease %d, route poll %d, resync %d, heartbeat %d, recovery %d: each period must be at least a tick and the lease longer than the keepalive",
			c.ID, c.TickMs, c.KeepAliveMs, c.LeaseTTLMs, c.RoutePollMs, c.RouteResyncMs, c.HeartbeatMs, c.RecoveryMs)
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

// primary is a subgraph this territory serves (or is taking over): what every
// component shares. Each component keeps its own state beside it.
type primary struct {
	sg         SubgraphID
	phase      phase
	gen        uint64 // bumped on every (re)claim: results of older calls are ignored
	route      Route  // last route read or written
	epoch      uint64 // writer epoch once claimed
	routeValue []byte // the route value our claim wrote: (this territory, epoch)
	state      *SubgraphState
	snapLSN    uint64 // the newest snapshot known committed (loaded or written)
}

type pendingRead struct {
	from HostID
	req  Request
	saga *SagaMsg // a saga query waiting for the barrier (req is then unused)
	sg   SubgraphID
}

// Territory is the territory host's state machine: it claims the subgraphs the
// routes assign to it, recovers each from its latest good snapshot and its log,
// and serves client operations. A write is acknowledged only after the log
// reports its event committed; a read is answered only after a route check
// that started after the read arrived shows this territory still holds the
// subgraph's epoch (a read barrier), so a deposed primary never serves a stale
// read. It keeps a liveness lease in the coordination store, logs heartbeats,
// announces recoveries to the control plane, and snapshots in the background.
// The protocols are components (component.go).
type Territory struct {
	cfg       TerritoryConfig
	nowMs     int64
	out       *Outbox
	nextID    uint64
	pending   map[uint64]call // the router: calls and timers in flight
	comps     []component     // comps[0] is the host
	booted    bool
	bootTries int
	subgraphs map[SubgraphID]*primary
	owned     []SubgraphID // sorted keys of subgraphs: iteration order for outputs
	reads     []pendingRead
	barrierID uint64 // call id of the barrier in flight, 0 if none
	covered   []pendingRead
	// The barrier in flight's subgraphs (territory_barrier.go), and the
	// route gets of barriers whose compares failed.
	barrierSet  map[SubgraphID]int // index into barrierSubs
	barrierSubs []barrierSub
	rechecks    map[uint64]recheck
	recheckSeq  uint64
	watching    bool // route changes arrive from a watch; polls are the fallback
	watchBusy   bool
	routeRev    []int64 // by subgraph: the route revision syncRoutes last acted on (territory_watch.go)
	ticks       int64
	lease       int64 // the liveness lease, 0 while none is held
	leaseBusy   bool  // a grant, put or keepalive is in flight
	pollBusy    bool
	genSeq      uint64   // claim generations, never reused: a re-adopted subgraph must not match its predecessor's calls
	peers       []HostID // by subgraph: the primary the routes last named (0: unknown), for saga messages

	claims  *claimer
	loader  *loader
	writes  *writer
	sagas   *sagas
	proxy   *proxy // nil unless cfg.Proxy
	migSrc  *migSource
	migDest *migDest
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
	t := &Territory{cfg: cfg, pending: make(map[uint64]call), subgraphs: make(map[SubgraphID]*primary), peers: make([]HostID, cfg.Subgraphs)}
	t.register(hostPart{t})
	// Registration order is hook order: a recovery is announced before the
	// queued writes are pumped, and a snapshot is considered last.
	t.claims = newClaimer(t)
	t.loader = newLoader(t)
	newRecoverer(t)
	t.writes = newWriter(t)
	t.sagas = newSagas(t)
	newSnapshotter(t)
	t.migSrc = newMigSource(t)
	t.migDest = newMigDest(t)
	if cfg.Proxy {
		t.proxy = newProxy(t)
	}
	return t, nil
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
		t.onMessage(in.From, in.Msg)
	case CoordResult:
		t.deliver(in.ReqID, &result{Outcome: in.Outcome, Err: in.Err, Coord: in.Resp})
	case LogResult:
		t.deliver(in.ReqID, &result{Outcome: in.Outcome, Err: in.Err, Log: in.Resp})
	case BlobResult:
		t.deliver(in.ReqID, &result{Outcome: in.Outcome, Err: in.Err, Blob: in.Resp})
	case DiskResult:
		t.deliver(in.ReqID, &result{Outcome: in.Outcome, Err: in.Err, Disk: in.Resp})
	case TimerFired:
		t.fire(in.ID)
	case WatchEvent:
		t.onWatch(in)
	default:
		panic(fmt.Sprintf("territory %d: unknown input", t.cfg.ID))
	}
	t.out = nil
}
