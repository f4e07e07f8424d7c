package coordstore

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"territory/model"
)

type note struct {
	watcher model.HostID
	key     string
	value   string
	rev     int64
	deleted bool
}

func (n note) String() string {
	return fmt.Sprintf("%d:%s=%q@%d del=%v", n.watcher, n.key, n.value, n.rev, n.deleted)
}

func recorder(s *Store) *[]note {
	var got []note
	s.SetNotifier(func(w model.HostID, ev model.WatchEvent) {
		got = append(got, note{w, ev.KV.Key, string(ev.KV.Value), ev.KV.ModRevision, ev.Deleted})
	})
	return &got
}

func mustApply(t *testing.T, s *Store, now int64, caller model.HostID, req model.CoordRequest) model.CoordResponse {
	t.Helper()
	resp, err := s.Apply(now, caller, req)
	if err != model.ErrNone {
		t.Fatalf("apply %+v: unexpected error %v", req, err)
	}
	return resp
}

func put(key, val string) model.CoordRequest {
	return model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnPut, Key: key, Value: []byte(val)}}}
}

func putLease(key, val string, lease int64) model.CoordRequest {
	return model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnPut, Key: key, Value: []byte(val), Lease: lease}}}
}

func get(t *testing.T, s *Store, now int64, key string) (model.KV, bool) {
	t.Helper()
	resp := mustApply(t, s, now, 99, model.CoordRequest{Kind: model.CoordGet, Key: key})
	switch len(resp.KVs) {
	case 0:
		return model.KV{}, false
	case 1:
		return resp.KVs[0], true
	}
	t.Fatalf("get %q returned %d kvs", key, len(resp.KVs))
	return model.KV{}, false
}

func keysOf(kvs []model.KV) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.Key
	}
	return out
}

func TestRevisionArithmetic(t *testing.T) {
	s := New()
	if s.Revision() != 1 {
		t.Fatalf("initial revision %d, want 1", s.Revision())
	}
	r := mustApply(t, s, 0, 1, put("a", "1"))
	if r.Revision != 2 || !r.Succeeded {
		t.Fatalf("first put: %+v", r)
	}
	// One transaction with three writes is one revision; every key gets it.
	r = mustApply(t, s, 0, 1, model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{
		{Kind: model.TxnPut, Key: "b", Value: []byte("2")},
		{Kind: model.TxnPut, Key: "c", Value: []byte("3")},
		{Kind: model.TxnDelete, Key: "a"},
	}})
	if r.Revision != 3 || s.Revision() != 3 {
		t.Fatalf("multi-write txn revision %d/%d, want 3", r.Revision, s.Revision())
	}
	for _, k := range []string{"b", "c"} {
		kv, ok := get(t, s, 0, k)
		if !ok || kv.ModRevision != 3 {
			t.Fatalf("%s: %+v ok=%v, want ModRevision 3", k, kv, ok)
		}
	}
	if _, ok := get(t, s, 0, "a"); ok {
		t.Fatal("a should be deleted")
	}
	// Reads, deletes of absent keys and failed compares with no Else do not
	// bump the revision.
	mustApply(t, s, 0, 1, model.CoordRequest{Kind: model.CoordRange, Key: ""})
	r = mustApply(t, s, 0, 1, model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnDelete, Key: "nope"}}})
	if r.Revision != 3 || !r.Succeeded {
		t.Fatalf("no-op delete: %+v", r)
	}
	r = mustApply(t, s, 0, 1, model.PutIfVersion("b", []byte("x"), 99))
	if r.Revision != 3 || r.Succeeded {
		t.Fatalf("failed CAS: %+v", r)
	}
	// Overwriting with the same value is still a change.
	r = mustApply(t, s, 0, 1, put("b", "2"))
	if r.Revision != 4 {
		t.Fatalf("overwrite revision %d, want 4", r.Revision)
	}
	kv, _ := get(t, s, 0, "b")
	if kv.ModRevision != 4 || string(kv.Value) != "2" {
		t.Fatalf("b after overwrite: %+v", kv)
	}
}

func TestGetAbsentIsEmpty(t *testing.T) {
	s := New()
	resp, err := s.Apply(0, 1, model.CoordRequest{Kind: model.CoordGet, Key: "missing"})
	if err != model.ErrNone || len(resp.KVs) != 0 || resp.Revision != 1 {
		t.Fatalf("get missing: %+v %v", resp, err)
	}
}

func TestCASConflictExactlyOneWins(t *testing.T) {
	s := New()
	mustApply(t, s, 0, 1, model.PutIfVersion("route/7", []byte("t1"), 0))
	kv, _ := get(t, s, 0, "route/7")
	if kv.ModRevision != 2 {
		t.Fatalf("ModRevision %d want 2", kv.ModRevision)
	}
	r1 := mustApply(t, s, 1, 1, model.PutIfVersion("route/7", []byte("t2"), kv.ModRevision))
	r2 := mustApply(t, s, 2, 2, model.PutIfVersion("route/7", []byte("t3"), kv.ModRevision))
	if !r1.Succeeded || r2.Succeeded {
		t.Fatalf("CAS results %v %v, want exactly the first to win", r1.Succeeded, r2.Succeeded)
	}
	kv, _ = get(t, s, 3, "route/7")
	if string(kv.Value) != "t2" || kv.ModRevision != 3 {
		t.Fatalf("after CAS: %+v", kv)
	}
	// Create-if-absent on an existing key fails too.
	r := mustApply(t, s, 3, 3, model.PutIfVersion("route/7", []byte("t4"), 0))
	if r.Succeeded || s.Revision() != 3 {
		t.Fatalf("create-if-absent on existing key: %+v rev=%d", r, s.Revision())
	}
}

func TestMultiKeyTxnAtomicity(t *testing.T) {
	s := New()
	mustApply(t, s, 0, 1, put("snap/cur", "s1")) // rev 2
	mustApply(t, s, 0, 1, put("snap/s1", "COMMITTED"))
	req := model.CoordRequest{
		Kind: model.CoordTxn,
		Compares: []model.Compare{
			{Key: "snap/cur", ModRevision: 2},
			{Key: "snap/s1", ModRevision: 2}, // wrong: it is 3
		},
		Then: []model.TxnOp{
			{Kind: model.TxnPut, Key: "snap/cur", Value: []byte("s2")},
			{Kind: model.TxnPut, Key: "snap/s2", Value: []byte("COMMITTED")},
			{Kind: model.TxnPut, Key: "snap/s1", Value: []byte("SUPERSEDED")},
		},
		Else: []model.TxnOp{{Kind: model.TxnPut, Key: "snap/conflicts", Value: []byte("1")}},
	}
	r := mustApply(t, s, 0, 1, req)
	if r.Succeeded || r.Revision != 4 {
		t.Fatalf("txn: %+v, want Else applied at rev 4", r)
	}
	want := []model.KV{
		{Key: "snap/conflicts", Value: []byte("1"), ModRevision: 4},
		{Key: "snap/cur", Value: []byte("s1"), ModRevision: 2},
		{Key: "snap/s1", Value: []byte("COMMITTED"), ModRevision: 3},
	}
	if got := s.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot\n got %+v\nwant %+v", got, want)
	}
	// With the right revisions the Then branch applies, all at rev 5.
	req.Compares[1].ModRevision = 3
	r = mustApply(t, s, 0, 1, req)
	if !r.Succeeded || r.Revision != 5 {
		t.Fatalf("txn: %+v", r)
	}
	want = []model.KV{
		{Key: "snap/conflicts", Value: []byte("1"), ModRevision: 4},
		{Key: "snap/cur", Value: []byte("s2"), ModRevision: 5},
		{Key: "snap/s1", Value: []byte("SUPERSEDED"), ModRevision: 5},
		{Key: "snap/s2", Value: []byte("COMMITTED"), ModRevision: 5},
	}
	if got := s.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot\n got %+v\nwant %+v", got, want)
	}
}

func TestRangeOrderAndPrefix(t *testing.T) {
	s := New()
	for _, k := range []string{"r/b", "r/a", "q", "r/c/1", "r", "s/a", "r/a0"} {
		mustApply(t, s, 0, 1, put(k, k))
	}
	r := mustApply(t, s, 0, 1, model.CoordRequest{Kind: model.CoordRange, Key: "r/"})
	if got, want := keysOf(r.KVs), []string{"r/a", "r/a0", "r/b", "r/c/1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("range r/: %v want %v", got, want)
	}
	for _, kv := range r.KVs {
		if string(kv.Value) != kv.Key {
			t.Fatalf("value of %s is %q", kv.Key, kv.Value)
		}
	}
	r = mustApply(t, s, 0, 1, model.CoordRequest{Kind: model.CoordRange, Key: ""})
	if got, want := keysOf(r.KVs), []string{"q", "r", "r/a", "r/a0", "r/b", "r/c/1", "s/a"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("range all: %v want %v", got, want)
	}
	r = mustApply(t, s, 0, 1, model.CoordRequest{Kind: model.CoordRange, Key: "zz"})
	if len(r.KVs) != 0 || r.Revision != 8 {
		t.Fatalf("empty range: %+v", r)
	}
	// Appending to a returned value must not corrupt its neighbour.
	r = mustApply(t, s, 0, 1, model.CoordRequest{Kind: model.CoordRange, Key: "r/"})
	_ = append(r.KVs[0].Value, 'X', 'X', 'X')
	if string(r.KVs[1].Value) != "r/a0" {
		t.Fatalf("neighbour corrupted: %q", r.KVs[1].Value)
	}
}

// TestValuesAreImmutableAndShared: a put copies the caller's buffer; reads
// and watch events share the stored value without copying it, capped so that
// an append reallocates; a later put stores a new buffer and leaves every
// value read before it as it was.
func TestValuesAreImmutableAndShared(t *testing.T) {
	s := New()
	buf := []byte("hello")
	mustApply(t, s, 0, 1, model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnPut, Key: "k", Value: buf}}})
	copy(buf, "XXXXX")
	kv, _ := get(t, s, 0, "k")
	if string(kv.Value) != "hello" {
		t.Fatalf("store aliased the caller's buffer: %q", kv.Value)
	}
	if cap(kv.Value) != len(kv.Value) {
		t.Fatalf("value not capped: len %d cap %d", len(kv.Value), cap(kv.Value))
	}
	r := mustApply(t, s, 0, 1, model.CoordRequest{Kind: model.CoordRange, Key: ""})
	if &r.KVs[0].Value[0] != &kv.Value[0] {
		t.Fatal("a range copied a value it could share")
	}
	_ = append(r.KVs[0].Value, '!')
	var evs []model.WatchEvent
	s.SetNotifier(func(_ model.HostID, ev model.WatchEvent) { evs = append(evs, ev) })
	mustApply(t, s, 0, 5, model.CoordRequest{Kind: model.CoordWatch, Key: ""})
	mustApply(t, s, 0, 1, put("k", "world"))
	if len(evs) != 1 || string(evs[0].KV.Value) != "world" {
		t.Fatalf("events %+v", evs)
	}
	if string(kv.Value) != "hello" || string(r.KVs[0].Value) != "hello" {
		t.Fatalf("a put changed a value read before it: %q %q", kv.Value, r.KVs[0].Value)
	}
	kv2, _ := get(t, s, 0, "k")
	if string(kv2.Value) != "world" {
		t.Fatalf("get after put: %q", kv2.Value)
	}
}

func TestLeaseExpiryDeletesKeysAndNotifies(t *testing.T) {
	s := New()
	got := recorder(s)
	mustApply(t, s, 0, 7, model.CoordRequest{Kind: model.CoordWatch, Key: "members/"})
	g := mustApply(t, s, 1_000_000, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 10_000})
	if g.Lease != 1 {
		t.Fatalf("first lease id %d want 1", g.Lease)
	}
	mustApply(t, s, 1_000_000, 3, putLease("members/3", "alive", g.Lease))  // rev 2
	mustApply(t, s, 1_000_000, 3, putLease("members/3b", "alive", g.Lease)) // rev 3
	mustApply(t, s, 1_000_000, 3, put("members/static", "x"))               // rev 4
	if at, ok := s.NextExpiryUs(); !ok || at != 11_000_000 {
		t.Fatalf("next expiry %d %v want 11000000", at, ok)
	}
	*got = nil
	s.Tick(10_999_999)
	if s.Revision() != 4 || len(*got) != 0 {
		t.Fatalf("expired early: rev %d events %v", s.Revision(), *got)
	}
	s.Tick(11_000_000)
	if s.Revision() != 5 {
		t.Fatalf("lease expiry should be one revision: rev %d want 5", s.Revision())
	}
	want := []note{
		{7, "members/3", "", 5, true},
		{7, "members/3b", "", 5, true},
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("events\n got %v\nwant %v", *got, want)
	}
	if got, want := keysOf(s.Snapshot()), []string{"members/static"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot keys %v want %v", got, want)
	}
	if _, ok := s.NextExpiryUs(); ok {
		t.Fatal("no lease should remain")
	}
	_, err := s.Apply(11_000_001, 3, model.CoordRequest{Kind: model.CoordLeaseKeepAlive, Lease: g.Lease})
	if err != model.ErrLeaseExpired {
		t.Fatalf("keepalive of expired lease: %v", err)
	}
}

func TestApplyExpiresDueLeasesFirst(t *testing.T) {
	s := New()
	g := mustApply(t, s, 0, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 1000})
	mustApply(t, s, 0, 3, putLease("k", "v", g.Lease))
	// No Tick was scheduled, but at t=1 s the lease is gone for any reader.
	if _, ok := get(t, s, 1_000_000, "k"); ok {
		t.Fatal("key of an expired lease is still visible")
	}
	if s.Revision() != 3 {
		t.Fatalf("rev %d want 3", s.Revision())
	}
}

func TestKeepAliveExtends(t *testing.T) {
	s := New()
	g := mustApply(t, s, 0, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 10_000})
	mustApply(t, s, 0, 3, putLease("k", "v", g.Lease))
	r := mustApply(t, s, 8_000_000, 3, model.CoordRequest{Kind: model.CoordLeaseKeepAlive, Lease: g.Lease})
	if r.Lease != g.Lease {
		t.Fatalf("keepalive returned lease %d", r.Lease)
	}
	if at, ok := s.NextExpiryUs(); !ok || at != 18_000_000 {
		t.Fatalf("next expiry %d %v want 18000000", at, ok)
	}
	s.Tick(12_000_000)
	if _, ok := get(t, s, 12_000_000, "k"); !ok {
		t.Fatal("keepalive did not extend the lease")
	}
	s.Tick(18_000_000)
	if _, ok := get(t, s, 18_000_000, "k"); ok {
		t.Fatal("lease should have expired at 18 s")
	}
}

func TestPutOnExpiredLeaseFailsAtomically(t *testing.T) {
	s := New()
	got := recorder(s)
	mustApply(t, s, 0, 7, model.CoordRequest{Kind: model.CoordWatch, Key: ""})
	g := mustApply(t, s, 0, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 5000})
	s.Tick(5_000_000)
	req := model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{
		{Kind: model.TxnPut, Key: "a", Value: []byte("1")},
		{Kind: model.TxnPut, Key: "leader", Value: []byte("3"), Lease: g.Lease},
	}}
	r, err := s.Apply(5_000_000, 3, req)
	if err != model.ErrLeaseExpired {
		t.Fatalf("err %v want lease-expired", err)
	}
	if r.Succeeded || r.Revision != 1 || s.Revision() != 1 || len(s.Snapshot()) != 0 || len(*got) != 0 {
		t.Fatalf("partial txn: resp %+v rev %d snap %v events %v", r, s.Revision(), s.Snapshot(), *got)
	}
	// A never-granted lease fails the same way.
	req.Then[1].Lease = 42
	if _, err := s.Apply(5_000_000, 3, req); err != model.ErrLeaseExpired || s.Revision() != 1 {
		t.Fatalf("unknown lease: err %v rev %d", err, s.Revision())
	}
}

func TestWatchNotificationOrder(t *testing.T) {
	s := New()
	got := recorder(s)
	// Registered out of order; overlapping prefixes of host 9 are two watches.
	mustApply(t, s, 0, 9, model.CoordRequest{Kind: model.CoordWatch, Key: "a/"})
	mustApply(t, s, 0, 2, model.CoordRequest{Kind: model.CoordWatch, Key: "b/"})
	mustApply(t, s, 0, 9, model.CoordRequest{Kind: model.CoordWatch, Key: ""})
	mustApply(t, s, 0, 5, model.CoordRequest{Kind: model.CoordWatch, Key: "a/"})
	mustApply(t, s, 0, 5, model.CoordRequest{Kind: model.CoordWatch, Key: "a/"}) // duplicate registration
	mustApply(t, s, 0, 1, put("b/1", "old"))                                     // rev 2
	*got = nil
	mustApply(t, s, 0, 1, model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{
		{Kind: model.TxnPut, Key: "c", Value: []byte("c")},
		{Kind: model.TxnPut, Key: "a/2", Value: []byte("x")},
		{Kind: model.TxnDelete, Key: "b/1"},
		{Kind: model.TxnPut, Key: "a/1", Value: []byte("y")},
	}}) // rev 3
	// By watcher, then prefix, then in the transaction's order of writes (as etcd).
	want := []note{
		{2, "b/1", "", 3, true},
		{5, "a/2", "x", 3, false},
		{5, "a/1", "y", 3, false},
		{9, "c", "c", 3, false},
		{9, "a/2", "x", 3, false},
		{9, "b/1", "", 3, true},
		{9, "a/1", "y", 3, false},
		{9, "a/2", "x", 3, false},
		{9, "a/1", "y", 3, false},
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("events\n got %v\nwant %v", *got, want)
	}
	// A crashed host loses its watches.
	*got = nil
	s.DropWatches(9)
	mustApply(t, s, 0, 1, put("a/3", "z"))
	want = []note{{5, "a/3", "z", 4, false}}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("after drop\n got %v\nwant %v", *got, want)
	}
}

func TestRevokeAndSessionExpiry(t *testing.T) {
	s := New()
	got := recorder(s)
	mustApply(t, s, 0, 7, model.CoordRequest{Kind: model.CoordWatch, Key: ""})
	l1 := mustApply(t, s, 0, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 1000}).Lease
	l2 := mustApply(t, s, 0, 4, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 1000}).Lease
	l3 := mustApply(t, s, 0, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 1000}).Lease
	if l1 != 1 || l2 != 2 || l3 != 3 {
		t.Fatalf("lease ids %d %d %d", l1, l2, l3)
	}
	mustApply(t, s, 0, 3, putLease("x/1", "a", l1))  // rev 2
	mustApply(t, s, 0, 4, putLease("x/2", "b", l2))  // rev 3
	mustApply(t, s, 0, 3, putLease("x/3", "c", l3))  // rev 4
	mustApply(t, s, 0, 3, putLease("x/3b", "c", l3)) // rev 5
	// Moving a key to another lease detaches it from the first.
	mustApply(t, s, 0, 3, putLease("x/1", "a2", l2)) // rev 6
	*got = nil
	// Host 3's session dies: l1 (no keys left) then l3 (two keys, one revision).
	s.ExpireLeasesOf(3)
	want := []note{{7, "x/3", "", 7, true}, {7, "x/3b", "", 7, true}}
	if !reflect.DeepEqual(*got, want) || s.Revision() != 7 {
		t.Fatalf("session expiry rev %d\n got %v\nwant %v", s.Revision(), *got, want)
	}
	if _, err := s.Apply(0, 3, model.CoordRequest{Kind: model.CoordLeaseKeepAlive, Lease: l1}); err != model.ErrLeaseExpired {
		t.Fatalf("l1 keepalive: %v", err)
	}
	*got = nil
	r := mustApply(t, s, 0, 4, model.CoordRequest{Kind: model.CoordLeaseRevoke, Lease: l2})
	want = []note{{7, "x/1", "", 8, true}, {7, "x/2", "", 8, true}}
	if r.Revision != 8 || !reflect.DeepEqual(*got, want) {
		t.Fatalf("revoke rev %d\n got %v\nwant %v", r.Revision, *got, want)
	}
	if _, err := s.Apply(0, 4, model.CoordRequest{Kind: model.CoordLeaseRevoke, Lease: l2}); err != model.ErrLeaseExpired {
		t.Fatalf("double revoke: %v", err)
	}
	if len(s.Snapshot()) != 0 {
		t.Fatalf("keys left: %v", s.Snapshot())
	}
	// A put without a lease detaches the key: expiring the lease keeps it.
	l4 := mustApply(t, s, 0, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 1000}).Lease
	mustApply(t, s, 0, 3, putLease("y", "1", l4))
	mustApply(t, s, 0, 3, put("y", "2"))
	rev := s.Revision()
	s.ExpireLease(l4)
	if kv, ok := get(t, s, 0, "y"); !ok || string(kv.Value) != "2" || s.Revision() != rev {
		t.Fatalf("detached key: %+v %v rev %d want %d", kv, ok, s.Revision(), rev)
	}
}

func TestExpiryOrderByDeadlineThenID(t *testing.T) {
	s := New()
	got := recorder(s)
	mustApply(t, s, 0, 1, model.CoordRequest{Kind: model.CoordWatch, Key: ""})
	a := mustApply(t, s, 0, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 30_000}).Lease
	b := mustApply(t, s, 0, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 20_000}).Lease
	c := mustApply(t, s, 0, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 20_000}).Lease
	mustApply(t, s, 0, 3, putLease("a", "", a))
	mustApply(t, s, 0, 3, putLease("b", "", b))
	mustApply(t, s, 0, 3, putLease("c", "", c))
	*got = nil
	s.Tick(100_000_000)
	want := []note{{1, "b", "", 5, true}, {1, "c", "", 6, true}, {1, "a", "", 7, true}}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("expiry order\n got %v\nwant %v", *got, want)
	}
}

func TestNextExpiryTracksEarliest(t *testing.T) {
	s := New()
	if _, ok := s.NextExpiryUs(); ok {
		t.Fatal("empty store has no expiry")
	}
	a := mustApply(t, s, 0, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 5000}).Lease
	mustApply(t, s, 0, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 7000})
	if at, _ := s.NextExpiryUs(); at != 5_000_000 {
		t.Fatalf("next %d want 5000000", at)
	}
	mustApply(t, s, 3_000_000, 3, model.CoordRequest{Kind: model.CoordLeaseKeepAlive, Lease: a}) // a -> 8 s
	if at, _ := s.NextExpiryUs(); at != 7_000_000 {
		t.Fatalf("next %d want 7000000", at)
	}
	s.Tick(7_000_000)
	if at, _ := s.NextExpiryUs(); at != 8_000_000 {
		t.Fatalf("next %d want 8000000", at)
	}
	s.Tick(8_000_000)
	if _, ok := s.NextExpiryUs(); ok {
		t.Fatal("all leases expired")
	}
}

func TestInvariantPanics(t *testing.T) {
	mustPanic := func(name, want string, fn func()) {
		t.Helper()
		defer func() {
			r := recover()
			if r == nil || !strings.Contains(fmt.Sprint(r), want) {
				t.Fatalf("%s: panic %v, want one mentioning %q", name, r, want)
			}
		}()
		fn()
	}
	s := New()
	s.Tick(100)
	mustPanic("time backwards", "backwards", func() { s.Tick(50) })
	s2 := New()
	s2.SetNotifier(func(model.HostID, model.WatchEvent) { s2.Tick(0) })
	mustApply(t, s2, 0, 1, model.CoordRequest{Kind: model.CoordWatch, Key: ""})
	mustPanic("re-entrant", "re-entrant", func() { _, _ = s2.Apply(0, 1, put("k", "v")) })
	mustPanic("ttl", "TTL", func() { _, _ = New().Apply(0, 1, model.CoordRequest{Kind: model.CoordLeaseGrant}) })
}

func BenchmarkCASPut(b *testing.B) {
	s := New()
	val := []byte("value-of-some-length")
	var rev int64
	for i := 0; i < b.N; i++ {
		r, _ := s.Apply(int64(i), 1, model.PutIfVersion("route/1", val, rev))
		if !r.Succeeded {
			b.Fatal("CAS failed")
		}
		rev = r.Revision
	}
}

// TestLeaseTTLRoundingAndExpiryLag: a TTL is rounded up to whole seconds (as
// runtime/etcdcoord asks etcd), and a lease is revoked its lag after its
// deadline, as etcd's 500 ms lessor loop does: until then its keys stay and
// puts with it succeed; a keep-alive after the deadline fails and revokes it
// at once.
func TestLeaseTTLRoundingAndExpiryLag(t *testing.T) {
	for ms, want := range map[int64]int64{1: 1_000_000, 1000: 1_000_000, 1001: 2_000_000, 1500: 2_000_000, 2000: 2_000_000} {
		if got := LeaseTTLUs(ms); got != want {
			t.Errorf("LeaseTTLUs(%d) = %d, want %d", ms, got, want)
		}
	}
	s := New()
	lags := []int64{400_000, 100_000}
	s.SetExpiryLag(func() int64 { l := lags[0]; lags = lags[1:]; return l })
	a := mustApply(t, s, 0, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 1500}).Lease // deadline 2 s, revoke 2.4 s
	b := mustApply(t, s, 0, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 1000}).Lease // deadline 1 s, revoke 1.1 s
	if at, _ := s.NextExpiryUs(); at != 1_100_000 {
		t.Fatalf("next revoke %d, want 1100000", at)
	}
	mustApply(t, s, 2_200_000-1, 3, putLease("a", "late", a)) // past the TTL, before the revoke: accepted
	if _, ok := get(t, s, 2_399_999, "a"); !ok {
		t.Fatal("the key went before the revoke")
	}
	if _, ok := get(t, s, 2_400_000, "a"); ok {
		t.Fatal("the key outlived the revoke")
	}
	if _, err := s.Apply(2_400_000, 3, model.CoordRequest{Kind: model.CoordLeaseKeepAlive, Lease: b}); err != model.ErrLeaseExpired {
		t.Fatalf("keep-alive of a revoked lease: %v", err)
	}
	// A keep-alive past the deadline, before the revoke, fails and revokes.
	s2 := New()
	s2.SetExpiryLag(func() int64 { return MaxExpiryLagUs })
	l := mustApply(t, s2, 0, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 1000}).Lease
	mustApply(t, s2, 0, 3, putLease("k", "v", l))
	if _, err := s2.Apply(1_000_000, 3, model.CoordRequest{Kind: model.CoordLeaseKeepAlive, Lease: l}); err != model.ErrLeaseExpired {
		t.Fatalf("keep-alive at the deadline: %v", err)
	}
	if _, ok := get(t, s2, 1_000_000, "k"); ok {
		t.Fatal("a failed keep-alive left the lease's key")
	}
	s3 := New()
	s3.SetExpiryLag(func() int64 { return MaxExpiryLagUs + 1 })
	defer func() {
		if recover() == nil {
			t.Fatal("a lag beyond MaxExpiryLagUs was accepted")
		}
	}()
	s3.Apply(0, 3, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 1000})
}
