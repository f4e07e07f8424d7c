package model

import (
	"slices"
	"strconv"
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
// it left behind. Writes are never blocked by a snapshot.

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
	f := fields(string(kv.Value))
	if len(f) == 0 {
		return SnapshotRecord{}, errorf("snapshot head %s: empty", kv.Key)
	}
	name, uuid, ok := cut(f[0], '=')
	if !ok || name != "uuid" || uuid == "" {
		return SnapshotRecord{}, errorf("snapshot head %s: first field must be uuid=", kv.Key)
	}
	rest := kv.Value[len(f[0]):]
	return ParseSnapshotRecord(KV{Key: SnapshotKey(sg, uuid), Value: rest})
}

func (t *Territory) maybeSnapshot(p *primary) {
	if p.phase != phaseOperational || p.snap != nil || t.ticks < p.snapRetryTick {
		return
	}
	due := p.snapAfterRec && p.state.AppliedLSN > p.lastSnapLSN
	if every := uint64(p.state.Policy.SnapshotEvery); every > 0 && p.state.AppliedLSN >= p.lastSnapLSN+every {
		due = true
	}
	if !due {
		return
	}
	t.snapSeq++
	j := &snapJob{id: t.snapSeq, lsn: p.state.AppliedLSN, data: EncodeSnapshot(p.state)}
	j.uuid = "t" + strconv.FormatUint(uint64(t.cfg.ID), 10) + "-e" + strconv.FormatUint(p.epoch, 10) +
		"-l" + strconv.FormatUint(j.lsn, 10) + "-" + strconv.FormatUint(j.id, 10)
	j.checksum = CRC32C(j.data)
	p.snap = j
	t.out.Add(Observe{Fact: FactSnapshotStarted{Territory: t.cfg.ID, Subgraph: p.sg, UUID: j.uuid, LSN: j.lsn}})
	rec := t.snapRecord(p, j, SnapUploading)
	key := SnapshotKey(p.sg, j.uuid)
	t.coord(call{kind: callSnapRecord, sg: p.sg, gen: p.gen, job: j.id}, PutIfVersion(key, rec.Encode(), 0))
}

func (t *Territory) snapRecord(p *primary, j *snapJob, st SnapshotState) SnapshotRecord {
	r := SnapshotRecord{Subgraph: p.sg, UUID: j.uuid, State: st, LSN: j.lsn, Territory: t.cfg.ID, Epoch: p.epoch}
	if st != SnapUploading {
		r.Location, r.Checksum, r.Size = SnapshotBlobKey(p.sg, j.uuid), j.checksum, len(j.data)
	}
	return r
}

func (t *Territory) abandonSnapshot(p *primary) {
	p.snap = nil
	p.snapRetryTick = t.ticks + snapRetryTicks
}

func (t *Territory) onSnapCoord(p *primary, c call, res CoordResult) {
	j := p.snap
	if j == nil || j.id != c.job {
		return
	}
	ok := res.Outcome == OutcomeOK
	switch c.kind {
	case callSnapRecord:
		if !ok || !res.Resp.Succeeded {
			t.abandonSnapshot(p)
			return
		}
		j.recRev = res.Resp.Revision
		t.blob(call{kind: callSnapUpload, sg: p.sg, gen: p.gen, job: j.id}, BlobRequest{Kind: BlobPut, Key: SnapshotBlobKey(p.sg, j.uuid), Data: j.data})
	case callSnapVerifying:
		if !ok || !res.Resp.Succeeded {
			t.abandonSnapshot(p)
			return
		}
		j.recRev = res.Resp.Revision
		t.blob(call{kind: callSnapReadBack, sg: p.sg, gen: p.gen, job: j.id}, BlobRequest{Kind: BlobGet, Key: SnapshotBlobKey(p.sg, j.uuid)})
	case callSnapHead:
		if !ok {
			t.abandonSnapshot(p)
			return
		}
		var prev *SnapshotRecord
		if len(res.Resp.KVs) > 0 {
			r, err := ParseHead(p.sg, res.Resp.KVs[0])
			if err != nil {
				panic(sprintf("territory %d: %v", t.cfg.ID, err)) // heads are written only by the core
			}
			if r.LSN >= j.lsn {
				p.lastSnapLSN = max(p.lastSnapLSN, r.LSN)
				t.abandonSnapshot(p) // a snapshot at least as recent is committed
				return
			}
			prev = &r
			j.headRev = res.Resp.KVs[0].ModRevision
		}
		j.prev = prev
		t.commitSnapshot(p, j)
	case callSnapCommit:
		p.snap = nil
		if !ok || !res.Resp.Succeeded {
			p.snapRetryTick = t.ticks + snapRetryTicks
			return
		}
		p.lastSnapLSN = j.lsn
		p.snapAfterRec = false
		// Keep a copy on local disk: a restart on this host reads it instead
		// of the object store, after checking it like any blob.
		t.disk(call{kind: callCacheWrite, sg: p.sg, gen: p.gen}, DiskRequest{Kind: DiskWrite, Path: SnapshotCachePath(p.sg), Data: j.data})
		f := FactSnapshotCommitted{Territory: t.cfg.ID, Subgraph: p.sg, UUID: j.uuid, LSN: j.lsn}
		if j.prev != nil {
			f.Superseded = j.prev.UUID
		}
		t.out.Add(Observe{Fact: f})
	}
}

// commitSnapshot is the one transaction that makes a snapshot the committed
// one: the head's revision proves the previous committed snapshot is still
// the one we supersede, and the record's revision that nobody expired ours.
func (t *Territory) commitSnapshot(p *primary, j *snapJob) {
	rec := t.snapRecord(p, j, SnapCommitted)
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
	t.coord(call{kind: callSnapCommit, sg: p.sg, gen: p.gen, job: j.id}, req)
}

func (t *Territory) onSnapBlob(p *primary, c call, res BlobResult) {
	j := p.snap
	if j == nil || j.id != c.job {
		return
	}
	if res.Outcome != OutcomeOK {
		t.abandonSnapshot(p)
		return
	}
	switch c.kind {
	case callSnapUpload:
		rec := t.snapRecord(p, j, SnapVerifying)
		key := SnapshotKey(p.sg, j.uuid)
		t.coord(call{kind: callSnapVerifying, sg: p.sg, gen: p.gen, job: j.id}, PutIfVersion(key, rec.Encode(), j.recRev))
	case callSnapReadBack:
		if len(res.Resp.Data) != len(j.data) || CRC32C(res.Resp.Data) != j.checksum {
			t.abandonSnapshot(p) // a partial or corrupted upload is never committed
			return
		}
		t.coord(call{kind: callSnapHead, sg: p.sg, gen: p.gen, job: j.id}, CoordRequest{Kind: CoordGet, Key: SnapshotHeadKey(p.sg)})
	}
}

// ---- loading on recovery ----

// loadSnapshot lists the subgraph's snapshot records; recovery tries the
// committed one, then superseded ones from the newest, and falls back to the
// whole log when none is good.
func (t *Territory) loadSnapshot(p *primary) {
	t.coord(call{kind: callLoadRange, sg: p.sg, gen: p.gen}, CoordRequest{Kind: CoordRange, Key: SnapshotPrefix(p.sg)})
}

func (t *Territory) onLoadRange(p *primary, res CoordResult) {
	if res.Outcome != OutcomeOK {
		p.loadTries++
		if p.loadTries >= t.cfg.LoadAttempts {
			t.loaded(p, nil)
			return
		}
		t.after(timerLoad, p.sg, p.gen, p.loadTries)
		return
	}
	p.loadCands = p.loadCands[:0]
	for _, kv := range res.Resp.KVs {
		r, err := ParseSnapshotRecord(kv)
		if err != nil {
			panic(sprintf("territory %d: %v", t.cfg.ID, err))
		}
		if (r.State == SnapCommitted || r.State == SnapSuperseded) && r.Location != "" {
			p.loadCands = append(p.loadCands, r)
		}
	}
	slices.SortFunc(p.loadCands, func(a, b SnapshotRecord) int {
		if (a.State == SnapCommitted) != (b.State == SnapCommitted) {
			if a.State == SnapCommitted {
				return -1
			}
			return 1
		}
		switch {
		case a.LSN > b.LSN:
			return -1
		case a.LSN < b.LSN:
			return 1
		}
		return 0
	})
	p.loadTries, p.loadRejected = 0, 0
	if len(p.loadCands) == 0 {
		t.tryCandidate(p)
		return
	}
	t.disk(call{kind: callCacheRead, sg: p.sg, gen: p.gen}, DiskRequest{Kind: DiskRead, Path: SnapshotCachePath(p.sg)})
}

// SnapshotCachePath is where a territory keeps its local copy of a
// subgraph's latest snapshot.
func SnapshotCachePath(sg SubgraphID) string { return sprintf("snapcache/%05d.snap", sg) }

// onDisk handles the local snapshot cache. Local disk may lose unsynced
// writes, tear a write or return corrupt bytes: a cached snapshot is used only
// if its size and checksum are those of a committed or superseded record and
// it decodes to that record's subgraph and LSN.
func (t *Territory) onDisk(res DiskResult) {
	c, p, ok := t.takeCall(res.ReqID)
	if !ok {
		return
	}
	switch c.kind {
	case callCacheWrite:
		if res.Outcome == OutcomeOK {
			t.disk(call{kind: callCacheSync, sg: p.sg, gen: p.gen}, DiskRequest{Kind: DiskSync, Path: SnapshotCachePath(p.sg)})
		}
	case callCacheSync:
	case callCacheRead:
		if p.phase != phaseLoading {
			return
		}
		if res.Outcome == OutcomeOK {
			data := res.Resp.Data
			sum := CRC32C(data)
			for _, cand := range p.loadCands {
				if cand.Size != len(data) || cand.Checksum != sum {
					continue
				}
				if s, err := DecodeSnapshot(data); err == nil && s.ID == p.sg && s.Count == t.cfg.Subgraphs && s.AppliedLSN == cand.LSN {
					p.lastSnapLSN = cand.LSN
					p.loadCands = []SnapshotRecord{cand}
					p.fromCache = true
					t.loaded(p, s)
					return
				}
			}
		}
		t.tryCandidate(p)
	default:
		panic(sprintf("territory %d: disk result for call kind %d", t.cfg.ID, c.kind))
	}
}

func (t *Territory) tryCandidate(p *primary) {
	if len(p.loadCands) == 0 {
		t.loaded(p, nil)
		return
	}
	t.blob(call{kind: callLoadBlob, sg: p.sg, gen: p.gen}, BlobRequest{Kind: BlobGet, Key: p.loadCands[0].Location})
}

func (t *Territory) onLoadBlob(p *primary, res BlobResult) {
	if len(p.loadCands) == 0 {
		return
	}
	cand := p.loadCands[0]
	if res.Outcome == OutcomeTimeout || (res.Outcome == OutcomeFailed && res.Err != ErrNotFound) {
		p.loadTries++
		if p.loadTries < t.cfg.LoadAttempts {
			t.after(timerLoad, p.sg, p.gen, p.loadTries)
			return
		}
	}
	if res.Outcome == OutcomeOK && len(res.Resp.Data) == cand.Size && CRC32C(res.Resp.Data) == cand.Checksum {
		if s, err := DecodeSnapshot(res.Resp.Data); err == nil && s.ID == p.sg && s.Count == t.cfg.Subgraphs && s.AppliedLSN == cand.LSN {
			p.lastSnapLSN = cand.LSN
			t.loaded(p, s)
			return
		}
	}
	// Missing, partial or corrupt: never loaded. Try the next one.
	p.loadCands = p.loadCands[1:]
	p.loadTries = 0
	p.loadRejected++
	t.tryCandidate(p)
}

// loaded finishes loading (s nil: start from the empty state at LSN 0) and
// opens the log.
func (t *Territory) loaded(p *primary, s *SubgraphState) {
	f := FactSnapshotLoaded{Territory: t.cfg.ID, Subgraph: p.sg, Rejected: p.loadRejected, FromCache: p.fromCache}
	p.fromCache = false
	if s != nil {
		p.state = s
		f.UUID, f.LSN = p.loadCands[0].UUID, s.AppliedLSN
	}
	p.loadCands = nil
	t.out.Add(Observe{Fact: f})
	p.phase = phaseOpening
	t.open(p)
}
