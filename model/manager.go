package model

import (
	"fmt"
	"slices"
)

// ManagerConfig configures the control-plane role.
type ManagerConfig struct {
	ID             HostID
	Subgraphs      uint32
	Territories    []HostID
	CoordTimeoutMs int64
	BlobTimeoutMs  int64
	TickMs         int64
	HostLossMs     int64 // a territory without its alive key this long is lost: its subgraphs move
	ReconcileMs    int64 // period of the reconciliation controller
	StaleUploadMs  int64 // an UPLOADING/VERIFYING record unchanged this long is expired
	GraceMs        int64 // a SUPERSEDED snapshot's blob is kept this long
	OrphanMs       int64 // a blob without a record is deleted after this long
	MaxDeletes     int   // deletions per reconciliation pass
	// Migrations (manager_migrator.go). MigrateEveryMs 0: none start on
	// their own (MigRequest messages still do).
	MigrationsOff        bool // no migrator at all (tests of the other parts)
	MigrateEveryMs       int64
	MigrateUntilMs       int64  // no migration starts on its own once the manager's clock is past this (0: no end)
	MigrateMax           int    // migrations in flight at once
	MigrateSeed          uint64 // the draws of subgraphs and destinations
	MigSnapshotTimeoutMs int64  // PENDING..SNAPSHOT_STREAMING longer than this: FAILED
	MigCatchupStallMs    int64  // CATCHUP_STREAMING this long: T_dest is told to replay from the log
	MigCatchupTimeoutMs  int64  // CATCHUP_STREAMING longer than this: FAILED
	MigRetryBaseMs       int64  // FAILED -> PENDING after base << (attempts - 1), capped
	MigRetryCapMs        int64
}

// DefaultManagerConfig fills the periods and bounds.
func DefaultManagerConfig(id HostID, subgraphs uint32, territories []HostID) ManagerConfig {
	return ManagerConfig{ID: id, Subgraphs: subgraphs, Territories: slices.Clone(territories),
		CoordTimeoutMs: 500, BlobTimeoutMs: 2000, TickMs: 250, HostLossMs: 3000,
		ReconcileMs: 500, StaleUploadMs: 3000, GraceMs: 2000, OrphanMs: 3000, MaxDeletes: 32,
		MigrateMax: 1, MigSnapshotTimeoutMs: 5000, MigCatchupStallMs: 4000, MigCatchupTimeoutMs: 15000,
		MigRetryBaseMs: 500, MigRetryCapMs: 4000}
}

// Validate reports a configuration the manager cannot run with.
func (c ManagerConfig) Validate() error {
	switch {
	case c.ID == 0 || c.Subgraphs == 0 || len(c.Territories) == 0:
		return fmt.Errorf("manager config: id, subgraphs and territories are required")
	case c.TickMs <= 0 || c.ReconcileMs < c.TickMs || c.HostLossMs < c.TickMs:
		return fmt.Errorf("manager %d config: tick %d, reconcile %d, host loss %d", c.ID, c.TickMs, c.ReconcileMs, c.HostLossMs)
	case c.StaleUploadMs <= 0 || c.GraceMs < 0 || c.OrphanMs <= 0 || c.MaxDeletes <= 0:
		return fmt.Errorf("manager %d config: stale upload %d, grace %d, orphan %d, max deletes %d", c.ID, c.StaleUploadMs, c.GraceMs, c.OrphanMs, c.MaxDeletes)
	case c.CoordTimeoutMs <= 0 || c.BlobTimeoutMs <= 0:
		return fmt.Errorf("manager %d config: timeouts must be positive", c.ID)
	case c.MigrateEveryMs < 0 || c.MigSnapshotTimeoutMs <= 0 || c.MigCatchupStallMs <= 0 || c.MigCatchupTimeoutMs < c.MigCatchupStallMs || c.MigRetryBaseMs <= 0 || c.MigRetryCapMs < c.MigRetryBaseMs:
		return fmt.Errorf("manager %d config: migrate every %d, snapshot timeout %d, catch-up stall %d and timeout %d, retry %d..%d",
			c.ID, c.MigrateEveryMs, c.MigSnapshotTimeoutMs, c.MigCatchupStallMs, c.MigCatchupTimeoutMs, c.MigRetryBaseMs, c.MigRetryCapMs)
	}
	return nil
}

// Manager is the control plane's state machine: a host and its components.
//
//   - failureDetector (manager_detector.go): polls the territories' alive keys
//     every tick; a territory without its key for HostLossMs is lost.
//   - reassigner (manager_detector.go): moves every subgraph of a lost
//     territory to the live territory serving the fewest; the new primary's
//     claim bumps the epoch, which fences the lost one should it come back.
//   - reconciler (manager_reconcile.go): the snapshot reconciliation
//     controller: expires stale UPLOADING/VERIFYING records, deletes
//     SUPERSEDED blobs after their grace and orphan blobs, never a COMMITTED
//     one.
//   - recoveryClock (below): answers a territory's Recovered announcement with
//     the manager's clock, the timestamp of the TerritoryRecovered event.
//
// The host owns the tick timer, the tick count (time is counted in ticks, not
// clock readings, so a clock jump cannot shorten a grace period), the call ids,
// and the routing: every tick and every message goes to each component in the
// order of parts, and the result of a call goes back to the component that
// made it, with the tag and key it gave the call.
//
// # Adding a component
//
// A new control-plane protocol is a managerPart with its own state, call tags,
// file and tests, appended to parts in NewManager; no other component changes.
// This is where migration orchestration (DESIGN.md section 5.5) plugs in: a
// migrator part that keeps each migration's state machine (PENDING ->
// SNAPSHOT_STREAMING -> ROUTE_FLIPPED -> CATCHUP_STREAMING -> SYNC_COMPLETE ->
// COMMITTED, or FAILED -> PENDING) in the coordination store under its
// migration epoch, drives it from ticks and from its calls' results, and
// talks to the source and destination territories through onMessage. A
// subgraph with a migration in flight is not also moved by the reassigner
// (reassigner.holds).
//
// # Not components: the policy service and the topology observer
//
// They are nodes of their own (each a [Node] with its own HostID, lease and
// Step), placed, elected and failing independently of the manager; neither
// exists yet. The policy service will write policy epochs under PolicyKey,
// which territories adopt as logged events. The topology observer will keep
// its sketches of the global graph from telemetry and send repair proposals
// (migrations, growth mandates) as messages, which the migrator receives
// through onMessage.
type Manager struct {
	cfg    ManagerConfig
	nowMs  int64
	out    *Outbox
	nextID uint64
	calls  map[uint64]mcall
	tickID uint64
	ticks  int64
	parts  []managerPart
}

// managerPart is one component of the manager.
type managerPart interface {
	// tick runs on every timer tick (m.ticks is already counted).
	tick(m *Manager)
	// onMessage sees every message that arrives.
	onMessage(m *Manager, in MessageIn)
	// onCoord and onBlob get the results of the part's own calls.
	onCoord(m *Manager, c mcall, res CoordResult)
	onBlob(m *Manager, c mcall, res BlobResult)
}

// mcall is what the host remembers of a call until its result arrives.
type mcall struct {
	part managerPart // the part that made the call, and gets its result
	tag  uint8       // the part's own call kind
	key  string      // the part's own argument (e.g. the blob to delete after a record delete)
}

// NewManager returns a manager that starts on its first Start input.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, calls: map[uint64]mcall{}}
	reassign := &reassigner{}
	det := newFailureDetector(cfg, reassign)
	mig := newMigrator(cfg, det)
	reassign.holds = mig.holds
	m.parts = []managerPart{
		det,
		reassign,
		newReconciler(cfg),
		recoveryClock{},
	}
	if !cfg.MigrationsOff {
		m.parts = append(m.parts, mig)
	}
	return m, nil
}

// Step feeds one input.
func (m *Manager) Step(nowMs int64, in Input, out *Outbox) {
	m.nowMs, m.out = nowMs, out
	switch in := in.(type) {
	case Start:
		m.setTick()
	case TimerFired:
		if in.ID == m.tickID {
			m.tick()
		}
	case MessageIn:
		for _, p := range m.parts {
			p.onMessage(m, in)
		}
	case CoordResult:
		if c, ok := m.calls[in.ReqID]; ok {
			delete(m.calls, in.ReqID)
			c.part.onCoord(m, c, in)
		}
	case BlobResult:
		if c, ok := m.calls[in.ReqID]; ok {
			delete(m.calls, in.ReqID)
			c.part.onBlob(m, c, in)
		}
	case LogResult, DiskResult, WatchEvent:
	default:
		panic(fmt.Sprintf("manager %d: unknown input", m.cfg.ID))
	}
	m.out = nil
}

func (m *Manager) setTick() {
	m.nextID++
	m.tickID = m.nextID
	m.out.Add(SetTimer{ID: m.tickID, AfterMs: m.cfg.TickMs})
}

// tick counts time in timer ticks, not wall-clock readings: a clock jump
// must not shorten a grace period.
func (m *Manager) tick() {
	m.ticks++
	m.setTick()
	for _, p := range m.parts {
		p.tick(m)
	}
}

// coord makes a coordination call whose result goes back to c.part.
func (m *Manager) coord(c mcall, req CoordRequest) {
	m.nextID++
	m.calls[m.nextID] = c
	m.out.Add(CoordCall{ReqID: m.nextID, Req: req, TimeoutMs: m.cfg.CoordTimeoutMs})
}

// blob makes an object-store call whose result goes back to c.part.
func (m *Manager) blob(c mcall, req BlobRequest) {
	m.nextID++
	m.calls[m.nextID] = c
	m.out.Add(BlobCall{ReqID: m.nextID, Req: req, TimeoutMs: m.cfg.BlobTimeoutMs})
}

// badValue reports a coordination-store value the core did not write (a
// hand-edited route, a malformed record); the part that read it skips it.
func (m *Manager) badValue(key string, err error) {
	m.out.Add(badCoordValue(m.cfg.ID, key, err))
}

// recoveryClock answers a territory that announces a recovery: the primary
// commits TerritoryRecovered with the manager's clock as the recovery
// timestamp (its handler decays for that timestamp minus the last heartbeat).
type recoveryClock struct{}

func (recoveryClock) tick(*Manager) {}

func (recoveryClock) onMessage(m *Manager, in MessageIn) {
	if r := in.Msg.Recovered; r != nil {
		m.out.Add(Send{To: in.From, Msg: &Message{CommitRecovery: &CommitRecovery{Subgraph: r.Subgraph, Epoch: r.Epoch, TimestampMs: m.nowMs}}})
	}
}

func (recoveryClock) onCoord(*Manager, mcall, CoordResult) {}
func (recoveryClock) onBlob(*Manager, mcall, BlobResult)   {}
