package model

import (
	"fmt"
	"slices"
	"strconv"
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
}

// DefaultManagerConfig fills the periods and bounds.
func DefaultManagerConfig(id HostID, subgraphs uint32, territories []HostID) ManagerConfig {
	return ManagerConfig{ID: id, Subgraphs: subgraphs, Territories: slices.Clone(territories),
		CoordTimeoutMs: 500, BlobTimeoutMs: 2000, TickMs: 250, HostLossMs: 3000,
		ReconcileMs: 500, StaleUploadMs: 3000, GraceMs: 2000, OrphanMs: 3000, MaxDeletes: 32}
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
	}
	return nil
}

type mcallKind uint8

const (
	mcallAlive mcallKind = iota
	mcallRoutes
	mcallReassign
	mcallRecList
	mcallBlobList
	mcallRecDelete
	mcallBlobDelete
)

type mcall struct {
	kind mcallKind
	key  string // the blob to delete after a record delete
}

// Manager is the minimal control plane: it detects lost territories from
// their liveness keys and moves their subgraphs to live ones (the new primary
// claims with a higher epoch, which fences the old), commits TerritoryRecovered
// events when a territory announces a recovery, and runs the snapshot
// reconciliation controller. The leader-elected Territory Manager builds on it.
type Manager struct {
	cfg       ManagerConfig
	nowMs     int64
	out       *Outbox
	nextID    uint64
	calls     map[uint64]mcall
	tickID    uint64
	ticks     int64
	missing   map[HostID]int64 // consecutive polls without the alive key
	live      []HostID
	pollBusy  bool
	moving    int // route swaps in flight
	recBusy   bool
	recBlobs  []string
	seen      map[string]int64 // reconciliation: item -> tick first seen in its current state
	seenNow   map[string]bool
	deletions int // deletions in flight this pass
}

// NewManager returns a manager that starts on its first Start input.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, calls: map[uint64]mcall{}, missing: map[HostID]int64{}, seen: map[string]int64{}}, nil
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
		if r := in.Msg.Recovered; r != nil {
			// The event carries the manager's clock: the recovery timestamp.
			m.out.Add(Send{To: in.From, Msg: &Message{CommitRecovery: &CommitRecovery{Subgraph: r.Subgraph, Epoch: r.Epoch, TimestampMs: m.nowMs}}})
		}
	case CoordResult:
		m.onCoord(in)
	case BlobResult:
		m.onBlob(in)
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

func (m *Manager) coord(c mcall, req CoordRequest) {
	m.nextID++
	m.calls[m.nextID] = c
	m.out.Add(CoordCall{ReqID: m.nextID, Req: req, TimeoutMs: m.cfg.CoordTimeoutMs})
}

func (m *Manager) blob(c mcall, req BlobRequest) {
	m.nextID++
	m.calls[m.nextID] = c
	m.out.Add(BlobCall{ReqID: m.nextID, Req: req, TimeoutMs: m.cfg.BlobTimeoutMs})
}

// tick counts time in timer ticks, not wall-clock readings: a clock jump
// must not shorten a grace period.
func (m *Manager) tick() {
	m.ticks++
	m.setTick()
	if !m.pollBusy && m.moving == 0 {
		m.pollBusy = true
		m.coord(mcall{kind: mcallAlive}, CoordRequest{Kind: CoordRange, Key: AlivePrefix})
	}
	if !m.recBusy && m.ticks%max(1, m.cfg.ReconcileMs/m.cfg.TickMs) == 0 {
		m.recBusy = true
		// Blobs first, records second: a record is written before its blob,
		// so a listed blob whose record is missing from the later listing is
		// truly an orphan.
		m.blob(mcall{kind: mcallBlobList}, BlobRequest{Kind: BlobList, Key: SnapshotBlobPrefix})
	}
}

// ---- failure detection and reassignment ----

func (m *Manager) onAlive(res CoordResult) {
	if res.Outcome != OutcomeOK {
		m.pollBusy = false
		return
	}
	alive := map[HostID]bool{}
	for _, kv := range res.Resp.KVs {
		id, err := ParseAliveKey(kv.Key)
		if err != nil {
			m.out.Add(badCoordValue(m.cfg.ID, kv.Key, err))
			continue
		}
		alive[id] = true
	}
	m.live = m.live[:0]
	var lost bool
	for _, id := range m.cfg.Territories {
		if alive[id] {
			m.missing[id] = 0
			m.live = append(m.live, id)
			continue
		}
		m.missing[id]++
		if m.missing[id]*m.cfg.TickMs >= m.cfg.HostLossMs {
			lost = true
		}
	}
	if !lost || len(m.live) == 0 {
		m.pollBusy = false
		return
	}
	m.coord(mcall{kind: mcallRoutes}, CoordRequest{Kind: CoordRange, Key: RoutesPrefix})
}

func (m *Manager) isLost(id HostID) bool {
	return m.missing[id]*m.cfg.TickMs >= m.cfg.HostLossMs
}

// onRoutes moves every subgraph of a lost territory to the live territory
// serving the fewest, keeping the epoch: the new primary bumps it when it
// claims, and that claim fences the lost one should it come back.
func (m *Manager) onRoutes(res CoordResult) {
	m.pollBusy = false
	if res.Outcome != OutcomeOK {
		return
	}
	load := map[HostID]int{}
	var routes []Route
	for _, kv := range res.Resp.KVs {
		r, err := ParseRoute(kv)
		if err == nil && uint32(r.Subgraph) >= m.cfg.Subgraphs {
			err = fmt.Errorf("route %s: subgraph %d beyond the %d of the cluster", kv.Key, r.Subgraph, m.cfg.Subgraphs)
		}
		if err != nil {
			m.out.Add(badCoordValue(m.cfg.ID, kv.Key, err)) // and leave that route alone
			continue
		}
		routes = append(routes, r)
		load[r.Primary]++
	}
	for _, r := range routes {
		if !m.isLost(r.Primary) || slices.Contains(m.live, r.Primary) {
			continue
		}
		target := m.live[0]
		for _, id := range m.live[1:] {
			if load[id] < load[target] {
				target = id
			}
		}
		load[target]++
		m.moving++
		m.coord(mcall{kind: mcallReassign}, PutIfVersion(RouteKey(r.Subgraph), EncodeRoute(target, r.Epoch), r.ModRevision))
	}
}

// ---- snapshot reconciliation ----

func (m *Manager) onBlobList(res BlobResult) {
	if res.Outcome != OutcomeOK {
		m.recBusy = false
		return
	}
	m.recBlobs = res.Resp.Keys
	m.coord(mcall{kind: mcallRecList}, CoordRequest{Kind: CoordRange, Key: SnapshotsPrefix})
}

// firstSeen returns how long (in ms of ticks) an item has been seen in its
// current state, recording it on first sight.
func (m *Manager) firstSeen(item string) int64 {
	m.seenNow[item] = true
	at, ok := m.seen[item]
	if !ok {
		m.seen[item] = m.ticks
		at = m.ticks
	}
	return (m.ticks - at) * m.cfg.TickMs
}

func (m *Manager) onRecList(res CoordResult) {
	if res.Outcome != OutcomeOK {
		m.recBusy = false
		return
	}
	m.seenNow = map[string]bool{}
	hasRecord := map[string]bool{}
	budget := m.cfg.MaxDeletes
	for _, kv := range res.Resp.KVs {
		r, err := ParseSnapshotRecord(kv)
		if err != nil {
			m.out.Add(badCoordValue(m.cfg.ID, kv.Key, err))
			// Keep the blob a record we cannot read may name: deleting it
			// as an orphan could lose a snapshot.
			if sg, uuid, kerr := ParseSnapshotRecordKey(kv.Key); kerr == nil {
				hasRecord[SnapshotBlobKey(sg, uuid)] = true
			}
			continue
		}
		blobKey := SnapshotBlobKey(r.Subgraph, r.UUID)
		hasRecord[blobKey] = true
		item := kv.Key + "@" + strconv.FormatInt(kv.ModRevision, 10)
		var limit int64
		switch r.State {
		case SnapUploading, SnapVerifying:
			limit = m.cfg.StaleUploadMs
		case SnapSuperseded:
			limit = m.cfg.GraceMs
		default:
			continue // a COMMITTED snapshot and its blob are never touched
		}
		if m.firstSeen(item) < limit || budget == 0 {
			continue
		}
		budget--
		m.deletions++
		// The record goes first, only if unchanged; its blob after. A blob
		// left behind by a failed delete is an orphan the next passes remove.
		m.coord(mcall{kind: mcallRecDelete, key: blobKey}, CoordRequest{Kind: CoordTxn,
			Compares: []Compare{{Key: kv.Key, ModRevision: kv.ModRevision}},
			Then:     []TxnOp{{Kind: TxnDelete, Key: kv.Key}}})
	}
	for _, key := range m.recBlobs {
		if hasRecord[key] {
			continue
		}
		if m.firstSeen("blob:"+key) < m.cfg.OrphanMs || budget == 0 {
			continue
		}
		budget--
		m.deletions++
		m.blob(mcall{kind: mcallBlobDelete}, BlobRequest{Kind: BlobDelete, Key: key})
	}
	for item := range m.seen { // order: forgetting items gone or changed is order-free
		if !m.seenNow[item] {
			delete(m.seen, item)
		}
	}
	m.recBlobs = nil
	if m.deletions == 0 {
		m.recBusy = false
	}
}

func (m *Manager) deletionDone() {
	m.deletions--
	if m.deletions == 0 {
		m.recBusy = false
	}
}

func (m *Manager) onCoord(res CoordResult) {
	c, ok := m.calls[res.ReqID]
	if !ok {
		return
	}
	delete(m.calls, res.ReqID)
	switch c.kind {
	case mcallAlive:
		m.onAlive(res)
	case mcallRoutes:
		m.onRoutes(res)
	case mcallReassign:
		m.moving--
	case mcallRecList:
		m.onRecList(res)
	case mcallRecDelete:
		if res.Outcome == OutcomeOK && res.Resp.Succeeded {
			m.blob(mcall{kind: mcallBlobDelete}, BlobRequest{Kind: BlobDelete, Key: c.key})
			return
		}
		m.deletionDone()
	}
}

func (m *Manager) onBlob(res BlobResult) {
	c, ok := m.calls[res.ReqID]
	if !ok {
		return
	}
	delete(m.calls, res.ReqID)
	switch c.kind {
	case mcallBlobList:
		m.onBlobList(res)
	case mcallBlobDelete:
		m.deletionDone()
	}
}
