package model

import "fmt"

// RandSource is randomness handed to a state machine by its driver (a seeded
// stream in simulation). The core never draws randomness of its own.
type RandSource interface{ Uint64() uint64 }

// ClientConfig configures a client.
type ClientConfig struct {
	ID HostID
	// Session is the high half of every event_uuid this client makes. It must
	// be unique across every client incarnation that ever wrote to the
	// cluster, not just per process: the dedup tables live in the log and
	// outlive processes (production draws it at random; the simulator, whose
	// clusters start empty, uses host id and incarnation).
	Session          uint64
	Subgraphs        uint32
	RequestTimeoutMs int64 // one attempt
	OpDeadlineMs     int64 // the whole operation, retries included; then its outcome is unknown
	BackoffBaseMs    int64
	BackoffCapMs     int64
	CoordTimeoutMs   int64
	MaxInFlight      int
	// WatchRoutes keeps the routing cache fresh from a watch on the routes
	// (as well as from the reads after a failed attempt). The default is off:
	// such a client learns of a moved subgraph only from a wrong-territory
	// answer, a timeout or an unavailable answer, and keeps asking a deposed
	// primary until then. Production clients turn it on (the daemon serves
	// the watch: runtime/daemon.DialClientSession); the simulator runs both.
	WatchRoutes bool
	// Home is the territory next to this client (0: none): its stale reads
	// go there first (client_stale.go).
	Home HostID
}

// DefaultClientConfig fills timeouts and bounds.
func DefaultClientConfig(id HostID, session uint64, subgraphs uint32) ClientConfig {
	return ClientConfig{
		ID: id, Session: session, Subgraphs: subgraphs,
		RequestTimeoutMs: 300, OpDeadlineMs: 5000,
		BackoffBaseMs: 10, BackoffCapMs: 400, CoordTimeoutMs: 500,
		MaxInFlight: 64,
	}
}

// Validate reports a configuration the client cannot run with.
func (c ClientConfig) Validate() error {
	switch {
	case c.ID == 0 || c.Session == 0:
		return fmt.Errorf("client config: id and session must be positive")
	case c.Subgraphs == 0:
		return fmt.Errorf("client %d config: subgraphs must be positive", c.ID)
	case c.RequestTimeoutMs <= 0 || c.OpDeadlineMs < c.RequestTimeoutMs || c.CoordTimeoutMs <= 0:
		return fmt.Errorf("client %d config: request timeout %d, deadline %d, coordination timeout %d", c.ID, c.RequestTimeoutMs, c.OpDeadlineMs, c.CoordTimeoutMs)
	case c.OpDeadlineMs > MaxOpDeadlineMs:
		// A retry later than this could outlive its dedup entry (dedup.go).
		return fmt.Errorf("client %d config: deadline %d ms exceeds %d ms, the longest the dedup window covers", c.ID, c.OpDeadlineMs, MaxOpDeadlineMs)
	case c.BackoffBaseMs <= 0 || c.BackoffCapMs < c.BackoffBaseMs:
		return fmt.Errorf("client %d config: backoff base %d cap %d", c.ID, c.BackoffBaseMs, c.BackoffCapMs)
	case c.MaxInFlight <= 0:
		return fmt.Errorf("client %d config: max in flight must be positive", c.ID)
	}
	return nil
}

// Submit asks the client to run one operation. Req.ID must come from NewID.
type Submit struct{ Req Request }

func (Submit) isInput() {}

type clientOp struct {
	req        Request
	tries      int
	deadlineMs int64
	waiting    bool // for routes
	backingOff bool // a retry timer is set
	atHome     bool // the last attempt went to the home territory (a stale read)
	toPrimary  bool // a stale read the home could not serve: ask the primary
}

type clientTimerKind uint8

const (
	timerAttempt clientTimerKind = iota // an attempt got no answer in time
	timerRetry                          // the backoff before the next attempt is over
	timerRefresh                        // retry a failed route refresh
)

type clientTimer struct {
	kind  clientTimerKind
	op    EventUUID
	tries int
}

// Client is the request/response client: it routes each operation to its
// subgraph's primary through a routing cache read from the coordination store,
// and retries on a wrong-territory answer or a timeout with capped exponential
// backoff and jitter, always with the same event_uuid, until the operation's
// deadline; then it reports the outcome as unknown.
type Client struct {
	cfg          ClientConfig
	rand         RandSource
	nowMs        int64
	out          *Outbox
	seq          uint64
	nextID       uint64
	routes       []HostID // by subgraph; 0 = unknown
	refreshing   bool
	routesLoaded bool   // a route read succeeded at least once
	refreshTimer bool   // a backoff before the next route read is set
	missingTry   int    // route reads in a row that left an operation without a route
	refreshID    uint64 // the route read in flight
	hint         int64  // the subgraph a retry's refresh is for, -1 if none (client_routes.go)
	watchID      uint64 // the route watch registration in flight, 0 if none
	watching     bool   // route changes arrive as WatchEvent inputs
	refreshTry   int
	ops          map[EventUUID]*clientOp
	timers       map[uint64]clientTimer
	waiting      []EventUUID // ops waiting for a route, in arrival order
	floor        []uint64    // by subgraph: the highest LSN a read of it returned (client_stale.go)
}

// NewClient returns a client; rand supplies the backoff jitter.
func NewClient(cfg ClientConfig, rand RandSource) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rand == nil {
		return nil, fmt.Errorf("client %d: nil randomness source", cfg.ID)
	}
	return &Client{cfg: cfg, rand: rand, routes: make([]HostID, cfg.Subgraphs), hint: -1, floor: make([]uint64, cfg.Subgraphs),
		ops: make(map[EventUUID]*clientOp), timers: make(map[uint64]clientTimer)}, nil
}

// NewID returns a fresh event_uuid for a request.
func (c *Client) NewID() EventUUID {
	c.seq++
	return EventUUID{Hi: c.cfg.Session, Lo: c.seq}
}

// RouteOf is the primary the routing cache names for a subgraph (0: unknown).
func (c *Client) RouteOf(sg SubgraphID) HostID {
	if uint32(sg) >= c.cfg.Subgraphs {
		return 0
	}
	return c.routes[sg]
}

// InFlight is the number of unfinished operations.
func (c *Client) InFlight() int { return len(c.ops) }

// Step feeds one input.
func (c *Client) Step(nowMs int64, in Input, out *Outbox) {
	c.nowMs, c.out = nowMs, out
	switch in := in.(type) {
	case Start:
		c.refresh()
	case Submit:
		c.submit(in.Req)
	case MessageIn:
		if in.Msg.Reply != nil {
			c.onReply(in.Msg.Reply)
		}
	case CoordResult:
		switch in.ReqID {
		case c.watchID:
			c.watchID = 0
			c.watching = in.Outcome == OutcomeOK
		case c.refreshID:
			c.onRoutes(in)
		}
	case WatchEvent:
		c.onWatch(in)
	case TimerFired:
		c.onTimer(in.ID)
	case LogResult, BlobResult, DiskResult:
	default:
		panic(fmt.Sprintf("client %d: unknown input", c.cfg.ID))
	}
	c.out = nil
}

func (c *Client) timer(kind clientTimerKind, op EventUUID, tries int, afterMs int64) {
	c.nextID++
	c.timers[c.nextID] = clientTimer{kind: kind, op: op, tries: tries}
	c.out.Add(SetTimer{ID: c.nextID, AfterMs: afterMs})
}

// jitteredBackoffMs is half the capped exponential backoff plus a random part
// of the other half, so clients that failed together do not retry together.
func (c *Client) jitteredBackoffMs(tries int) int64 {
	b := backoffMs(c.cfg.BackoffBaseMs, c.cfg.BackoffCapMs, tries)
	half := b / 2
	return half + int64(c.rand.Uint64()%uint64(b-half+1))
}

func (c *Client) submit(req Request) {
	if req.ID.IsZero() || req.ID.Hi != c.cfg.Session {
		panic(fmt.Sprintf("client %d: request id %s not made by NewID", c.cfg.ID, req.ID))
	}
	if _, dup := c.ops[req.ID]; dup {
		panic(fmt.Sprintf("client %d: request %s submitted twice", c.cfg.ID, req.ID))
	}
	if len(c.ops) >= c.cfg.MaxInFlight {
		// Never sent, so it certainly did not happen.
		c.done(&clientOp{req: req}, Result{Status: StatusBusy}, false)
		return
	}
	if err := req.Validate(); err != nil {
		c.done(&clientOp{req: req}, Result{Status: StatusBadRequest}, false)
		return
	}
	op := &clientOp{req: req, deadlineMs: c.nowMs + c.cfg.OpDeadlineMs}
	c.ops[req.ID] = op
	c.send(op)
}

func (c *Client) send(op *clientOp) {
	sg := SubgraphOf(op.req.RoutingNeuron(), c.cfg.Subgraphs)
	to := c.routes[sg]
	op.atHome = op.req.Stale && !op.toPrimary && c.cfg.Home != 0
	if op.atHome {
		to = c.cfg.Home
	}
	if to == 0 {
		if c.nowMs >= op.deadlineMs {
			c.done(op, Result{}, true) // unknown is always sound, even for an operation never sent
			return
		}
		if !op.waiting {
			op.waiting = true
			c.waiting = append(c.waiting, op.req.ID)
		}
		if !c.routesLoaded {
			c.refresh()
		} else if !c.refreshTimer {
			// The routes were read and still name nobody: ask again after a
			// backoff, not in a tight loop.
			c.missingTry++
			c.refreshTimer = true
			c.timer(timerRefresh, EventUUID{}, 0, c.jitteredBackoffMs(c.missingTry))
		}
		return
	}
	op.tries++
	op.backingOff = false
	req := op.req
	if req.Stale {
		req.MinLSN = max(req.MinLSN, c.floor[sg]) // a caller may ask for a floor of its own (a previous process's)
	}
	c.out.Add(Send{To: to, Msg: &Message{Request: &req}})
	c.timer(timerAttempt, op.req.ID, op.tries, c.cfg.RequestTimeoutMs)
}

func (c *Client) onReply(r *Reply) {
	op := c.ops[r.ID]
	if op == nil {
		return // an answer to an attempt of an operation already finished
	}
	if r.Result.Status.Final() && c.readAnswered(op, r.Result) {
		c.done(op, r.Result, false)
		return
	}
	if op.backingOff {
		return // a second non-final answer (a duplicate, or an older attempt's)
	}
	if r.Result.Status == StatusWrongTerritory && !op.atHome {
		c.routes[SubgraphOf(op.req.RoutingNeuron(), c.cfg.Subgraphs)] = 0
	}
	c.retry(op)
}

func (c *Client) retry(op *clientOp) {
	if c.nowMs >= op.deadlineMs {
		c.done(op, Result{}, true)
		return
	}
	if op.atHome {
		op.toPrimary = true // the home could not serve it: no backoff, the primary is another host
		c.send(op)
		return
	}
	c.refreshFor(SubgraphOf(op.req.RoutingNeuron(), c.cfg.Subgraphs))
	op.backingOff = true
	c.timer(timerRetry, op.req.ID, op.tries, c.jitteredBackoffMs(op.tries))
}

func (c *Client) done(op *clientOp, r Result, unknown bool) {
	delete(c.ops, op.req.ID)
	c.out.Add(Observe{Fact: FactOpDone{Client: c.cfg.ID, Request: op.req, Result: r, Unknown: unknown, Tries: op.tries}})
}

func (c *Client) refresh() {
	if c.refreshing {
		return
	}
	c.refreshing = true
	c.nextID++ // shares the id space with timers; the driver answers each call exactly once
	c.refreshID = c.nextID
	c.out.Add(CoordCall{ReqID: c.nextID, Req: c.routeRead(), TimeoutMs: c.cfg.CoordTimeoutMs})
	if c.cfg.WatchRoutes && !c.watching && c.watchID == 0 {
		c.watch() // a lost registration is retried with the next refresh
	}
}

// watch asks for route changes, so the routing cache is invalidated when a
// subgraph moves instead of on the next wrong-territory answer.
func (c *Client) watch() {
	if c.watchID != 0 {
		return
	}
	c.nextID++
	c.watchID = c.nextID
	c.out.Add(CoordCall{ReqID: c.nextID, Req: CoordRequest{Kind: CoordWatch, Key: RoutesPrefix}, TimeoutMs: c.cfg.CoordTimeoutMs})
}

func (c *Client) onWatch(ev WatchEvent) {
	if ev.Deleted {
		if sg, err := ParseRouteKey(ev.KV.Key); err == nil && uint32(sg) < c.cfg.Subgraphs {
			c.routes[sg] = 0
		}
		return
	}
	r, ok := c.usableRoute(ev.KV)
	if !ok {
		// The cached primary may be stale: forget it, and route afresh.
		if sg, err := ParseRouteKey(ev.KV.Key); err == nil && uint32(sg) < c.cfg.Subgraphs {
			c.routes[sg] = 0
		}
		return
	}
	c.routes[r.Subgraph] = r.Primary
}

// usableRoute parses a route the client read; a value the core did not
// write is reported (FactBadCoordValue) and treated as no route.
func (c *Client) usableRoute(kv KV) (Route, bool) {
	r, err := ParseRoute(kv)
	if err == nil && uint32(r.Subgraph) >= c.cfg.Subgraphs {
		err = fmt.Errorf("route %s: subgraph %d beyond the %d of the cluster", kv.Key, r.Subgraph, c.cfg.Subgraphs)
	}
	if err != nil {
		c.out.Add(badCoordValue(c.cfg.ID, kv.Key, err))
		return Route{}, false
	}
	return r, true
}

func (c *Client) onRoutes(res CoordResult) {
	if !c.refreshing {
		return
	}
	c.refreshing = false
	if res.Outcome != OutcomeOK {
		c.refreshTry++
		c.expireWaiting()
		if len(c.waiting) > 0 {
			c.timer(timerRefresh, EventUUID{}, 0, c.jitteredBackoffMs(c.refreshTry))
		}
		return
	}
	c.refreshTry = 0
	c.routesLoaded = true
	for _, kv := range res.Resp.KVs {
		r, ok := c.usableRoute(kv)
		if !ok {
			continue // a route we cannot use is as good as an unknown one
		}
		c.routes[r.Subgraph] = r.Primary
	}
	waiting := c.waiting
	c.waiting = nil
	for _, id := range waiting {
		if op := c.ops[id]; op != nil {
			op.waiting = false
			c.send(op)
		}
	}
	if len(c.waiting) == 0 {
		c.missingTry = 0
	}
}

func (c *Client) onTimer(id uint64) {
	tm, ok := c.timers[id]
	if !ok {
		return
	}
	delete(c.timers, id)
	if tm.kind == timerRefresh {
		c.refreshTimer = false
		c.expireWaiting()
		if len(c.waiting) > 0 {
			c.refresh()
		}
		return
	}
	op := c.ops[tm.op]
	if op == nil || op.tries != tm.tries {
		return // the operation finished or moved on to another attempt
	}
	switch tm.kind {
	case timerAttempt:
		c.retry(op)
	case timerRetry:
		if c.nowMs >= op.deadlineMs {
			c.done(op, Result{}, true)
			return
		}
		c.send(op)
	}
}

// expireWaiting gives up on operations that waited for a route past their deadline.
func (c *Client) expireWaiting() {
	kept := c.waiting[:0]
	for _, id := range c.waiting {
		op := c.ops[id]
		switch {
		case op == nil:
		case c.nowMs >= op.deadlineMs:
			c.done(op, Result{}, true) // unknown is always sound, even for an operation never sent
		default:
			kept = append(kept, id)
		}
	}
	clear(c.waiting[len(kept):])
	c.waiting = kept
}
