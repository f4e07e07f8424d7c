package model

import (
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// Snapshot persistence, per subgraph, in the background:
//
//  1. encode the state at its applied LSN (the copy-on-write image) and record
//     UPLOADING under a fresh uuid;
//  2. upload the blob;
//  3. move the record to VERIFYING with the blob's location, checksum and size;
//  4. read the blob back and check it (a blob that fails its checksum is never
//     committed);
//  5. in one transaction, compare the subgraph's head and the record, then
//     mark the record COMMITTED, point the head at it, and mark the previous
//     committed snapshot SUPERSEDED.
//
// Any failure abandons the attempt: the reconciliation controller expires what
// it left behind. Writes are never blocked by a snapshot. The snapshotter is
// the component that runs this job; the loader (snapload_component.go) reads
// snapshots back on recovery.

// snapJob is one snapshot attempt.
type snapJob struct {
	id       uint64
	uuid     string
	lsn      uint64
	data     []byte
	checksum uint32
	recRev   int64
	headRev  int64
	prev     *SnapshotRecord
}

// snapRetryTicks is how long a failed snapshot attempt waits before the next.
const snapRetryTicks = 8

// HeadValue is the value of a subgraph's snapshot head: the committed record
// itself, with its uuid, so that a commit can mark it SUPERSEDED without
// reading it again (the head's revision guards that it is still the one).
func HeadValue(r *SnapshotRecord) []byte {
	return append([]byte("uuid="+r.UUID+" "), r.Encode()...)
}

// ParseHead decodes a head KV into the record it names.
func ParseHead(sg SubgraphID, kv KV) (SnapshotRecord, error) {
	f := strings.Fields(string(kv.Value))
	if len(f) == 0 {
		return SnapshotRecord{}, fmt.Errorf("snapshot head %s: empty", kv.Key)
	}
	name, uuid, ok := strings.Cut(f[0], "=")
	if !ok || name != "uuid" || uuid == "" {
		return SnapshotRecord{}, fmt.Errorf("snapshot head %s: first field must be uuid=", kv.Key)
	}
	rest := kv.Value[len(f[0]):]
	return ParseSnapshotRecord(KV{Key: SnapshotKey(sg, uuid), Value: rest})
}

// snapshotter is the snapshot-job component.
type snapshotter struct {
	noHooks
	t    *Territory
	id   compID
	seq  uint64 // snapshot uuid sequence
	subs perSubgraph[snapState]
}

// snapState is a subgraph's snapshot job: idle, or one attempt in flight.
type snapState struct {
	job           *snapJob // nil: idle
	retryTick     int64    // an abandoned attempt waits until this tick
	afterRecovery bool     // a background snapshot follows a recovery
}

// The snapshotter's calls, one per step of the job.
const (
	snapRecord uint8 = iota
	snapUpload
	snapVerifying
	snapReadBack
	snapHead
	snapCommit
	snapCacheWrite
	snapCacheSync
)

func newSnapshotter(t *Territory) *snapshotter {
	k := &snapshotter{t: t, subs: make(perSubgraph[snapState])}
	k.id = t.register(k)
	return k
}

// claiming: a snapshot in progress belongs to the old epoch.
func (k *snapshotter) claiming(p *primary)    { k.subs.of(p).job = nil }
func (k *snapshotter) steppedDown(p *primary) { delete(k.subs, p.sg) }
func (k *snapshotter) committed(p *primary)   { k.maybeSnapshot(p) }
func (k *snapshotter) operational(p *primary, recovered bool) {
	if recovered {
		k.subs.of(p).afterRecovery = true
	}
	k.maybeSnapshot(p)
}

func (k *snapshotter) call(tag uint8, p *primary, j *snapJob) call {
	c := scoped(k.id, tag, p)
	c.job = j.id
	return c
}

func (k *snapshotter) maybeSnapshot(p *primary) {
	t, s := k.t, k.subs.of(p)
	if p.phase != phaseOperational || s.job != nil || t.ticks < s.retryTick {
		return
	}
	due := s.afterRecovery && p.state.AppliedLSN > p.snapLSN
	if every := uint64(p.state.Policy.SnapshotEvery); every > 0 && p.state.AppliedLSN >= p.snapLSN+every {
		due = true
	}
	if !due {
		return
	}
	k.seq++
	j := &snapJob{id: k.seq, lsn: p.state.AppliedLSN, data: EncodeSnapshot(p.state)}
	j.uuid = "t" + strconv.FormatUint(uint64(t.cfg.ID), 10) + "-e" + strconv.FormatUint(p.epoch, 10) +
		"-l" + strconv.FormatUint(j.lsn, 10) + "-" + strconv.FormatUint(j.id, 10)
	j.checksum = crc32.Checksum(j.data, crc32.MakeTable(crc32.Castagnoli))
	s.job = j
	t.observe(FactSnapshotStarted{Territory: t.cfg.ID, Subgraph: p.sg, UUID: j.uuid, LSN: j.lsn})
	rec := k.record(p, j, SnapUploading)
	key := SnapshotKey(p.sg, j.uuid)
	t.coord(k.call(snapRecord, p, j), PutIfVersion(key, rec.Encode(), 0))
}

func (k *snapshotter) record(p *primary, j *snapJob, st SnapshotState) SnapshotRecord {
	r := SnapshotRecord{Subgraph: p.sg, UUID: j.uuid, State: st, LSN: j.lsn, Territory: k.t.cfg.ID, Epoch: p.epoch}
	if st != SnapUploading {
		r.Location, r.Checksum, r.Size = SnapshotBlobKey(p.sg, j.uuid), j.checksum, len(j.data)
	}
	return r
}

func (k *snapshotter) abandon(s *snapState) {
	s.job = nil
	s.retryTick = k.t.ticks + snapRetryTicks
}

func (k *snapshotter) onResult(p *primary, c call, res *result) {
	t, s := k.t, k.subs.of(p)
	switch c.tag {
	case snapCacheWrite:
		if res.ok() {
			t.disk(scoped(k.id, snapCacheSync, p), DiskRequest{Kind: DiskSync, Path: SnapshotCachePath(p.sg)})
		}
		return
	case snapCacheSync:
		return
	}
	j := s.job
	if j == nil || j.id != c.job {
		return
	}
	ok := res.ok()
	switch c.tag {
	case snapRecord:
		if !ok || !res.Coord.Succeeded {
			k.abandon(s)
			return
		}
		j.recRev = res.Coord.Revision
		t.blob(k.call(snapUpload, p, j), BlobRequest{Kind: BlobPut, Key: SnapshotBlobKey(p.sg, j.uuid), Data: j.data})
	case snapUpload:
		if !ok {
			k.abandon(s)
			return
		}
		rec := k.record(p, j, SnapVerifying)
		t.coord(k.call(snapVerifying, p, j), PutIfVersion(SnapshotKey(p.sg, j.uuid), rec.Encode(), j.recRev))
	case snapVerifying:
		if !ok || !res.Coord.Succeeded {
			k.abandon(s)
			return
		}
		j.recRev = res.Coord.Revision
		t.blob(k.call(snapReadBack, p, j), BlobRequest{Kind: BlobGet, Key: SnapshotBlobKey(p.sg, j.uuid)})
	case snapReadBack:
		if !ok || len(res.Blob.Data) != len(j.data) || crc32.Checksum(res.Blob.Data, crc32.MakeTable(crc32.Castagnoli)) != j.checksum {
			k.abandon(s) // a partial or corrupted upload is never committed
			return
		}
		t.coord(k.call(snapHead, p, j), CoordRequest{Kind: CoordGet, Key: SnapshotHeadKey(p.sg)})
	case snapHead:
		if !ok {
			k.abandon(s)
			return
		}
		var prev *SnapshotRecord
		if len(res.Coord.KVs) > 0 {
			r, err := ParseHead(p.sg, res.Coord.KVs[0])
			if err != nil {
				// Not the core's value: commit nothing over it.
				t.out.Add(badCoordValue(t.cfg.ID, res.Coord.KVs[0].Key, err))
				k.abandon(s)
				return
			}
			if r.LSN >= j.lsn {
				p.snapLSN = max(p.snapLSN, r.LSN)
				k.abandon(s) // a snapshot at least as recent is committed
				return
			}
			prev = &r
			j.headRev = res.Coord.KVs[0].ModRevision
		}
		j.prev = prev
		k.commit(p, j)
	case snapCommit:
		s.job = nil
		if !ok || !res.Coord.Succeeded {
			s.retryTick = t.ticks + snapRetryTicks
			return
		}
		p.snapLSN = j.lsn
		s.afterRecovery = false
		// Keep a copy on local disk: a restart on this host reads it instead
		// of the object store, after checking it like any blob.
		t.disk(scoped(k.id, snapCacheWrite, p), DiskRequest{Kind: DiskWrite, Path: SnapshotCachePath(p.sg), Data: j.data})
		f := FactSnapshotCommitted{Territory: t.cfg.ID, Subgraph: p.sg, UUID: j.uuid, LSN: j.lsn}
		if j.prev != nil {
			f.Superseded = j.prev.UUID
		}
		t.observe(f)
	default:
		panic(fmt.Sprintf("territory %d: snapshot result for tag %d", t.cfg.ID, c.tag))
	}
}

// commit is the one transaction that makes a snapshot the committed one: the
// head's revision proves the previous committed snapshot is still the one we
// supersede, and the record's revision that nobody expired ours.
func (k *snapshotter) commit(p *primary, j *snapJob) {
	rec := k.record(p, j, SnapCommitted)
	key := SnapshotKey(p.sg, j.uuid)
	req := CoordRequest{Kind: CoordTxn,
		Compares: []Compare{{Key: SnapshotHeadKey(p.sg), ModRevision: j.headRev}, {Key: key, ModRevision: j.recRev}},
		Then: []TxnOp{
			{Kind: TxnPut, Key: SnapshotHeadKey(p.sg), Value: HeadValue(&rec)},
			{Kind: TxnPut, Key: key, Value: rec.Encode()},
		}}
	if j.prev != nil {
		sup := *j.prev
		sup.State = SnapSuperseded
		req.Then = append(req.Then, TxnOp{Kind: TxnPut, Key: SnapshotKey(p.sg, sup.UUID), Value: sup.Encode()})
	}
	k.t.coord(k.call(snapCommit, p, j), req)
}

// SnapshotCachePath is where a territory keeps its local copy of a
// subgraph's latest snapshot.
func SnapshotCachePath(sg SubgraphID) string { return fmt.Sprintf("snapcache/%05d.snap", sg) }
