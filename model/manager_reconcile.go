package model

import (
	"fmt"
	"strconv"
)

// reconciler is the snapshot reconciliation controller. Every ReconcileMs of
// ticks it lists the snapshot blobs, then the snapshot records, and
//
//   - expires an UPLOADING or VERIFYING record unchanged for StaleUploadMs
//     (its writer is gone or stuck), and its blob;
//   - deletes a SUPERSEDED record and its blob once it has been seen
//     SUPERSEDED for GraceMs (a loader that read the record just before it
//     was superseded still finds the blob);
//   - deletes a blob without a record once seen so for OrphanMs (the blob a
//     malformed record names counts as having one);
//   - never touches a COMMITTED record or its blob.
//
// Ages are counted in the manager's ticks, not clock readings, so a clock
// jump cannot shorten them. A record is deleted first, by a transaction that
// requires it unchanged, and its blob only after that succeeded; a blob left
// by a failed delete is an orphan that later passes remove. At most
// MaxDeletes deletions per pass; the next pass starts when they are done.
type reconciler struct {
	cfg       ManagerConfig
	busy      bool
	blobs     []string         // the pass's blob listing, until the records arrive
	seen      map[string]int64 // item -> tick it was first seen in its current state
	deletions int              // deletions in flight this pass
}

const (
	callBlobList uint8 = iota
	callRecList
	callRecDelete
	callBlobDelete
)

func newReconciler(cfg ManagerConfig) *reconciler {
	return &reconciler{cfg: cfg, seen: map[string]int64{}}
}

func (r *reconciler) tick(m *Manager) {
	if r.busy || m.ticks%max(1, r.cfg.ReconcileMs/r.cfg.TickMs) != 0 {
		return
	}
	r.busy = true
	// Blobs first, records second: a record is written before its blob, so a
	// listed blob whose record is missing from the later listing is truly an
	// orphan.
	m.blob(mcall{part: r, tag: callBlobList}, BlobRequest{Kind: BlobList, Key: SnapshotBlobPrefix})
}

func (r *reconciler) onMessage(*Manager, MessageIn) {}

func (r *reconciler) onBlob(m *Manager, c mcall, res BlobResult) {
	switch c.tag {
	case callBlobList:
		if res.Outcome != OutcomeOK {
			r.busy = false
			return
		}
		r.blobs = res.Resp.Keys
		m.coord(mcall{part: r, tag: callRecList}, CoordRequest{Kind: CoordRange, Key: SnapshotsPrefix})
	case callBlobDelete:
		r.deletionDone()
	default:
		panic(fmt.Sprintf("manager %d: reconciler got a blob result of call tag %d", m.cfg.ID, c.tag))
	}
}

func (r *reconciler) onCoord(m *Manager, c mcall, res CoordResult) {
	switch c.tag {
	case callRecList:
		if res.Outcome != OutcomeOK {
			r.busy = false
			return
		}
		r.pass(m, res.Resp.KVs)
	case callRecDelete:
		if res.Outcome == OutcomeOK && res.Resp.Succeeded {
			m.blob(mcall{part: r, tag: callBlobDelete}, BlobRequest{Kind: BlobDelete, Key: c.key})
			return
		}
		r.deletionDone()
	default:
		panic(fmt.Sprintf("manager %d: reconciler got a coordination result of call tag %d", m.cfg.ID, c.tag))
	}
}

// deletion is one deletion a pass decided: a record (by a transaction on its
// revision, then its blob) or, with no record, an orphan blob.
type deletion struct {
	record      string // record key; "" for an orphan blob
	modRevision int64
	blob        string
}

// pass judges one listing (r.blobs, then the records) and starts its deletions.
func (r *reconciler) pass(m *Manager, records []KV) {
	dels, bad := r.plan(m.ticks, r.blobs, records)
	for _, b := range bad {
		m.badValue(b.key, b.err)
	}
	r.blobs = nil
	for _, d := range dels {
		r.deletions++
		if d.record == "" {
			m.blob(mcall{part: r, tag: callBlobDelete}, BlobRequest{Kind: BlobDelete, Key: d.blob})
			continue
		}
		m.coord(mcall{part: r, tag: callRecDelete, key: d.blob}, CoordRequest{Kind: CoordTxn,
			Compares: []Compare{{Key: d.record, ModRevision: d.modRevision}},
			Then:     []TxnOp{{Kind: TxnDelete, Key: d.record}}})
	}
	if r.deletions == 0 {
		r.busy = false
	}
}

type badKV struct {
	key string
	err error
}

// plan is the pure part of a pass: at tick now, given the blob listing and
// the records, it returns the deletions due (records first, in listing
// order, then orphan blobs, at most MaxDeletes) and the records it could not
// read. It records when each item was first seen in its current state and
// forgets items gone or changed.
func (r *reconciler) plan(now int64, blobs []string, records []KV) (dels []deletion, bad []badKV) {
	seenNow := map[string]bool{}
	age := func(item string) int64 {
		seenNow[item] = true
		at, ok := r.seen[item]
		if !ok {
			r.seen[item] = now
			at = now
		}
		return (now - at) * r.cfg.TickMs
	}
	hasRecord := map[string]bool{}
	budget := r.cfg.MaxDeletes
	for _, kv := range records {
		rec, err := ParseSnapshotRecord(kv)
		if err != nil {
			bad = append(bad, badKV{kv.Key, err})
			// Keep the blob a record we cannot read may name: deleting it
			// as an orphan could lose a snapshot.
			if sg, uuid, kerr := ParseSnapshotRecordKey(kv.Key); kerr == nil {
				hasRecord[SnapshotBlobKey(sg, uuid)] = true
			}
			continue
		}
		blobKey := SnapshotBlobKey(rec.Subgraph, rec.UUID)
		hasRecord[blobKey] = true
		item := kv.Key + "@" + strconv.FormatInt(kv.ModRevision, 10)
		var limit int64
		switch rec.State {
		case SnapUploading, SnapVerifying:
			limit = r.cfg.StaleUploadMs
		case SnapSuperseded:
			limit = r.cfg.GraceMs
		default:
			continue // a COMMITTED snapshot and its blob are never touched
		}
		if age(item) < limit || budget == 0 {
			continue
		}
		budget--
		dels = append(dels, deletion{record: kv.Key, modRevision: kv.ModRevision, blob: blobKey})
	}
	for _, key := range blobs {
		if hasRecord[key] {
			continue
		}
		if age("blob:"+key) < r.cfg.OrphanMs || budget == 0 {
			continue
		}
		budget--
		dels = append(dels, deletion{blob: key})
	}
	for item := range r.seen { // order: only deletes from the map, nothing is emitted
		if !seenNow[item] {
			delete(r.seen, item)
		}
	}
	return dels, bad
}

func (r *reconciler) deletionDone() {
	r.deletions--
	if r.deletions == 0 {
		r.busy = false
	}
}
