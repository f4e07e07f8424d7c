//go:build integration

package e2e

import (
	"context"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"territory/model"
	"territory/runtime/blob"
)

// snapshotRecords lists a subgraph's snapshot records in etcd.
func snapshotRecords(t testing.TB, c *cluster, sg model.SubgraphID) []model.SnapshotRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, se, err := c.coord().Do(ctx, model.CoordRequest{Kind: model.CoordRange, Key: model.SnapshotPrefix(sg)})
	if err != nil || se != model.ErrNone {
		t.Fatalf("snapshot records of subgraph %d: %v %v", sg, se, err)
	}
	out := make([]model.SnapshotRecord, 0, len(r.KVs))
	for _, kv := range r.KVs {
		rec, err := model.ParseSnapshotRecord(kv)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// snapshotHead reads the record that snapshot-heads/<sg> names.
func snapshotHead(t testing.TB, c *cluster, sg model.SubgraphID) (model.SnapshotRecord, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, se, err := c.coord().Do(ctx, model.CoordRequest{Kind: model.CoordGet, Key: model.SnapshotHeadKey(sg)})
	if err != nil || se != model.ErrNone {
		t.Fatalf("snapshot head of subgraph %d: %v %v", sg, se, err)
	}
	if len(r.KVs) == 0 {
		return model.SnapshotRecord{}, false
	}
	rec, err := model.ParseHead(sg, r.KVs[0])
	if err != nil {
		t.Fatal(err)
	}
	return rec, true
}

// waitHead waits until the head of sg names a snapshot at or above lsn.
func waitHead(t testing.TB, c *cluster, sg model.SubgraphID, lsn uint64, d time.Duration) model.SnapshotRecord {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if h, ok := snapshotHead(t, c, sg); ok && h.LSN >= lsn {
			return h
		}
		if time.Now().After(deadline) {
			h, _ := snapshotHead(t, c, sg)
			t.Fatalf("subgraph %d: no committed snapshot at lsn >= %d within %s (head %+v)", sg, lsn, d, h)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func blobGet(t testing.TB, bs *blob.Store, key string) ([]byte, model.ServiceErr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, se, err := bs.Do(ctx, model.BlobRequest{Kind: model.BlobGet, Key: key})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return resp.Data, se
}

// checkCommitted checks the head's record: COMMITTED in etcd, the only
// committed one of its subgraph, its blob in S3 with its size and checksum,
// and its content the fold of the log up to its LSN.
func checkCommitted(t testing.TB, c *cluster, bs *blob.Store, head model.SnapshotRecord, evs []model.Event) {
	t.Helper()
	committed := 0
	for _, r := range snapshotRecords(t, c, head.Subgraph) {
		if r.State == model.SnapCommitted {
			committed++
			if r.UUID != head.UUID || r.LSN != head.LSN || r.Location != head.Location || r.Checksum != head.Checksum || r.Size != head.Size {
				t.Errorf("committed record %+v, head %+v", r, head)
			}
		}
	}
	if committed != 1 {
		t.Errorf("subgraph %d: %d COMMITTED records", head.Subgraph, committed)
	}
	if head.State != model.SnapCommitted || head.Location != model.SnapshotBlobKey(head.Subgraph, head.UUID) {
		t.Errorf("head %+v", head)
	}
	data, se := blobGet(t, bs, head.Location)
	if se != model.ErrNone {
		t.Fatalf("blob %s of the committed snapshot: %v", head.Location, se)
	}
	if len(data) != head.Size || crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) != head.Checksum {
		t.Fatalf("blob %s: %d bytes crc %08x, record says %d bytes crc %08x", head.Location, len(data), crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)), head.Size, head.Checksum)
	}
	snap, err := model.DecodeSnapshot(data)
	if err != nil || snap.ID != head.Subgraph || snap.AppliedLSN != head.LSN {
		t.Fatalf("blob %s decodes to subgraph %v lsn %v: %v", head.Location, snap.ID, snap.AppliedLSN, err)
	}
	if int(head.LSN) > len(evs) {
		t.Fatalf("snapshot at lsn %d beyond the log's %d entries", head.LSN, len(evs))
	}
	fold := foldEvents(c, head.Subgraph, evs[:head.LSN])
	if fold.Digest() != snap.Digest() {
		t.Errorf("snapshot %s at lsn %d differs from the fold of the log up to it", head.UUID, head.LSN)
	}
}

// waitGone waits until neither the record nor the blob of a snapshot exists.
func waitGone(t testing.TB, c *cluster, bs *blob.Store, sg model.SubgraphID, uuid string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		rec := false
		for _, r := range snapshotRecords(t, c, sg) {
			rec = rec || r.UUID == uuid
		}
		_, se := blobGet(t, bs, model.SnapshotBlobKey(sg, uuid))
		if !rec && se == model.ErrNotFound {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot %s: record present %v, blob %v, %s after it was superseded", uuid, rec, se, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// loadedRecord is the last "snapshot loaded" record of subgraph sg.
func loadedRecord(t testing.TB, p *proc, sg model.SubgraphID) map[string]any {
	t.Helper()
	var last map[string]any
	p.waitRecords(30*time.Second, fmt.Sprintf("snapshot load of subgraph %d", sg), func(rs []map[string]any) bool {
		for _, r := range rs {
			if str(r, "msg") == "snapshot loaded" && num(r, "subgraph") == int64(sg) {
				last = r
			}
		}
		return last != nil
	})
	return last
}

// checkReadsMatchLog reads every neuron through a client and compares it
// with the fold of the log.
func checkReadsMatchLog(t testing.TB, c *cluster, addr string, led *ledger, sg model.SubgraphID, ns []model.NeuronID) {
	t.Helper()
	logs := checkAckedInLog(t, c, led, []model.SubgraphID{sg})
	st := foldEvents(c, sg, logs[sg])
	cl := dial(t, addr)
	acked, _ := led.sums()
	for _, n := range ns {
		r := readNeuron(t, cl, n)
		f, ok := st.Neuron(n)
		if !r.Exists || !ok || r.Value != f.Potential {
			t.Errorf("neuron %d: read exists=%v potential %d, fold exists=%v potential %d", n, r.Exists, r.Value, ok, f.Potential)
		}
		if r.Value > acked[n] || r.Value < acked[n]*9/10 {
			t.Errorf("neuron %d: potential %d, acknowledged stimulations %d", n, r.Value, acked[n])
		}
	}
}

// TestSnapshotsOnS3: with policy.snapshot_every 20, snapshots go to S3 while
// clients write. The snapshot-heads/ key in etcd names the one COMMITTED
// record, whose blob is in S3 with its checksum and equals the fold of the
// log up to its LSN; superseded snapshots lose record and blob after the
// grace period. After kill -9, recovery loads the committed snapshot from S3
// (not from a local cache: there is none) and replays only the rest.
func TestSnapshotsOnS3(t *testing.T) {
	c := newCluster(t, clusterOpts{subgraphs: 2, runs: [][]uint32{{1}}, policy: "  snapshot_every: 20"})
	bs := c.blobs()
	mgr := c.startManager()
	run := c.startRun(0, true)
	cl := dial(t, c.runAddrs[0])
	led := newLedger()
	ns := neuronsIn(0, c.opts.subgraphs, 4, 1)
	for _, n := range ns {
		mustDo(t, cl, model.Request{Op: model.OpCreateNeuron, Neuron: n})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < 70; i++ {
		if ok, err := led.do(ctx, cl, model.Request{Op: model.OpStimulate, Neuron: ns[i%len(ns)], Value: int64(1000 + i)}); !ok || err != nil {
			t.Fatalf("stimulation %d: acknowledged %v, %v", i, ok, err)
		}
	}
	head := waitHead(t, c, 0, 60, 30*time.Second)
	l := c.openLog()
	_, evs := readEvents(t, l, 0)
	checkCommitted(t, c, bs, head, evs)

	// Every snapshot this host superseded loses record and blob after the grace period.
	var superseded []string
	for _, r := range run.records() {
		if str(r, "msg") == "snapshot committed" && num(r, "subgraph") == 0 && str(r, "superseded") != "" {
			superseded = append(superseded, str(r, "superseded"))
		}
	}
	if len(superseded) < 2 {
		t.Fatalf("subgraph 0: %d superseded snapshots after %d events (want >= 2)", len(superseded), len(evs))
	}
	for _, uuid := range superseded {
		waitGone(t, c, bs, 0, uuid, 20*time.Second)
	}
	t.Logf("subgraph 0: %d log entries; committed snapshot %s at lsn %d (%d bytes); %d superseded snapshots collected",
		len(evs), head.UUID, head.LSN, head.Size, len(superseded))

	run.kill()
	head, ok := snapshotHead(t, c, 0) // nothing commits a snapshot any more
	if !ok {
		t.Fatal("no head after the kill")
	}
	run = c.startRun(0, true)
	lr := loadedRecord(t, run, 0)
	if str(lr, "uuid") != head.UUID || num(lr, "lsn") != int64(head.LSN) || num(lr, "rejected") != 0 || lr["from_cache"] != false {
		t.Errorf("recovery loaded %v, want snapshot %s at lsn %d from S3", lr, head.UUID, head.LSN)
	}
	ops := operational(run.records())
	t.Logf("recovery: loaded snapshot %s (lsn %d) from S3, operational at lsn %d", str(lr, "uuid"), num(lr, "lsn"), num(ops[0], "applied_lsn"))
	waitRecovered(t, c, []model.SubgraphID{0}, map[model.SubgraphID]uint64{0: uint64(len(evs))}, 30*time.Second)
	checkReadsMatchLog(t, c, c.runAddrs[0], led, 0, ns)
	run.term()
	mgr.term()
}

// TestCorruptSnapshotFallsBackToLog: the committed snapshot's blob in S3 is
// overwritten with garbage while the host is down. Recovery rejects it (its
// checksum fails), replays the whole log instead, loses no acknowledged
// write, and the background snapshot after the recovery commits a good
// snapshot that supersedes the corrupt one.
func TestCorruptSnapshotFallsBackToLog(t *testing.T) {
	c := newCluster(t, clusterOpts{subgraphs: 2, runs: [][]uint32{{1}}, policy: "  snapshot_every: 20"})
	bs := c.blobs()
	mgr := c.startManager()
	run := c.startRun(0, true)
	cl := dial(t, c.runAddrs[0])
	led := newLedger()
	ns := neuronsIn(0, c.opts.subgraphs, 3, 1)
	for _, n := range ns {
		mustDo(t, cl, model.Request{Op: model.OpCreateNeuron, Neuron: n})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < 45; i++ {
		if ok, err := led.do(ctx, cl, model.Request{Op: model.OpStimulate, Neuron: ns[i%len(ns)], Value: int64(2000 + i)}); !ok || err != nil {
			t.Fatalf("stimulation %d: acknowledged %v, %v", i, ok, err)
		}
	}
	t0 := time.Now()
	waitHead(t, c, 0, 40, 30*time.Second)
	// Wait until the committed snapshot is the only one left (superseded ones
	// are collected), so that recovery has nothing to fall back to but the log.
	deadline := time.Now().Add(20 * time.Second)
	for len(snapshotRecords(t, c, 0)) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("snapshot records of subgraph 0: %+v", snapshotRecords(t, c, 0))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the committed snapshot is the only one left %v after it was written", time.Since(t0).Round(time.Millisecond))
	run.kill()
	head, _ := snapshotHead(t, c, 0)
	_, evs := readEvents(t, c.openLog(), 0)
	put, cancelPut := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelPut()
	garbage := []byte("this is not a snapshot: overwritten by TestCorruptSnapshotFallsBackToLog")
	if _, se, err := bs.Do(put, model.BlobRequest{Kind: model.BlobPut, Key: head.Location, Data: garbage}); err != nil || se != model.ErrNone {
		t.Fatalf("overwrite %s: %v %v", head.Location, se, err)
	}

	run = c.startRun(0, true)
	lr := loadedRecord(t, run, 0)
	if str(lr, "uuid") != "" || num(lr, "rejected") != 1 || num(lr, "lsn") != 0 {
		t.Errorf("recovery after corrupting %s: %v, want the snapshot rejected and the whole log replayed", head.UUID, lr)
	}
	ops := operational(run.records())
	if got := num(ops[0], "applied_lsn"); got < int64(len(evs)) {
		t.Errorf("operational at lsn %d, the log has %d entries", got, len(evs))
	}
	t.Logf("recovery rejected the corrupt snapshot %s (lsn %d) and replayed %d entries from the log", head.UUID, head.LSN, num(ops[0], "applied_lsn"))
	waitRecovered(t, c, []model.SubgraphID{0}, map[model.SubgraphID]uint64{0: uint64(len(evs))}, 30*time.Second)
	checkReadsMatchLog(t, c, c.runAddrs[0], led, 0, ns)

	// The snapshot that follows the recovery replaces the corrupt one.
	fresh := waitHead(t, c, 0, uint64(len(evs)), 30*time.Second)
	if fresh.UUID == head.UUID {
		t.Fatalf("the corrupt snapshot %s is still the head", head.UUID)
	}
	t.Logf("snapshot %s at lsn %d committed after the recovery; the corrupt one is superseded", fresh.UUID, fresh.LSN)
	_, evs = readEvents(t, c.openLog(), 0)
	checkCommitted(t, c, bs, fresh, evs)
	waitGone(t, c, bs, 0, head.UUID, 20*time.Second)
	run.term()
	mgr.term()
}
