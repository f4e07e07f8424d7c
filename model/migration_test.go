package model

import (
	"strings"
	"testing"
)

// The seed's diagram, written out once more by hand: the test fails if
// MigrationTransition accepts anything else, or refuses one of these.
var seedMigrationEdges = map[[2]MigrationState]bool{
	{0, MigPending}:                         true,
	{MigPending, MigSnapshotStreaming}:      true,
	{MigSnapshotStreaming, MigRouteFlipped}: true,
	{MigRouteFlipped, MigCatchupStreaming}:  true,
	{MigCatchupStreaming, MigSyncComplete}:  true,
	{MigSyncComplete, MigCommitted}:         true,
	{MigCommitted, 0}:                       true,
	{MigSnapshotStreaming, MigFailed}:       true,
	{MigRouteFlipped, MigFailed}:            true,
	{MigCatchupStreaming, MigFailed}:        true,
	{MigFailed, MigPending}:                 true,
	{MigFailed, 0}:                          true,
}

func TestMigrationTransitionIsTheSeedDiagram(t *testing.T) {
	accepted := 0
	for from := MigrationState(0); from <= MigFailed+1; from++ {
		for to := MigrationState(0); to <= MigFailed+1; to++ {
			got, want := MigrationTransition(from, to), seedMigrationEdges[[2]MigrationState{from, to}]
			if got != want {
				t.Errorf("MigrationTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
			if got {
				accepted++
			}
		}
	}
	if accepted != len(seedMigrationEdges) {
		t.Fatalf("accepted %d transitions, the seed has %d", accepted, len(seedMigrationEdges))
	}
}

func TestMigrationRecordRoundTrip(t *testing.T) {
	r := MigrationRecord{Subgraph: 7, State: MigCatchupStreaming, Epoch: 3, From: 11, To: 12, SnapshotLSN: 40, AckedLSN: 45, Attempts: 2, SinceMs: 9000}
	kv := KV{Key: MigrationKey(7), Value: r.Encode(), ModRevision: 5}
	got, err := ParseMigrationRecord(kv)
	r.ModRevision = 5
	if err != nil || got != r {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, r)
	}
	for _, bad := range []string{
		"", "state=RUNNING epoch=1 to=2", "state=PENDING to=2", "state=PENDING epoch=1 to=0",
		"state=PENDING epoch=1 from=2 to=2", "state=PENDING epoch=-1 to=2", "state=PENDING epoch=1 to=2 colour=5",
		"state=PENDING epoch=1 to=99999999999",
	} {
		if _, err := ParseMigrationRecord(KV{Key: MigrationKey(7), Value: []byte(bad)}); err == nil {
			t.Errorf("ParseMigrationRecord(%q) accepted a bad record", bad)
		}
	}
	if _, err := ParseMigrationRecord(KV{Key: "migrations/x", Value: r.Encode()}); err == nil {
		t.Error("a bad key was accepted")
	}
}

func TestMigrationCASGuardsTheMachine(t *testing.T) {
	cur := MigrationRecord{Subgraph: 3, State: MigSnapshotStreaming, Epoch: 2, To: 5, Attempts: 1, ModRevision: 17}
	next := cur
	next.State = MigRouteFlipped
	req, err := MigrationCAS(cur, next)
	if err != nil {
		t.Fatal(err)
	}
	if req.Kind != CoordTxn || len(req.Compares) != 1 || req.Compares[0].ModRevision != 17 || req.Compares[0].Key != MigrationKey(3) {
		t.Fatalf("not a CAS on the read revision: %+v", req)
	}
	if !strings.Contains(string(req.Then[0].Value), "state=ROUTE_FLIPPED") {
		t.Fatalf("value %q", req.Then[0].Value)
	}
	next.State = MigCommitted // skips three phases
	if _, err := MigrationCAS(cur, next); err == nil {
		t.Error("SNAPSHOT_STREAMING -> COMMITTED accepted")
	}
	next.State, next.Epoch = MigFailed, 3
	if _, err := MigrationCAS(cur, next); err == nil {
		t.Error("epoch changed outside a retry")
	}
	failed := cur
	failed.State = MigFailed
	retry := failed
	retry.State = MigPending
	if _, err := MigrationCAS(failed, retry); err == nil {
		t.Error("a retry without an epoch bump accepted")
	}
	retry.Epoch, retry.Attempts = 3, 2
	if _, err := MigrationCAS(failed, retry); err != nil {
		t.Errorf("a good retry refused: %v", err)
	}
	failed.Attempts = MigrationMaxAttempts
	retry.Attempts = MigrationMaxAttempts + 1
	if _, err := MigrationCAS(failed, retry); err == nil {
		t.Error("a retry beyond the attempt bound accepted")
	}
	create := MigrationCreate(4, 9, 1, 100)
	if len(create.Compares) != 1 || create.Compares[0].ModRevision != 0 {
		t.Errorf("create is not put-if-absent: %+v", create)
	}
	if got := MigrationRetryMs(100, 1000, 1); got != 100 {
		t.Errorf("first retry after %dms", got)
	}
	if got := MigrationRetryMs(100, 1000, 10); got != 1000 {
		t.Errorf("backoff not capped: %dms", got)
	}
}
