package chaos

import (
	"hash/crc32"
	"strings"
	"testing"

	"territory/model"
	"territory/sim/invariants"
)

// snapFixture: a log of subgraph 0, a snapshot of its fold at the tail
// committed in etcd's records and head, and its blob in the bucket.
func snapFixture(t *testing.T) (*fixture, snapshotView, model.SnapshotRecord) {
	f := newFixture(t)
	n := neuron0()
	f.write(t, model.Request{Op: model.OpCreateNeuron, Neuron: n}, model.Event{Type: model.EvCreateNeuron, Neuron: n}, true)
	f.write(t, model.Request{Op: model.OpStimulate, Neuron: n, Value: 3 * model.FixedOne}, model.Event{Type: model.EvStimulate, Neuron: n, Value: 3 * model.FixedOne}, true)
	data := model.EncodeSnapshot(f.st)
	r := model.SnapshotRecord{Subgraph: 0, UUID: "u1", State: model.SnapCommitted, LSN: f.st.AppliedLSN, Territory: 1, Epoch: 1,
		Location: model.SnapshotBlobKey(0, "u1"), Checksum: crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)), Size: len(data)}
	v := snapshotView{
		records:   []model.KV{{Key: model.SnapshotKey(0, r.UUID), Value: r.Encode()}},
		heads:     map[model.SubgraphID]model.KV{0: {Key: model.SnapshotHeadKey(0), Value: model.HeadValue(&r)}},
		keysEarly: []string{r.Location}, keys: []string{r.Location},
		blobs: map[string][]byte{r.Location: data},
	}
	return f, v, r
}

func wantSnapViolation(t *testing.T, name string, vs []invariants.Violation, inv, detail string) {
	t.Helper()
	for _, v := range vs {
		if v.Invariant == inv && strings.Contains(v.Detail, detail) {
			return
		}
	}
	t.Errorf("%s: no %s violation naming %q: %v", name, inv, detail, vs)
}

func TestSnapshotChecksPassOnAGoodSnapshot(t *testing.T) {
	f, v, _ := snapFixture(t)
	vs, checked := checkSnapshots(0, v, f.logs, fixtureSubgraphs)
	if len(vs) != 0 || checked != 1 {
		t.Fatalf("a good snapshot: %d checked, %v", checked, vs)
	}
}

// Each planted violation of the snapshot invariants is caught.
func TestSnapshotChecksCatchPlantedViolations(t *testing.T) {
	for _, tc := range []struct {
		name, inv, detail string
		plant             func(f *fixture, v *snapshotView, r model.SnapshotRecord)
	}{
		{"two committed", invariants.OneCommitted, "2 COMMITTED", func(f *fixture, v *snapshotView, r model.SnapshotRecord) {
			r2 := r
			r2.UUID = "u2"
			v.records = append(v.records, model.KV{Key: model.SnapshotKey(0, "u2"), Value: r2.Encode()})
		}},
		{"no head", invariants.OneCommitted, "no head", func(f *fixture, v *snapshotView, r model.SnapshotRecord) { delete(v.heads, 0) }},
		{"head names another", invariants.OneCommitted, "head names", func(f *fixture, v *snapshotView, r model.SnapshotRecord) {
			r.UUID = "u9"
			v.heads[0] = model.KV{Key: model.SnapshotHeadKey(0), Value: model.HeadValue(&r)}
		}},
		{"blob missing", invariants.OneCommitted, "has no blob", func(f *fixture, v *snapshotView, r model.SnapshotRecord) { delete(v.blobs, r.Location) }},
		{"blob damaged", invariants.OneCommitted, "checksum", func(f *fixture, v *snapshotView, r model.SnapshotRecord) {
			b := append([]byte(nil), v.blobs[r.Location]...)
			b[len(b)/2] ^= 1
			v.blobs[r.Location] = b
		}},
		{"state not the fold", invariants.StateIsFoldOfLog, "the fold of the log", func(f *fixture, v *snapshotView, r model.SnapshotRecord) {
			st, _ := model.DecodeSnapshot(v.blobs[r.Location])
			st.Apply(&model.Event{Type: model.EvStimulate, Neuron: neuron0(), Value: model.FixedOne, LSN: st.AppliedLSN + 1, Subgraph: 0, WriterEpoch: 1, UUID: model.EventUUID{Hi: 5, Lo: 5}})
			st.AppliedLSN--
			data := model.EncodeSnapshot(st)
			r.Checksum, r.Size = crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)), len(data)
			v.records[0].Value, v.blobs[r.Location] = r.Encode(), data
			v.heads[0] = model.KV{Key: model.SnapshotHeadKey(0), Value: model.HeadValue(&r)}
		}},
		{"snapshot ahead of the log", invariants.StateIsFoldOfLog, "the log's tail", func(f *fixture, v *snapshotView, r model.SnapshotRecord) {
			f.logs[0] = f.logs[0][:len(f.logs[0])-1]
		}},
		{"orphan blob", invariants.NoOrphans, "no record", func(f *fixture, v *snapshotView, r model.SnapshotRecord) {
			k := model.SnapshotBlobKey(1, "lost")
			v.keysEarly, v.keys = append(v.keysEarly, k), append(v.keys, k)
		}},
	} {
		f, v, r := snapFixture(t)
		tc.plant(f, &v, r)
		vs, _ := checkSnapshots(0, v, f.logs, fixtureSubgraphs)
		wantSnapViolation(t, tc.name, vs, tc.inv, tc.detail)
	}
	// A blob that appears only in the second listing is an upload in flight, not an orphan.
	f, v, _ := snapFixture(t)
	v.keys = append(v.keys, model.SnapshotBlobKey(1, "new"))
	if vs, _ := checkSnapshots(0, v, f.logs, fixtureSubgraphs); len(vs) != 0 {
		t.Errorf("a fresh blob was an orphan: %v", vs)
	}
}
