package sim

import (
	"testing"

	"territory/model"
	"territory/sim/invariants"
)

// migStore drives a test world's coordination store with migration writes
// and publishes each as the world does.
type migStore struct {
	t   *testing.T
	w   *World
	rec model.MigrationRecord
}

func (m *migStore) apply(req model.CoordRequest) model.CoordResponse {
	resp, err := m.w.coord.Apply(0, 0, req)
	m.w.publish(CoordApplied{Req: req, Resp: resp, Err: err})
	return resp
}

// to moves the record by the model's own CAS (which refuses what the machine lacks).
func (m *migStore) to(s model.MigrationState) {
	next := m.rec
	next.State = s
	if m.rec.State == model.MigFailed && s == model.MigPending {
		next.Epoch, next.Attempts = m.rec.Epoch+1, m.rec.Attempts+1
	}
	req, err := model.MigrationCAS(m.rec, next)
	if err != nil {
		m.t.Fatal(err)
	}
	resp := m.apply(req)
	if !resp.Succeeded {
		m.t.Fatalf("CAS to %s failed", s)
	}
	next.ModRevision = resp.Revision
	m.rec = next
}

// plant writes a record value without any check, as a buggy manager would.
func (m *migStore) plant(r model.MigrationRecord) {
	m.apply(model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnPut, Key: model.MigrationKey(r.Subgraph), Value: r.Encode()}}})
}

func newMigStore(t *testing.T) *migStore {
	m := &migStore{t: t, w: testWorld(t)}
	resp := m.apply(model.MigrationCreate(2, 2, 1, 0))
	m.rec = model.MigrationRecord{Subgraph: 2, State: model.MigPending, Epoch: 1, To: 2, Attempts: 1, ModRevision: resp.Revision}
	return m
}

func TestMigrationCheckerAcceptsTheSeedPaths(t *testing.T) {
	m := newMigStore(t)
	for _, s := range []model.MigrationState{model.MigSnapshotStreaming, model.MigRouteFlipped, model.MigFailed, model.MigPending,
		model.MigSnapshotStreaming, model.MigRouteFlipped, model.MigCatchupStreaming, model.MigCatchupStreaming, model.MigSyncComplete, model.MigCommitted} {
		m.to(s)
	}
	m.apply(model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnDelete, Key: model.MigrationKey(2)}}})
	if len(m.w.violations) > 0 {
		t.Fatalf("a legal history flagged: %v", m.w.violations)
	}
}

func TestMigrationCheckerCatchesIllegalTransitions(t *testing.T) {
	cases := []struct {
		name   string
		plant  func(m *migStore)
		detail string
	}{
		{"skip to committed", func(m *migStore) {
			r := m.rec
			r.State = model.MigCommitted
			m.plant(r)
		}, "PENDING -> COMMITTED"},
		{"fail from pending", func(m *migStore) {
			r := m.rec
			r.State = model.MigFailed
			m.plant(r)
		}, "PENDING -> FAILED"},
		{"sync complete fails", func(m *migStore) {
			for _, s := range []model.MigrationState{model.MigSnapshotStreaming, model.MigRouteFlipped, model.MigCatchupStreaming, model.MigSyncComplete} {
				m.to(s)
			}
			r := m.rec
			r.State = model.MigFailed
			m.plant(r)
		}, "SYNC_COMPLETE -> FAILED"},
		{"flip back", func(m *migStore) {
			m.to(model.MigSnapshotStreaming)
			m.to(model.MigRouteFlipped)
			r := m.rec
			r.State = model.MigSnapshotStreaming
			m.plant(r)
		}, "ROUTE_FLIPPED -> SNAPSHOT_STREAMING"},
		{"epoch moves outside a retry", func(m *migStore) {
			r := m.rec
			r.State, r.Epoch = model.MigSnapshotStreaming, 9
			m.plant(r)
		}, "outside a retry"},
		{"retry without epoch bump", func(m *migStore) {
			m.to(model.MigSnapshotStreaming)
			m.to(model.MigFailed)
			r := m.rec
			r.State, r.Attempts = model.MigPending, 2
			m.plant(r)
		}, "retry from epoch 1"},
		{"retry moves back from T_dest", func(m *migStore) {
			for _, s := range []model.MigrationState{model.MigSnapshotStreaming, model.MigRouteFlipped, model.MigCatchupStreaming, model.MigFailed} {
				m.to(s)
			}
			r := m.rec
			r.State, r.Epoch, r.Attempts, r.From, r.To = model.MigPending, 2, 2, 2, 1
			m.plant(r)
		}, "away from the failed attempt's T_dest 2"},
		{"acked lsn goes back", func(m *migStore) {
			for _, s := range []model.MigrationState{model.MigSnapshotStreaming, model.MigRouteFlipped, model.MigCatchupStreaming} {
				m.to(s)
			}
			r := m.rec
			r.AckedLSN = 10
			m.plant(r)
			r.AckedLSN = 4
			m.plant(r)
		}, "acked_lsn back 10 -> 4"},
		{"deleted mid-flight", func(m *migStore) {
			m.to(model.MigSnapshotStreaming)
			m.apply(model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnDelete, Key: model.MigrationKey(2)}}})
		}, "deleted in SNAPSHOT_STREAMING"},
		{"not a record", func(m *migStore) {
			m.apply(model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnPut, Key: model.MigrationKey(2), Value: []byte("state=MOVING")}}})
		}, "not a migration record"},
		{"created not pending", func(m *migStore) {
			m.plant(model.MigrationRecord{Subgraph: 5, State: model.MigRouteFlipped, Epoch: 1, To: 3, Attempts: 1})
		}, "(no record) -> ROUTE_FLIPPED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMigStore(t)
			tc.plant(m)
			if !violated(m.w, invariants.MigrationTransitions, tc.detail) {
				t.Fatalf("planted %q not caught (want %q): %v", tc.name, tc.detail, m.w.violations)
			}
		})
	}
}
