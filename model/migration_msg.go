package model

// The messages of a phased migration (DESIGN.md section 5.5) between the
// manager's migrator (manager_migrator.go), the source territory
// (migration_source.go) and the destination (migration_dest.go). Every one
// carries the migration epoch: a message of another epoch is stale and
// ignored. The transport may lose, duplicate and reorder them; each step is
// idempotent and resent until the next step shows it landed.

// MigMsgKind is a message of the migration protocol.
type MigMsgKind uint8

const (
	// MigStart: manager -> T_src: take an image of Subgraph and stream it to To.
	MigStart MigMsgKind = iota + 1
	// MigChunk: T_src -> T_dest: chunk Index of Total of the image at
	// SnapLSN, with its CRC32C in Sum and the whole image's in ImageSum.
	MigChunk
	// MigChunkAck: T_dest -> T_src: it holds chunks 0..Next-1 (resume from Next).
	MigChunkAck
	// MigReady: T_src -> manager: the image is at T_dest; T_src holds its
	// writes of Subgraph at Target (its applied LSN, nothing in flight) under
	// the route revision RouteRev (epoch RouteEpoch) until the flip or a timeout.
	MigReady
	// MigAbort: manager -> T_src: the migration failed; release the writes.
	MigAbort
	// MigFlipped: manager -> T_src and T_dest: the route flipped (Route is
	// the new route key as written): T_src streams the catch-up, T_dest
	// adopts the subgraph.
	MigFlipped
	// MigCatchup: T_src -> T_dest: committed log entries after SnapLSN, up
	// to Target (the LSN T_src held its writes at).
	MigCatchup
	// MigCatchupAck: T_dest -> T_src: applied through Next-1; send from Next.
	MigCatchupAck
	// MigReplay: manager -> T_dest: T_src is lost: replay the subgraph from
	// the log from FromLSN (last_acknowledged_lsn_by_dest + 1).
	MigReplay
	// MigLive: T_dest -> manager: T_dest serves Subgraph as operational primary.
	MigLive
	// MigRequest: anyone -> manager: migrate Subgraph to To (territoryd migrate).
	MigRequest
	// MigRequestReply: manager -> the requester of a MigRequest: accepted
	// (Refusal 0: the record is PENDING at Epoch, from From to To) or refused
	// (Refusal, and Detail for a person). A repeated request from the same
	// host gets the same answer (manager_migrate_request.go).
	MigRequestReply
)

var migKindNames = [...]string{"mig?", "start", "chunk", "chunk-ack", "ready", "abort", "flipped", "catchup", "catchup-ack", "replay", "live", "request", "request-reply"}

// MigKindMax is the last message kind (a transport refuses kinds beyond it).
const MigKindMax = MigRequestReply

// MigRefusal is why the manager refused a MigRequest (0: accepted).
type MigRefusal uint8

const (
	MigRefusedUnknownSubgraph  MigRefusal = iota + 1 // no such subgraph in the cluster
	MigRefusedUnknownTerritory                       // To is not a territory of the cluster
	MigRefusedTerritoryDown                          // To (or every other territory) is not alive
	MigRefusedRunning                                // the subgraph has a migration record already
	MigRefusedAlreadyThere                           // the route names To already
	MigRefusedPrimaryDown                            // the subgraph's primary is not serving: the reassigner's
	MigRefusedBusy                                   // too many requests queued
)

// MigRefusalMax is the last refusal code.
const MigRefusalMax = MigRefusedBusy

var migRefusalNames = [...]string{"accepted", "UNKNOWN_SUBGRAPH", "UNKNOWN_TERRITORY", "TERRITORY_DOWN", "MIGRATION_RUNNING", "ALREADY_THERE", "PRIMARY_DOWN", "BUSY"}

func (r MigRefusal) String() string {
	if int(r) < len(migRefusalNames) {
		return migRefusalNames[r]
	}
	return "REFUSAL?"
}

func (k MigMsgKind) String() string {
	if int(k) < len(migKindNames) {
		return migKindNames[k]
	}
	return "mig?"
}

// MigMsg is one message of the migration protocol.
type MigMsg struct {
	Kind       MigMsgKind
	Subgraph   SubgraphID
	Epoch      uint64 // migration_epoch
	From, To   HostID // T_src, T_dest
	SnapLSN    uint64 // snapshot_LSN of the image
	Target     uint64 // MigReady, MigCatchup: the LSN T_src held its writes at
	Index      uint32 // MigChunk
	Total      uint32 // MigChunk
	Sum        uint32 // MigChunk: CRC32C of Data
	ImageSum   uint32 // MigChunk: CRC32C of the whole image
	Data       []byte
	Entries    []LogEntry // MigCatchup
	Next       uint64     // acks: next chunk index, or next LSN wanted
	FromLSN    uint64     // MigReplay
	RouteRev   int64      // MigReady
	RouteEpoch uint64     // MigReady
	Route      KV         // MigFlipped
	Refusal    MigRefusal // MigRequestReply
	Detail     string     // MigRequestReply
}

// MigStep is a step of a migration a territory reports as a fact.
type MigStep uint8

const (
	MigStepImage     MigStep = iota + 1 // T_src took the image at LSN (Bytes encoded)
	MigStepHeld                         // T_src holds its writes at LSN (the write pause starts)
	MigStepReleased                     // T_src released its writes: no flip happened
	MigStepInstalled                    // T_dest installed the image at LSN: its state starts there
	MigStepCaughtUp                     // T_dest applied the catch-up through LSN; it opens the log
	MigStepLive                         // T_dest became operational at LSN (the write pause ends)
	MigStepAcked                        // T_src heard T_dest has applied the catch-up through LSN, of Target
)

var migStepNames = [...]string{"step?", "image", "held", "released", "installed", "caught-up", "live", "acked"}

func (s MigStep) String() string {
	if int(s) < len(migStepNames) {
		return migStepNames[s]
	}
	return "step?"
}

// FactMigration: a territory took a step of a migration of Subgraph.
type FactMigration struct {
	Territory HostID
	Subgraph  SubgraphID
	Epoch     uint64 // migration_epoch
	Step      MigStep
	LSN       uint64
	Bytes     int    // MigStepImage: the encoded image
	Target    uint64 // MigStepAcked: the catch-up's end (the lag is Target - LSN)
	Replayed  bool
}

func (FactMigration) isFact() {}

// FactMigrationRecord: the manager wrote (or read, when it loaded the
// records) a migration record; State 0 is the record's deletion. Drivers turn
// it into metrics (outcomes, phase durations, catch-up lag).
type FactMigrationRecord struct {
	Manager HostID
	Record  MigrationRecord
	Prev    MigrationState // the state it left (0: created, or loaded)
	Loaded  bool           // read at the manager's (re)start, not written
}

func (FactMigrationRecord) isFact() {}

// FactMigrationSignal: the manager heard T_src hold its writes (MigReady,
// Live false) or T_dest go live (MigLive, Live true) for a migration: on the
// manager's one clock, the time between the two is the write pause.
type FactMigrationSignal struct {
	Manager  HostID
	Subgraph SubgraphID
	Epoch    uint64
	Live     bool
}

func (FactMigrationSignal) isFact() {}
