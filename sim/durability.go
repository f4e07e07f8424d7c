package sim

import (
	"hash/crc32"
	"slices"
	"strconv"
	"strings"

	"territory/faults"
	"territory/model"
	"territory/sim/invariants"
)

// durability watches the snapshot, recovery and garbage-collection protocols
// from the services' side, where the truth is: the coordination store's
// records, the object store's blobs, the committed log. It records RTO and
// checks the durability invariants: one-committed-snapshot, blob-retention,
// no-orphan-blobs and decay-bounded (the recovered state is the fold's, which
// the fold checker compares when a primary becomes operational).
type durability struct {
	v *View

	snapshotsCommitted int
	loadedSnapshot     int
	loadedLog          int
	rejected           int
	recoveries         int
	corruptions        int
	fromCache          int

	rtoUs        []int64 // adoption (restart or reassignment) to operational
	outageUs     []int64 // primary lost (crash, loss, pause) to operational again
	downSince    map[model.SubgraphID]int64
	adoptedAt    map[model.SubgraphID]int64
	supersededUs map[string]int64 // record key -> virtual time it became SUPERSEDED
	blobPutUs    map[string]int64 // blob key -> virtual time of its last put
	recordGoneUs map[string]int64 // record key -> virtual time it was deleted
	epochHB      map[model.SubgraphID][]epochHeartbeat
	corrupted    map[string]bool // blobs a fault damaged after they were written
	clockErrMs   int64           // bound on any two hosts' clock difference, from the schedule
	graceFloorUs int64           // the shortest grace a correct reconciler may give, in virtual time
	mgr          model.ManagerConfig
}

func newDurability(v *View) Checker {
	w := v.Config()
	d := &durability{v: v, downSince: map[model.SubgraphID]int64{}, supersededUs: map[string]int64{},
		blobPutUs: map[string]int64{}, recordGoneUs: map[string]int64{}, epochHB: map[model.SubgraphID][]epochHeartbeat{}, adoptedAt: map[model.SubgraphID]int64{}, corrupted: map[string]bool{}}
	d.mgr = model.DefaultManagerConfig(1, w.Subgraphs, []model.HostID{1})
	w.Manager.apply(&d.mgr)
	// Each host's clock error is at most the sum of its skews, jumps and
	// drifts; two hosts differ by at most twice the worst.
	perHost := map[string]int64{}
	var maxDriftPM int64
	for _, f := range w.Schedule.Faults {
		for _, h := range f.Hosts {
			switch f.Kind {
			case faults.ClockSkew, faults.ClockJump:
				perHost[h] += abs(f.ExtraMs)
			case faults.ClockDrift:
				perHost[h] += abs(f.RatePM) * f.DurationMs / 1_000_000
				maxDriftPM = max(maxDriftPM, abs(f.RatePM))
			}
		}
	}
	for _, v := range perHost {
		d.clockErrMs = max(d.clockErrMs, 2*v)
	}
	// The reconciler counts its grace in timer ticks; a fast clock makes them
	// short by its drift, and the first sighting may come a tick late or early.
	grace := (d.mgr.GraceMs - d.mgr.TickMs) * 1000
	d.graceFloorUs = grace * (1_000_000 - maxDriftPM) / 1_000_000
	return d
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func (d *durability) violate(name, format string, args ...any) { d.v.Violate(name, format, args...) }

func (*durability) Name() string { return "durability" }

func (d *durability) Observe(v *View, e BusEvent) {
	switch e := e.(type) {
	case CoordApplied:
		if e.Req.Kind == model.CoordTxn && e.Err == model.ErrNone {
			d.onTxn(e.Req, e.Resp.Succeeded)
		}
	case BlobApplied:
		d.onBlobOp(e.Req)
	case BlobCorrupted:
		d.corrupted[e.Key] = true
		d.corruptions++
	case EntryFolded:
		d.onCommit(e.Subgraph, e.Event, e.Applied, e.Entry.FirstSentUs, e.LastHeartbeatMs)
	case FactObserved:
		switch f := e.Fact.(type) {
		case model.FactOperational:
			d.operational(f)
		case model.FactSnapshotCommitted:
			d.snapshotsCommitted++
		case model.FactSnapshotLoaded:
			d.loaded(f)
		case model.FactAdopted:
			d.adopted(f)
		}
	case HostChanged:
		if e.Change == HostCrashed || e.Change == HostLost || e.Change == HostPaused {
			d.down(e.Host)
		}
	case Tick:
		if e.Kind == TickPeriodic {
			d.checkSnapshots()
		}
	}
}

func (d *durability) Final(*View) []invariants.Violation {
	d.finish()
	return nil
}

func (d *durability) Report(o *Outcome) {
	o.RTOUs, o.OutageUs, o.Durability = d.rtoUs, d.outageUs, d.stats()
}

// ---- RTO ----

// down marks every subgraph a host serves as down from now (crash, loss, pause).
func (d *durability) down(h model.HostID) {
	for _, sg := range d.v.Operational(h) {
		if _, ok := d.downSince[sg]; !ok {
			d.downSince[sg] = d.v.NowUs()
		}
	}
}

func (d *durability) adopted(f model.FactAdopted) { d.adoptedAt[f.Subgraph] = d.v.NowUs() }

func (d *durability) operational(f model.FactOperational) {
	now := d.v.NowUs()
	if at, ok := d.downSince[f.Subgraph]; ok {
		d.outageUs = append(d.outageUs, now-at)
		delete(d.downSince, f.Subgraph)
		if adopted, ok := d.adoptedAt[f.Subgraph]; ok {
			d.rtoUs = append(d.rtoUs, now-adopted)
		}
	}
	delete(d.adoptedAt, f.Subgraph)
}

func (d *durability) loaded(f model.FactSnapshotLoaded) {
	d.rejected += f.Rejected
	if f.FromCache {
		d.fromCache++
	}
	if f.UUID != "" {
		d.loadedSnapshot++
	} else {
		d.loadedLog++
	}
}

// ---- hooks at the services ----

// onTxn sees every successful coordination transaction: when a snapshot
// record becomes SUPERSEDED is the start of its grace period.
func (d *durability) onTxn(req model.CoordRequest, succeeded bool) {
	ops := req.Else
	if succeeded {
		ops = req.Then
	}
	for _, op := range ops {
		if !strings.HasPrefix(op.Key, model.SnapshotsPrefix) {
			continue
		}
		if op.Kind == model.TxnDelete {
			d.recordGoneUs[op.Key] = d.v.NowUs()
			continue
		}
		r, err := model.ParseSnapshotRecord(model.KV{Key: op.Key, Value: op.Value})
		if err != nil {
			d.violate(invariants.OneCommitted, "unparsable snapshot record %s: %v", op.Key, err)
			continue
		}
		if _, seen := d.supersededUs[op.Key]; r.State == model.SnapSuperseded && !seen {
			d.supersededUs[op.Key] = d.v.NowUs()
		}
	}
}

// parseBlobKey returns the record key of a snapshot blob key.
func parseBlobKey(key string) (model.SubgraphID, string, bool) {
	rest, ok := strings.CutPrefix(key, model.SnapshotBlobPrefix)
	if !ok {
		return 0, "", false
	}
	sgText, file, ok := strings.Cut(rest, "/")
	uuid, isSnap := strings.CutSuffix(file, ".snap")
	n, err := strconv.ParseUint(sgText, 10, 32)
	if !ok || !isSnap || err != nil {
		return 0, "", false
	}
	return model.SubgraphID(n), uuid, true
}

// onBlobOp sees every object-store operation as it is applied.
func (d *durability) onBlobOp(req model.BlobRequest) {
	now := d.v.NowUs()
	switch req.Kind {
	case model.BlobPut:
		d.blobPutUs[req.Key] = now
		delete(d.corrupted, req.Key)
	case model.BlobDelete:
		sg, uuid, ok := parseBlobKey(req.Key)
		if !ok {
			return
		}
		recKey := model.SnapshotKey(sg, uuid)
		if kv, ok := d.v.CoordPeek(recKey); ok {
			if r, err := model.ParseSnapshotRecord(kv); err == nil && r.State == model.SnapCommitted {
				d.violate(invariants.BlobRetention, "blob %s deleted while its record is COMMITTED", req.Key)
			}
		}
		if head, ok := d.v.CoordPeek(model.SnapshotHeadKey(sg)); ok {
			if r, err := model.ParseHead(sg, head); err == nil && r.UUID == uuid {
				d.violate(invariants.BlobRetention, "blob %s deleted while the subgraph's head names it", req.Key)
			}
		}
		if at, ok := d.supersededUs[recKey]; ok && now-at < d.graceFloorUs {
			d.violate(invariants.BlobRetention, "blob %s deleted %dms after it was superseded; grace is %dms", req.Key, (now-at)/1000, d.mgr.GraceMs)
		}
	}
}

// onCommit sees every entry the log commits, after the fold applied it;
// firstAppendUs is when its writer first sent it (0: unknown).
//
// Decay is bounded by checking the clocks it is computed from: every event's
// timestamp (a write's or heartbeat's writer clock, a recovery's control-plane
// clock) must be within the clock-error bound of the true time it was taken,
// which is at most the first append. Then a recovery's decay, the recovery
// timestamp minus the last heartbeat, exceeds the true downtime by at most
// twice that bound.
func (d *durability) onCommit(sg model.SubgraphID, ev model.Event, applied bool, firstAppendUs int64, heartbeatMs int64) {
	if applied && ev.Type == model.EvTerritoryRecovered {
		d.checkDecayBase(sg, &ev)
	}
	if applied {
		hs := d.epochHB[sg]
		if n := len(hs); n > 0 && hs[n-1].epoch == ev.WriterEpoch {
			hs[n-1].hb = heartbeatMs
		} else {
			d.epochHB[sg] = append(hs, epochHeartbeat{epoch: ev.WriterEpoch, hb: heartbeatMs})
		}
	}
	if firstAppendUs > 0 && ev.TimestampMs != 0 {
		const slackMs = 2_000 // queueing and message latency between taking the time and appending
		trueMs := firstAppendUs / 1000
		// A recovery is stamped by the control plane and may wait in the
		// primary's queue behind a slow append: only a stamp too late (more
		// decay) matters. A writer stamps at append time: both ways count,
		// and one too early (an old heartbeat: more decay) is the danger.
		tooEarly := ev.Type != model.EvTerritoryRecovered && ev.TimestampMs < trueMs-d.clockErrMs-slackMs
		if tooEarly || ev.TimestampMs > trueMs+d.clockErrMs+slackMs {
			d.violate(invariants.DecayBounded, "subgraph %d: %s at LSN %d is stamped %dms, but was appended at %dms (clock error bound %dms)",
				sg, ev.Type, ev.LSN, ev.TimestampMs, trueMs, d.clockErrMs)
		}
	}
	if applied && ev.Type == model.EvTerritoryRecovered {
		d.recoveries++
	}
}

// epochHeartbeat is the fold's last heartbeat after the last event of an epoch.
type epochHeartbeat struct {
	epoch uint64
	hb    int64
}

// checkDecayBase: a recovery decays from the last heartbeat the log held when
// the recovering claim began, that is after every event of the epochs before
// it (a fenced open lets none of them commit later). A base that is later
// (writes that reached the new primary first) loses decay; an earlier one
// adds decay.
func (d *durability) checkDecayBase(sg model.SubgraphID, ev *model.Event) {
	recoveryEpoch := ev.UUID.Lo // RecoveryUUID: the epoch whose claim was the recovery
	var want int64
	for _, h := range d.epochHB[sg] {
		if h.epoch >= recoveryEpoch {
			break
		}
		want = h.hb
	}
	if ev.Recovery.LastHeartbeatMs != want {
		d.violate(invariants.DecayBounded, "subgraph %d: recovery of epoch %d at LSN %d decays from heartbeat %dms, but the last heartbeat before that epoch is %dms",
			sg, recoveryEpoch, ev.LSN, ev.Recovery.LastHeartbeatMs, want)
	}
}

// ---- snapshot invariants ----

// checkSnapshots: at most one COMMITTED snapshot per subgraph, the head names
// it, and its blob exists with the record's checksum (unless a fault damaged
// the blob after it was written: then recovery must skip it, which the fold
// check covers).
func (d *durability) checkSnapshots() {
	for sg := model.SubgraphID(0); uint32(sg) < d.v.Config().Subgraphs; sg++ {
		var committed []model.SnapshotRecord
		for _, kv := range d.v.CoordPeekPrefix(model.SnapshotPrefix(sg)) {
			r, err := model.ParseSnapshotRecord(kv)
			if err != nil {
				d.violate(invariants.OneCommitted, "subgraph %d: %v", sg, err)
				continue
			}
			if r.State == model.SnapCommitted {
				committed = append(committed, r)
			}
		}
		if len(committed) > 1 {
			d.violate(invariants.OneCommitted, "subgraph %d has %d COMMITTED snapshots: %s and %s", sg, len(committed), committed[0].UUID, committed[1].UUID)
			continue
		}
		if len(committed) == 0 {
			continue
		}
		r := committed[0]
		if head, ok := d.v.CoordPeek(model.SnapshotHeadKey(sg)); !ok {
			d.violate(invariants.OneCommitted, "subgraph %d: snapshot %s COMMITTED but no head", sg, r.UUID)
		} else if h, err := model.ParseHead(sg, head); err != nil || h.UUID != r.UUID {
			d.violate(invariants.OneCommitted, "subgraph %d: snapshot %s COMMITTED but the head names %s (%v)", sg, r.UUID, h.UUID, err)
		}
		data, ok := d.v.Blob(r.Location)
		switch {
		case !ok:
			d.violate(invariants.OneCommitted, "subgraph %d: COMMITTED snapshot %s has no blob at %s", sg, r.UUID, r.Location)
		case d.corrupted[r.Location]:
		case len(data) != r.Size || crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) != r.Checksum:
			d.violate(invariants.OneCommitted, "subgraph %d: COMMITTED snapshot %s: blob of %d bytes does not match the record's checksum", sg, r.UUID, len(data))
		}
	}
}

// finish runs the end-of-run checks. The run ends after the drain, when the
// reconciler has had several passes with no faults.
func (d *durability) finish() {
	d.checkSnapshots()
	now := d.v.NowUs()
	quiet := (max(d.mgr.OrphanMs, d.mgr.StaleUploadMs) + 3*d.mgr.ReconcileMs + d.mgr.BlobTimeoutMs) * 1000
	for _, key := range d.v.BlobKeys(model.SnapshotBlobPrefix) {
		sg, uuid, ok := parseBlobKey(key)
		if !ok {
			continue
		}
		// An orphan since the later of its upload and its record's deletion.
		recKey := model.SnapshotKey(sg, uuid)
		since := max(d.blobPutUs[key], d.recordGoneUs[recKey])
		if _, has := d.v.CoordPeek(recKey); !has && now-since > quiet {
			d.violate(invariants.NoOrphans, "blob %s has had no record for %dms", key, (now-since)/1000)
		}
	}
	keys := make([]string, 0, len(d.supersededUs))
	for k := range d.supersededUs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	graceDone := (d.mgr.GraceMs + 3*d.mgr.ReconcileMs + d.mgr.BlobTimeoutMs) * 1000
	for _, k := range keys {
		kv, ok := d.v.CoordPeek(k)
		if !ok || now-d.supersededUs[k] <= graceDone {
			continue
		}
		if r, err := model.ParseSnapshotRecord(kv); err == nil && r.State == model.SnapSuperseded {
			d.violate(invariants.NoOrphans, "snapshot %s SUPERSEDED %dms ago is still kept (grace %dms)", k, (now-d.supersededUs[k])/1000, d.mgr.GraceMs)
		}
	}
}

// DurabilityStats are the durability figures of one run.
type DurabilityStats struct {
	SnapshotsCommitted int `json:"snapshots_committed"`
	LoadedFromSnapshot int `json:"recoveries_from_snapshot"`
	LoadedFromLog      int `json:"recoveries_from_log_only"`
	RejectedSnapshots  int `json:"snapshots_rejected_on_load"`
	RecoveryEvents     int `json:"territory_recovered_events"`
	BlobsCorrupted     int `json:"blobs_corrupted"`
	LoadedFromCache    int `json:"recoveries_from_local_cache"`
	DiskFaults         int `json:"disk_faults_injected"`
}

func (d *durability) stats() DurabilityStats {
	return DurabilityStats{SnapshotsCommitted: d.snapshotsCommitted, LoadedFromSnapshot: d.loadedSnapshot, LoadedFromLog: d.loadedLog,
		RejectedSnapshots: d.rejected, RecoveryEvents: d.recoveries, BlobsCorrupted: d.corruptions,
		LoadedFromCache: d.fromCache}
}
