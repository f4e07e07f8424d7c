package chaos

import (
	"context"
	"fmt"
	"hash/crc32"
	"log/slog"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"territory/model"
	"territory/runtime/blob"
	"territory/sim/invariants"
)

// snapshotView is what the snapshot checks read from the real services at
// the end of a run: every snapshot record and head in etcd, every blob key
// under the snapshot prefix of the bucket (listed twice, at least
// orphanQuietMs apart), and the blobs the COMMITTED records name.
type snapshotView struct {
	records   []model.KV
	heads     map[model.SubgraphID]model.KV
	keysEarly []string          // blob keys at the first listing
	keys      []string          // blob keys at the second listing, after the records were read
	blobs     map[string][]byte // by location: the COMMITTED records' blobs (absent: no such blob)
}

// orphanQuietMs: the manager deletes a blob with no record after its orphan
// period (3 s), an upload in flight is stale after 3 s, and it reconciles
// every 500 ms (FastControlPlane): a blob without a record in two listings
// this far apart is an orphan that reconciliation left.
const orphanQuietMs = 10_000

// listSnapshotBlobs lists the snapshot blobs of a run's bucket prefix.
func listSnapshotBlobs(ctx context.Context, bs *blob.Store) ([]string, error) {
	return bs.List(ctx, model.SnapshotBlobPrefix)
}

// openBucket opens the run's bucket prefix directly (not through a proxy).
func openBucket(ctx context.Context, svc Services, prefix string) (*blob.Store, error) {
	return blob.Open(ctx, []byte(svc.ObjstoreYAML(prefix)), slog.New(slog.DiscardHandler))
}

// readSnapshots reads the records, the heads and the COMMITTED blobs, then
// lists the blobs again (waiting until orphanQuietMs after the first listing).
func readSnapshots(ctx context.Context, cl *Cluster, bs *blob.Store, keysEarly []string, listedAt time.Time) (snapshotView, error) {
	v := snapshotView{keysEarly: keysEarly, heads: map[model.SubgraphID]model.KV{}, blobs: map[string][]byte{}}
	if d := time.Until(listedAt.Add(orphanQuietMs * time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
	co, err := cl.Coord()
	if err != nil {
		return v, err
	}
	resp, err := co.Client().Get(ctx, model.SnapshotsPrefix, clientv3.WithPrefix())
	if err != nil {
		return v, fmt.Errorf("read the snapshot records: %w", err)
	}
	for _, kv := range resp.Kvs {
		v.records = append(v.records, model.KV{Key: string(kv.Key), Value: kv.Value, ModRevision: kv.ModRevision})
	}
	for sg := model.SubgraphID(0); uint32(sg) < cl.Subgraphs; sg++ {
		hr, err := co.Client().Get(ctx, model.SnapshotHeadKey(sg))
		if err != nil {
			return v, fmt.Errorf("read snapshot head %d: %w", sg, err)
		}
		if len(hr.Kvs) == 1 {
			v.heads[sg] = model.KV{Key: string(hr.Kvs[0].Key), Value: hr.Kvs[0].Value, ModRevision: hr.Kvs[0].ModRevision}
		}
	}
	for _, kv := range v.records {
		r, err := model.ParseSnapshotRecord(kv)
		if err != nil || r.State != model.SnapCommitted || r.Location == "" {
			continue
		}
		got, se, err := bs.Do(ctx, model.BlobRequest{Kind: model.BlobGet, Key: r.Location})
		if err != nil {
			return v, fmt.Errorf("read blob %s: %w", r.Location, err)
		}
		if se == model.ErrNone {
			v.blobs[r.Location] = got.Data
		}
	}
	if v.keys, err = listSnapshotBlobs(ctx, bs); err != nil {
		return v, err
	}
	return v, nil
}

// checkSnapshots is the simulator's snapshot invariants on the real store:
//   - one-committed-snapshot: at most one COMMITTED record per subgraph, the
//     head names it, its blob exists with the record's size and CRC32C, it
//     decodes, and its state is the fold of the subgraph's real log at the
//     snapshot's LSN (the same digest), which the log reaches;
//   - no-orphan-blobs: no blob under the snapshot prefix is without a
//     record in both listings (orphanQuietMs apart: reconciliation had time).
//
// It returns the violations and how many COMMITTED snapshots it checked.
func checkSnapshots(atUs int64, v snapshotView, logs map[model.SubgraphID][]model.LogEntry, subgraphs uint32) ([]invariants.Violation, int) {
	var out []invariants.Violation
	violate := func(inv, format string, args ...any) {
		out = append(out, invariants.Violation{Invariant: inv, AtUs: atUs, Detail: fmt.Sprintf(format, args...)})
	}
	committed := map[model.SubgraphID][]model.SnapshotRecord{}
	recorded := map[string]bool{}
	for _, kv := range v.records {
		r, err := model.ParseSnapshotRecord(kv)
		if err != nil {
			violate(invariants.OneCommitted, "%v", err)
			continue
		}
		recorded[model.SnapshotBlobKey(r.Subgraph, r.UUID)] = true
		if r.Location != "" {
			recorded[r.Location] = true
		}
		if r.State == model.SnapCommitted {
			committed[r.Subgraph] = append(committed[r.Subgraph], r)
		}
	}
	checked := 0
	for sg := model.SubgraphID(0); uint32(sg) < subgraphs; sg++ {
		rs := committed[sg]
		if len(rs) > 1 {
			violate(invariants.OneCommitted, "subgraph %d has %d COMMITTED snapshots: %s and %s", sg, len(rs), rs[0].UUID, rs[1].UUID)
			continue
		}
		if len(rs) == 0 {
			continue
		}
		r := rs[0]
		checked++
		if head, ok := v.heads[sg]; !ok {
			violate(invariants.OneCommitted, "subgraph %d: snapshot %s COMMITTED but no head", sg, r.UUID)
		} else if h, err := model.ParseHead(sg, head); err != nil || h.UUID != r.UUID {
			violate(invariants.OneCommitted, "subgraph %d: snapshot %s COMMITTED but the head names %q (%v)", sg, r.UUID, h.UUID, err)
		}
		data, ok := v.blobs[r.Location]
		switch {
		case !ok:
			violate(invariants.OneCommitted, "subgraph %d: COMMITTED snapshot %s has no blob at %s", sg, r.UUID, r.Location)
			continue
		case len(data) != r.Size || crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) != r.Checksum:
			violate(invariants.OneCommitted, "subgraph %d: COMMITTED snapshot %s: blob of %d bytes does not match the record's size %d and checksum", sg, r.UUID, len(data), r.Size)
			continue
		}
		st, err := model.DecodeSnapshot(data)
		if err != nil {
			violate(invariants.OneCommitted, "subgraph %d: COMMITTED snapshot %s does not decode: %v", sg, r.UUID, err)
			continue
		}
		log := logs[sg]
		if st.AppliedLSN != r.LSN || st.AppliedLSN > uint64(len(log)) {
			violate(invariants.StateIsFoldOfLog, "subgraph %d: COMMITTED snapshot %s is at LSN %d (record: %d), the log's tail is %d", sg, r.UUID, st.AppliedLSN, r.LSN, len(log))
			continue
		}
		folds := invariants.NewFolds(subgraphs, model.GenesisPolicy())
		for _, e := range log[:st.AppliedLSN] {
			folds.Committed(atUs, sg, e)
		}
		if want := folds.State(sg); want.Digest() != st.Digest() {
			violate(invariants.StateIsFoldOfLog, "subgraph %d: COMMITTED snapshot %s at LSN %d has digest %016x, the fold of the log to that LSN %016x",
				sg, r.UUID, st.AppliedLSN, st.Digest(), want.Digest())
		}
	}
	for _, k := range v.keys {
		if !recorded[k] && slices.Contains(v.keysEarly, k) {
			violate(invariants.NoOrphans, "blob %s has no record in two listings %d ms apart", k, orphanQuietMs)
		}
	}
	return out, checked
}
