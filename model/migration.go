package model

import (
	"fmt"
	"strconv"
	"strings"
)

// Phased territory migration: the record the Territory Manager keeps for each
// migration in the coordination store, under MigrationKey(sg), and the only
// transitions it may take (the seed's state diagram):
//
//	[*] -> PENDING -> SNAPSHOT_STREAMING -> ROUTE_FLIPPED -> CATCHUP_STREAMING
//	    -> SYNC_COMPLETE -> COMMITTED -> [*]
//	SNAPSHOT_STREAMING | ROUTE_FLIPPED | CATCHUP_STREAMING -> FAILED
//	FAILED -> PENDING (a retry: attempts + 1, at most MigrationMaxAttempts)
//	FAILED -> [*] (abandoned after the last attempt)
//
// Every transition is a compare-and-swap on the record's mod revision
// (MigrationCAS), so two managers, or a manager and its own timed-out call,
// can never both move one record. A record is created only where none exists
// (MigrationCreate), and deleted only from COMMITTED or FAILED.

// MigrationState is a migration's phase.
type MigrationState uint8

const (
	MigPending MigrationState = iota + 1
	MigSnapshotStreaming
	MigRouteFlipped
	MigCatchupStreaming
	MigSyncComplete
	MigCommitted
	MigFailed
)

var migStateNames = [...]string{"", "PENDING", "SNAPSHOT_STREAMING", "ROUTE_FLIPPED", "CATCHUP_STREAMING", "SYNC_COMPLETE", "COMMITTED", "FAILED"}

func (s MigrationState) String() string {
	if s > 0 && int(s) < len(migStateNames) {
		return migStateNames[s]
	}
	return "MIGRATION_STATE?"
}

// ParseMigrationState is the inverse of String.
func ParseMigrationState(text string) (MigrationState, error) {
	for i := 1; i < len(migStateNames); i++ {
		if migStateNames[i] == text {
			return MigrationState(i), nil
		}
	}
	return 0, fmt.Errorf("migration state %q: unknown", text)
}

// MigrationMaxAttempts bounds the retries of one migration: after the last
// attempt fails, the record stays FAILED until the manager removes it.
const MigrationMaxAttempts = 5

// MigrationsPrefix is where migration records live.
const MigrationsPrefix = "migrations/"

// MigrationKey is the record key of a subgraph's migration (one at a time).
func MigrationKey(sg SubgraphID) string { return fmt.Sprintf("%s%05d", MigrationsPrefix, sg) }

// ParseMigrationKey returns the subgraph of a migration key.
func ParseMigrationKey(key string) (SubgraphID, error) {
	rest, ok := strings.CutPrefix(key, MigrationsPrefix)
	if !ok {
		return 0, fmt.Errorf("migration key %q: missing prefix %q", key, MigrationsPrefix)
	}
	n, err := strconv.ParseUint(rest, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("migration key %q: %w", key, err)
	}
	return SubgraphID(n), nil
}

// MigrationTransition reports whether a record may move from one state to
// another. from 0 is "no record" and to 0 is "deleted".
func MigrationTransition(from, to MigrationState) bool {
	switch from {
	case 0:
		return to == MigPending
	case MigPending:
		return to == MigSnapshotStreaming
	case MigSnapshotStreaming:
		return to == MigRouteFlipped || to == MigFailed
	case MigRouteFlipped:
		return to == MigCatchupStreaming || to == MigFailed
	case MigCatchupStreaming:
		return to == MigSyncComplete || to == MigFailed
	case MigSyncComplete:
		return to == MigCommitted
	case MigCommitted:
		return to == 0
	case MigFailed:
		return to == MigPending || to == 0
	}
	return false
}

// MigrationProgress reports a put that keeps the state: only
// CATCHUP_STREAMING is updated in place, as T_dest acknowledges LSNs
// (acked_lsn grows). It is not a transition.
func MigrationProgress(from, to MigrationState) bool {
	return from == MigCatchupStreaming && to == MigCatchupStreaming
}

// MigrationRecord is the value of a migration record.
type MigrationRecord struct {
	Subgraph SubgraphID
	State    MigrationState
	Epoch    uint64 // migration_epoch: assigned by the manager, bumped on every retry
	From, To HostID // T_src and T_dest
	// SnapshotLSN is the LSN of the image T_src streamed (from ROUTE_FLIPPED on).
	SnapshotLSN uint64
	// AckedLSN is last_acknowledged_lsn_by_dest: the highest LSN T_dest
	// reported applied; a replay after T_src's loss starts at AckedLSN + 1.
	AckedLSN uint64
	// TargetLSN is the LSN T_src held its writes at, the catch-up's end
	// (from ROUTE_FLIPPED on; 0 before): the catch-up lag is TargetLSN -
	// AckedLSN.
	TargetLSN uint64
	Attempts  int   // attempts so far, 1 for the first
	SinceMs   int64 // manager clock when the record entered its state
	// ModRevision is the key's revision when read (not part of the value).
	ModRevision int64
}

// RetriesLeft reports whether a FAILED record may be retried: a FAILED
// record with none left is deleted as abandoned. A FAILED record with
// retries left is deleted only when its route names its T_dest already (the
// move was made before the failure: migrator.onRoute).
func (r *MigrationRecord) RetriesLeft() bool { return r.Attempts < MigrationMaxAttempts }

// Encode is the record's value: name=value pairs a person can read.
func (r *MigrationRecord) Encode() []byte {
	target := ""
	if r.TargetLSN > 0 {
		target = fmt.Sprintf(" target_lsn=%d", r.TargetLSN)
	}
	return []byte(fmt.Sprintf("state=%s epoch=%d from=%d to=%d snapshot_lsn=%d acked_lsn=%d%s attempts=%d since_ms=%d",
		r.State, r.Epoch, r.From, r.To, r.SnapshotLSN, r.AckedLSN, target, r.Attempts, r.SinceMs))
}

// ParseMigrationRecord decodes one record KV and validates it.
func ParseMigrationRecord(kv KV) (MigrationRecord, error) {
	sg, err := ParseMigrationKey(kv.Key)
	if err != nil {
		return MigrationRecord{}, err
	}
	r := MigrationRecord{Subgraph: sg, ModRevision: kv.ModRevision}
	seen := map[string]bool{}
	for _, field := range strings.Fields(string(kv.Value)) {
		name, val, ok := strings.Cut(field, "=")
		if !ok {
			return MigrationRecord{}, fmt.Errorf("migration %s: field %q is not name=value", kv.Key, field)
		}
		if name == "state" {
			if r.State, err = ParseMigrationState(val); err != nil {
				return MigrationRecord{}, fmt.Errorf("migration %s: %w", kv.Key, err)
			}
			seen[name] = true
			continue
		}
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil || n < 0 {
			return MigrationRecord{}, fmt.Errorf("migration %s: field %s: %q is not a non-negative integer", kv.Key, name, val)
		}
		switch name {
		case "epoch":
			r.Epoch = uint64(n)
		case "from", "to":
			if n > 1<<32-1 {
				return MigrationRecord{}, fmt.Errorf("migration %s: %s %d out of range", kv.Key, name, n)
			}
			if name == "from" {
				r.From = HostID(n)
			} else {
				r.To = HostID(n)
			}
		case "snapshot_lsn":
			r.SnapshotLSN = uint64(n)
		case "acked_lsn":
			r.AckedLSN = uint64(n)
		case "target_lsn":
			r.TargetLSN = uint64(n)
		case "attempts":
			r.Attempts = int(n)
		case "since_ms":
			r.SinceMs = n
		default:
			return MigrationRecord{}, fmt.Errorf("migration %s: unknown field %q", kv.Key, name)
		}
		seen[name] = true
	}
	if !seen["state"] || !seen["epoch"] || !seen["to"] {
		return MigrationRecord{}, fmt.Errorf("migration %s: value %q lacks state, epoch or to", kv.Key, kv.Value)
	}
	if r.To == 0 || r.From == r.To {
		return MigrationRecord{}, fmt.Errorf("migration %s: from %d to %d: the destination must be another territory", kv.Key, r.From, r.To)
	}
	return r, nil
}

// CatchupLag is the catch-up still to apply, in events: TargetLSN - AckedLSN
// once the route flipped (0 before, and once T_dest has acknowledged the
// target).
func (r *MigrationRecord) CatchupLag() uint64 {
	if r.TargetLSN <= r.AckedLSN {
		return 0
	}
	return r.TargetLSN - r.AckedLSN
}

// MigrationCreate is the request that creates a PENDING record for sg only
// if the subgraph has none (a compare on mod revision 0 is "absent").
func MigrationCreate(sg SubgraphID, to HostID, epoch uint64, nowMs int64) CoordRequest {
	r := MigrationRecord{Subgraph: sg, State: MigPending, Epoch: epoch, To: to, Attempts: 1, SinceMs: nowMs}
	return PutIfVersion(MigrationKey(sg), r.Encode(), 0)
}

// MigrationCAS is the request that moves rec to next, as read at
// rec.ModRevision, with next's fields; it refuses (an error, no request) a
// transition the state machine does not have. A retry (FAILED -> PENDING)
// bumps the migration epoch and counts the attempt.
func MigrationCAS(rec MigrationRecord, next MigrationRecord) (CoordRequest, error) {
	if !(MigrationTransition(rec.State, next.State) || MigrationProgress(rec.State, next.State)) || next.State == 0 {
		return CoordRequest{}, fmt.Errorf("migration %s: no transition %s -> %s", MigrationKey(rec.Subgraph), rec.State, next.State)
	}
	if next.Subgraph != rec.Subgraph {
		return CoordRequest{}, fmt.Errorf("migration %s: next record is of subgraph %d", MigrationKey(rec.Subgraph), next.Subgraph)
	}
	if rec.State == MigFailed && next.State == MigPending {
		if !rec.RetriesLeft() {
			return CoordRequest{}, fmt.Errorf("migration %s: %d attempts, no retry left", MigrationKey(rec.Subgraph), rec.Attempts)
		}
		if next.Epoch <= rec.Epoch || next.Attempts != rec.Attempts+1 {
			return CoordRequest{}, fmt.Errorf("migration %s: a retry must bump the epoch (%d -> %d) and count the attempt (%d -> %d)",
				MigrationKey(rec.Subgraph), rec.Epoch, next.Epoch, rec.Attempts, next.Attempts)
		}
	} else if next.Epoch != rec.Epoch {
		return CoordRequest{}, fmt.Errorf("migration %s: epoch changes %d -> %d outside a retry", MigrationKey(rec.Subgraph), rec.Epoch, next.Epoch)
	}
	return PutIfVersion(MigrationKey(rec.Subgraph), next.Encode(), rec.ModRevision), nil
}

// MigrationRetryMs is how long a FAILED migration waits before its retry:
// base << (attempts - 1), capped.
func MigrationRetryMs(baseMs, capMs int64, attempts int) int64 {
	return backoffMs(baseMs, capMs, max(0, attempts-1))
}
