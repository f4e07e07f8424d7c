package model

import (
	"fmt"
	"slices"
)

// migrator is the manager's migration orchestrator (DESIGN.md section 5.5).
// It keeps each migration's record under MigrationKey(sg) and moves it only
// by compare-and-swap on the record's revision (MigrationCAS), one call at a
// time, so that what it does is always what the store says:
//
//	PENDING            -> SNAPSHOT_STREAMING, and MigStart to T_src
//	SNAPSHOT_STREAMING -> ROUTE_FLIPPED on T_src's MigReady: one transaction
//	                      compares the route's revision T_src holds its
//	                      writes under and the record's, writes the route
//	                      (T_dest, epoch + 1) and the record (snapshot_lsn)
//	                   -> FAILED if T_src or T_dest is lost or the phase
//	                      outlasts MigSnapshotTimeoutMs (MigAbort to T_src)
//	ROUTE_FLIPPED      -> CATCHUP_STREAMING, and MigFlipped to both
//	CATCHUP_STREAMING  -> SYNC_COMPLETE on T_dest's MigLive
//	                   -> FAILED if T_dest is lost or the phase outlasts
//	                      MigCatchupTimeoutMs; while T_src is lost, or the
//	                      catch-up has stalled for MigCatchupStallMs, it
//	                      sends T_dest MigReplay from acked_lsn + 1
//	SYNC_COMPLETE      -> COMMITTED -> deleted
//	FAILED             -> PENDING after the retry backoff, with a new
//	                      migration epoch, from the route's current primary
//	                      to another live territory; deleted after
//	                      MigrationMaxAttempts
//
// A lost call, a failed compare or a timeout makes it read every record
// again; a restarted manager starts from the records. Migrations start every
// MigrateEveryMs (a subgraph and destination drawn from MigrateSeed) and on
// MigRequest messages. While a subgraph's migration is in flight the
// reassigner leaves its route alone (holds).
type migrator struct {
	cfg      ManagerConfig
	det      *failureDetector
	busy     bool
	loaded   bool
	recs     map[SubgraphID]*MigrationRecord // looked up; order is sgs
	sgs      []SubgraphID                    // sorted keys of recs
	since    map[SubgraphID]int64            // tick the record entered its state (or was read)
	ready    map[SubgraphID]MigMsg           // T_src's MigReady, awaiting the flip
	live     map[SubgraphID]uint64           // T_dest's MigLive: the epoch
	flipped  map[SubgraphID]KV               // the route as the flip wrote it
	requests []migReq                        // MigRequests queued (manager_migrate_request.go)
	asking   migReq                          // the request the start in flight serves (by 0: none)
	retryAsk migReq                          // the request whose record write is in flight
	answers  map[HostID]MigMsg               // the answer each recent requester got; looked up only
	answered []HostID                        // answers' keys, oldest first
	seq      uint64
	after    func(m *Manager, rec MigrationRecord) // what a successful call does next
	pending  MigrationRecord                       // the record the call in flight writes
}

const (
	migCallRange uint8 = iota
	migCallWrite       // a record CAS, the flip, or a delete
	migCallRoute       // read a route before a start or a retry
)

func newMigrator(cfg ManagerConfig, det *failureDetector) *migrator {
	return &migrator{cfg: cfg, det: det, recs: map[SubgraphID]*MigrationRecord{}, since: map[SubgraphID]int64{},
		ready: map[SubgraphID]MigMsg{}, live: map[SubgraphID]uint64{}, flipped: map[SubgraphID]KV{}, answers: map[HostID]MigMsg{}}
}

// holds reports a subgraph whose migration is in flight.
func (g *migrator) holds(sg SubgraphID) bool {
	r := g.recs[sg]
	return r != nil && r.State != MigFailed && r.State != MigCommitted
}

func (g *migrator) lost(h HostID) bool { return g.det.lost(h) }

func (g *migrator) send(m *Manager, to HostID, msg MigMsg) {
	m.out.Add(Send{To: to, Msg: &Message{Migration: &msg}})
}

func (g *migrator) ageMs(m *Manager, sg SubgraphID) int64 {
	return (m.ticks - g.since[sg]) * g.cfg.TickMs
}

func (g *migrator) onMessage(m *Manager, in MessageIn) {
	msg := in.Msg.Migration
	if msg == nil {
		return
	}
	switch msg.Kind {
	case MigReady:
		if r := g.recs[msg.Subgraph]; r != nil && r.Epoch == msg.Epoch && r.State == MigSnapshotStreaming {
			if _, again := g.ready[msg.Subgraph]; !again {
				m.out.Add(Observe{Fact: FactMigrationSignal{Manager: m.cfg.ID, Subgraph: msg.Subgraph, Epoch: msg.Epoch}})
			}
			g.ready[msg.Subgraph] = *msg
			g.step(m)
		}
	case MigLive:
		if r := g.recs[msg.Subgraph]; r != nil && r.Epoch == msg.Epoch {
			if g.live[msg.Subgraph] != msg.Epoch {
				m.out.Add(Observe{Fact: FactMigrationSignal{Manager: m.cfg.ID, Subgraph: msg.Subgraph, Epoch: msg.Epoch, Live: true}})
			}
			g.live[msg.Subgraph] = msg.Epoch
			g.step(m)
		}
	case MigRequest:
		g.request(m, in.From, *msg)
	}
}

func (g *migrator) tick(m *Manager) {
	if g.busy {
		return
	}
	if !g.loaded {
		g.busy = true
		m.coord(mcall{part: g, tag: migCallRange}, CoordRequest{Kind: CoordRange, Key: MigrationsPrefix})
		return
	}
	for _, sg := range g.sgs {
		g.resend(m, g.recs[sg])
	}
	g.step(m)
	if g.busy {
		return
	}
	if len(g.requests) > 0 {
		q := g.requests[0]
		g.requests = g.requests[1:]
		g.startFor(m, q)
		return
	}
	if g.cfg.MigrateUntilMs > 0 && m.nowMs > g.cfg.MigrateUntilMs {
		return
	}
	if every := g.cfg.MigrateEveryMs / g.cfg.TickMs; g.cfg.MigrateEveryMs > 0 && m.ticks%max(1, every) == 0 && len(g.sgs) < max(1, g.cfg.MigrateMax) {
		g.seq++
		h := mix64(g.cfg.MigrateSeed ^ g.seq*0x9e3779b97f4a7c15)
		g.start(m, SubgraphID(h%uint64(g.cfg.Subgraphs)), 0)
	}
}

// pickDest is a live territory other than from (0: none), drawn by h.
func (g *migrator) pickDest(from HostID, h uint64) HostID {
	var c []HostID
	for _, id := range g.det.live {
		if id != from && !g.lost(id) {
			c = append(c, id)
		}
	}
	if len(c) == 0 {
		return 0
	}
	return c[h%uint64(len(c))]
}

// start reads the route of sg, to create its migration (to 0: drawn).
func (g *migrator) start(m *Manager, sg SubgraphID, to HostID) {
	if g.recs[sg] != nil {
		return
	}
	g.asking = migReq{}
	g.busy = true
	g.pending = MigrationRecord{Subgraph: sg, To: to}
	m.coord(mcall{part: g, tag: migCallRoute, key: "start"}, CoordRequest{Kind: CoordGet, Key: RouteKey(sg)})
}

// resend repeats the message of a record's phase: every step is idempotent.
func (g *migrator) resend(m *Manager, r *MigrationRecord) {
	switch r.State {
	case MigSnapshotStreaming:
		if m.ticks%2 == 0 {
			g.send(m, r.From, MigMsg{Kind: MigStart, Subgraph: r.Subgraph, Epoch: r.Epoch, From: r.From, To: r.To})
		}
	case MigCatchupStreaming:
		flip := MigMsg{Kind: MigFlipped, Subgraph: r.Subgraph, Epoch: r.Epoch, From: r.From, To: r.To, Route: g.flipped[r.Subgraph]}
		g.send(m, r.From, flip)
		g.send(m, r.To, flip)
		if g.lost(r.From) || g.ageMs(m, r.Subgraph) >= g.cfg.MigCatchupStallMs {
			g.send(m, r.To, MigMsg{Kind: MigReplay, Subgraph: r.Subgraph, Epoch: r.Epoch, From: r.From, To: r.To, FromLSN: r.AckedLSN + 1})
		}
	}
}

// step starts the next transition a record is due, at most one call at a time.
func (g *migrator) step(m *Manager) {
	for _, sg := range g.sgs {
		if g.busy {
			return
		}
		g.act(m, *g.recs[sg])
	}
}

func (g *migrator) act(m *Manager, r MigrationRecord) {
	age := g.ageMs(m, r.Subgraph)
	next := r
	next.SinceMs = m.nowMs
	switch r.State {
	case MigPending:
		next.State = MigSnapshotStreaming
		g.cas(m, r, next, func(m *Manager, r MigrationRecord) {
			g.send(m, r.From, MigMsg{Kind: MigStart, Subgraph: r.Subgraph, Epoch: r.Epoch, From: r.From, To: r.To})
		})
	case MigSnapshotStreaming:
		if rd, ok := g.ready[r.Subgraph]; ok && rd.Epoch == r.Epoch && !g.lost(r.To) {
			g.flip(m, r, rd)
			return
		}
		if g.lost(r.To) || g.lost(r.From) || age >= g.cfg.MigSnapshotTimeoutMs {
			next.State = MigFailed
			g.cas(m, r, next, func(m *Manager, r MigrationRecord) {
				g.send(m, r.From, MigMsg{Kind: MigAbort, Subgraph: r.Subgraph, Epoch: r.Epoch, From: r.From, To: r.To})
			})
		}
	case MigRouteFlipped:
		next.State = MigCatchupStreaming
		g.cas(m, r, next, func(m *Manager, r MigrationRecord) { g.resend(m, &r) })
	case MigCatchupStreaming:
		switch {
		case g.live[r.Subgraph] == r.Epoch:
			next.State = MigSyncComplete
			g.cas(m, r, next, nil)
		case g.lost(r.To) || age >= g.cfg.MigCatchupTimeoutMs:
			next.State = MigFailed
			g.cas(m, r, next, nil)
		}
	case MigSyncComplete:
		next.State = MigCommitted
		g.cas(m, r, next, nil)
	case MigCommitted:
		g.remove(m, r)
	case MigFailed:
		if age < MigrationRetryMs(g.cfg.MigRetryBaseMs, g.cfg.MigRetryCapMs, r.Attempts) {
			return
		}
		if !r.RetriesLeft() {
			g.remove(m, r) // abandoned
			return
		}
		g.busy = true
		g.pending = r
		m.coord(mcall{part: g, tag: migCallRoute, key: "retry"}, CoordRequest{Kind: CoordGet, Key: RouteKey(r.Subgraph)})
	}
}

func (g *migrator) cas(m *Manager, r, next MigrationRecord, after func(*Manager, MigrationRecord)) {
	req, err := MigrationCAS(r, next)
	if err != nil {
		panic(fmt.Sprintf("manager %d: %v", m.cfg.ID, err)) // the migrator only takes the diagram's edges
	}
	g.write(m, next, req, after)
}

func (g *migrator) write(m *Manager, next MigrationRecord, req CoordRequest, after func(*Manager, MigrationRecord)) {
	g.busy, g.pending, g.after = true, next, after
	m.coord(mcall{part: g, tag: migCallWrite}, req)
}

// flip is the atomic route flip: one transaction that holds only if the
// route is still at the revision T_src holds its writes under and the record
// is unchanged; it names T_dest at the next epoch and records ROUTE_FLIPPED.
func (g *migrator) flip(m *Manager, r MigrationRecord, rd MigMsg) {
	next := r
	next.State, next.SinceMs, next.SnapshotLSN, next.AckedLSN, next.TargetLSN = MigRouteFlipped, m.nowMs, rd.SnapLSN, rd.SnapLSN, rd.Target
	if _, err := MigrationCAS(r, next); err != nil {
		panic(fmt.Sprintf("manager %d: %v", m.cfg.ID, err))
	}
	route := EncodeRoute(r.To, rd.RouteEpoch+1)
	req := CoordRequest{Kind: CoordTxn,
		Compares: []Compare{{Key: RouteKey(r.Subgraph), ModRevision: rd.RouteRev}, {Key: MigrationKey(r.Subgraph), ModRevision: r.ModRevision}},
		Then: []TxnOp{
			{Kind: TxnPut, Key: RouteKey(r.Subgraph), Value: route},
			{Kind: TxnPut, Key: MigrationKey(r.Subgraph), Value: next.Encode()},
		}}
	delete(g.ready, r.Subgraph)
	g.write(m, next, req, func(m *Manager, n MigrationRecord) {
		g.flipped[n.Subgraph] = KV{Key: RouteKey(n.Subgraph), Value: route, ModRevision: n.ModRevision}
	})
}

func (g *migrator) remove(m *Manager, r MigrationRecord) {
	req := CoordRequest{Kind: CoordTxn, Compares: []Compare{{Key: MigrationKey(r.Subgraph), ModRevision: r.ModRevision}},
		Then: []TxnOp{{Kind: TxnDelete, Key: MigrationKey(r.Subgraph)}}}
	next := r
	next.State = 0
	g.write(m, next, req, nil)
}

func (g *migrator) onBlob(*Manager, mcall, BlobResult) {}

func (g *migrator) onCoord(m *Manager, c mcall, res CoordResult) {
	g.busy = false
	ok := res.Outcome == OutcomeOK
	switch c.tag {
	case migCallRange:
		if ok {
			g.load(m, res.Resp.KVs)
		}
	case migCallWrite:
		if !ok || !res.Resp.Succeeded {
			g.loaded = false // read every record again before the next step
			g.writeFailed()
			return
		}
		next := g.pending
		next.ModRevision = res.Resp.Revision
		g.set(m, next)
		if g.after != nil {
			g.after(m, next)
		}
		g.after = nil
		g.step(m)
	case migCallRoute:
		if ok {
			g.onRoute(m, c.key, res.Resp)
		} else if c.key == "start" && g.asking.by != 0 {
			g.requests = slices.Insert(g.requests, 0, g.asking) // read the route again
			g.asking = migReq{}
		}
	}
}

// load replaces the cache with the records as read.
func (g *migrator) load(m *Manager, kvs []KV) {
	g.loaded = true
	old := g.recs
	g.recs, g.sgs = map[SubgraphID]*MigrationRecord{}, nil
	for _, kv := range kvs {
		r, err := ParseMigrationRecord(kv)
		if err != nil {
			m.badValue(kv.Key, err)
			continue
		}
		if o := old[r.Subgraph]; o == nil || o.State != r.State || o.Epoch != r.Epoch {
			g.since[r.Subgraph] = m.ticks
		}
		g.recs[r.Subgraph] = &r
		g.sgs = append(g.sgs, r.Subgraph)
	}
	slices.Sort(g.sgs)
	for _, sg := range g.sgs {
		m.out.Add(Observe{Fact: FactMigrationRecord{Manager: m.cfg.ID, Record: *g.recs[sg], Loaded: true}})
	}
}

// set records a record as written (State 0: deleted).
func (g *migrator) set(m *Manager, r MigrationRecord) {
	var prev MigrationState
	if o := g.recs[r.Subgraph]; o != nil {
		prev = o.State
	}
	m.out.Add(Observe{Fact: FactMigrationRecord{Manager: m.cfg.ID, Record: r, Prev: prev}})
	i, found := slices.BinarySearch(g.sgs, r.Subgraph)
	if r.State == 0 {
		if found {
			g.sgs = slices.Delete(g.sgs, i, i+1)
		}
		delete(g.recs, r.Subgraph)
		delete(g.since, r.Subgraph)
		delete(g.ready, r.Subgraph)
		delete(g.live, r.Subgraph)
		delete(g.flipped, r.Subgraph)
		return
	}
	if !found {
		g.sgs = slices.Insert(g.sgs, i, r.Subgraph)
	}
	if o := g.recs[r.Subgraph]; o == nil || o.State != r.State {
		g.since[r.Subgraph] = m.ticks
	}
	g.recs[r.Subgraph] = &r
}
