package etcdcoord

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"territory/model"
	"territory/runtime/etcdembed"
)

func startSingle(t *testing.T) []string {
	t.Helper()
	return []string{etcdembed.StartTest(t).Client}
}

func startCluster(t *testing.T, n int) []string {
	t.Helper()
	ms, err := etcdembed.Cluster(t.TempDir(), n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ms {
		ms[i].Fast = true
	}
	es, err := etcdembed.StartAll(ms, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, e := range es {
			e.Close()
		}
	})
	return etcdembed.Endpoints(es)
}

func dial(t *testing.T, eps []string) *Coord {
	t.Helper()
	c, err := Dial(Config{Endpoints: eps}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func do(t *testing.T, c *Coord, req model.CoordRequest) (model.CoordResponse, model.ServiceErr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, se, err := c.Do(ctx, req)
	if err != nil {
		t.Fatalf("%+v: %v", req, err)
	}
	return r, se
}

func get(t *testing.T, c *Coord, key string) (model.KV, bool) {
	t.Helper()
	r, se := do(t, c, model.CoordRequest{Kind: model.CoordGet, Key: key})
	if se != model.ErrNone {
		t.Fatal(se)
	}
	if len(r.KVs) == 0 {
		return model.KV{}, false
	}
	return r.KVs[0], true
}

func TestSingleMember(t *testing.T) {
	eps := startSingle(t)
	t.Run("cas", func(t *testing.T) { testCAS(t, dial(t, eps), dial(t, eps)) })
	t.Run("txn", func(t *testing.T) { testTxn(t, dial(t, eps)) })
	t.Run("range", func(t *testing.T) { testRange(t, dial(t, eps)) })
	t.Run("lease", func(t *testing.T) { testLease(t, dial(t, eps)) })
	t.Run("watch", func(t *testing.T) { testWatch(t, dial(t, eps), dial(t, eps)) })
	t.Run("bootstrap", func(t *testing.T) { testBootstrap(t, dial(t, eps)) })
}

func TestThreeMembers(t *testing.T) {
	eps := startCluster(t, 3)
	// Two clients on different members.
	a, b := dial(t, eps[:1]), dial(t, eps[2:])
	t.Run("cas", func(t *testing.T) { testCAS(t, a, b) })
	t.Run("txn", func(t *testing.T) { testTxn(t, dial(t, eps[1:2])) })
	t.Run("range", func(t *testing.T) { testRange(t, b) })
	t.Run("lease", func(t *testing.T) { testLease(t, dial(t, eps)) })
	t.Run("watch", func(t *testing.T) { testWatch(t, a, b) })
}

// testCAS: two writers swap the same version concurrently; exactly one wins.
func testCAS(t *testing.T, a, b *Coord) {
	key := "cas/" + t.Name()
	r, se := do(t, a, model.PutIfVersion(key, []byte("v0"), 0))
	if se != model.ErrNone || !r.Succeeded {
		t.Fatalf("create: %+v %v", r, se)
	}
	kv, _ := get(t, b, key)
	if kv.ModRevision != r.Revision || string(kv.Value) != "v0" {
		t.Fatalf("the txn's revision %d is not the key's mod revision %+v", r.Revision, kv)
	}
	if r, _ := do(t, b, model.PutIfVersion(key, []byte("again"), 0)); r.Succeeded {
		t.Fatal("create of an existing key succeeded")
	}
	for round := range 20 {
		kv, _ := get(t, a, key)
		var wg sync.WaitGroup
		won := make([]bool, 2)
		for i, c := range []*Coord{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, _ := do(t, c, model.PutIfVersion(key, []byte(fmt.Sprintf("r%d-w%d", round, i)), kv.ModRevision))
				won[i] = r.Succeeded
			}()
		}
		wg.Wait()
		if won[0] == won[1] {
			t.Fatalf("round %d: winners %v", round, won)
		}
		after, _ := get(t, b, key)
		w := 0
		if won[1] {
			w = 1
		}
		if string(after.Value) != fmt.Sprintf("r%d-w%d", round, w) {
			t.Fatalf("round %d: value %q, winner %d", round, after.Value, w)
		}
	}
}

// testTxn: a multi-key transaction applies all of Then or all of Else.
func testTxn(t *testing.T, c *Coord) {
	p := "txn/" + t.Name() + "/"
	do(t, c, model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnPut, Key: p + "a", Value: []byte("1")}}})
	a, _ := get(t, c, p+"a")
	stale := model.CoordRequest{Kind: model.CoordTxn,
		Compares: []model.Compare{{Key: p + "a", ModRevision: a.ModRevision}, {Key: p + "b", ModRevision: 12345}},
		Then:     []model.TxnOp{{Kind: model.TxnPut, Key: p + "a", Value: []byte("2")}, {Kind: model.TxnPut, Key: p + "b", Value: []byte("2")}},
		Else:     []model.TxnOp{{Kind: model.TxnPut, Key: p + "else", Value: []byte("x")}}}
	r, se := do(t, c, stale)
	if se != model.ErrNone || r.Succeeded {
		t.Fatalf("a txn with one false compare: %+v %v", r, se)
	}
	if kv, _ := get(t, c, p+"a"); kv.ModRevision != a.ModRevision {
		t.Fatal("a failed txn wrote a Then key")
	}
	if _, ok := get(t, c, p+"b"); ok {
		t.Fatal("a failed txn wrote a Then key")
	}
	if _, ok := get(t, c, p+"else"); !ok {
		t.Fatal("a failed txn did not run Else")
	}
	good := stale
	good.Compares = []model.Compare{{Key: p + "a", ModRevision: a.ModRevision}, {Key: p + "b", ModRevision: 0}}
	good.Then = append(good.Then, model.TxnOp{Kind: model.TxnDelete, Key: p + "else"})
	r, se = do(t, c, good)
	if se != model.ErrNone || !r.Succeeded {
		t.Fatalf("a txn whose compares hold: %+v %v", r, se)
	}
	ka, _ := get(t, c, p+"a")
	kb, _ := get(t, c, p+"b")
	if string(ka.Value) != "2" || string(kb.Value) != "2" || ka.ModRevision != r.Revision || kb.ModRevision != r.Revision {
		t.Fatalf("after txn: %+v %+v rev %d", ka, kb, r.Revision)
	}
	if _, ok := get(t, c, p+"else"); ok {
		t.Fatal("delete in a txn did not happen")
	}
}

func testRange(t *testing.T, c *Coord) {
	p := "range/" + t.Name() + "/"
	for _, k := range []string{"c", "a", "b"} {
		do(t, c, model.PutIfVersion(p+k, []byte(k), 0))
	}
	do(t, c, model.PutIfVersion(p[:len(p)-1]+"x", []byte("outside"), 0))
	r, se := do(t, c, model.CoordRequest{Kind: model.CoordRange, Key: p})
	if se != model.ErrNone || len(r.KVs) != 3 {
		t.Fatalf("range: %+v %v", r, se)
	}
	for i, k := range []string{"a", "b", "c"} {
		if r.KVs[i].Key != p+k || string(r.KVs[i].Value) != k || r.KVs[i].ModRevision == 0 {
			t.Fatalf("range entry %d: %+v", i, r.KVs[i])
		}
	}
	if r, _ := do(t, c, model.CoordRequest{Kind: model.CoordRange, Key: p + "zzz"}); len(r.KVs) != 0 {
		t.Fatalf("empty range: %+v", r.KVs)
	}
}

// testLease: a key put with a lease disappears when the lease expires; a kept
// alive lease keeps it; revoke deletes at once; an expired lease is reported.
func testLease(t *testing.T, c *Coord) {
	p := "lease/" + t.Name() + "/"
	grant := func() int64 {
		r, se := do(t, c, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: 1000})
		if se != model.ErrNone || r.Lease == 0 {
			t.Fatalf("grant: %+v %v", r, se)
		}
		return r.Lease
	}
	put := func(key string, lease int64) model.ServiceErr {
		_, se := do(t, c, model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnPut, Key: key, Value: []byte("x"), Lease: lease}}})
		return se
	}
	expiring, kept, revoked := grant(), grant(), grant()
	for k, l := range map[string]int64{"expiring": expiring, "kept": kept, "revoked": revoked} {
		if se := put(p+k, l); se != model.ErrNone {
			t.Fatal(se)
		}
	}
	if _, se := do(t, c, model.CoordRequest{Kind: model.CoordLeaseRevoke, Lease: revoked}); se != model.ErrNone {
		t.Fatal(se)
	}
	if _, ok := get(t, c, p+"revoked"); ok {
		t.Fatal("revoke left the key")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, se := do(t, c, model.CoordRequest{Kind: model.CoordLeaseKeepAlive, Lease: kept}); se != model.ErrNone {
			t.Fatalf("keepalive: %v", se)
		}
		if _, ok := get(t, c, p+"expiring"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease never expired")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, ok := get(t, c, p+"kept"); !ok {
		t.Fatal("a kept-alive lease lost its key")
	}
	if _, se := do(t, c, model.CoordRequest{Kind: model.CoordLeaseKeepAlive, Lease: expiring}); se != model.ErrLeaseExpired {
		t.Fatalf("keepalive of an expired lease: %v", se)
	}
	if se := put(p+"late", expiring); se != model.ErrLeaseExpired {
		t.Fatalf("put with an expired lease: %v", se)
	}
	if _, se := do(t, c, model.CoordRequest{Kind: model.CoordLeaseRevoke, Lease: expiring}); se != model.ErrLeaseExpired {
		t.Fatalf("revoke of an expired lease: %v", se)
	}
}

func testWatch(t *testing.T, watcher, writer *Coord) {
	p := "watch/" + t.Name() + "/"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs := make(chan model.WatchEvent, 16)
	if err := watcher.Watch(ctx, p, func(ev model.WatchEvent) { evs <- ev }); err != nil {
		t.Fatal(err)
	}
	r, _ := do(t, writer, model.PutIfVersion(p+"k", []byte("v1"), 0))
	do(t, writer, model.PutIfVersion(p[:len(p)-1]+"-outside", []byte("no"), 0))
	do(t, writer, model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnDelete, Key: p + "k"}}})
	next := func() model.WatchEvent {
		select {
		case ev := <-evs:
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no watch event")
		}
		return model.WatchEvent{}
	}
	if ev := next(); ev.Deleted || ev.KV.Key != p+"k" || string(ev.KV.Value) != "v1" || ev.KV.ModRevision != r.Revision {
		t.Fatalf("put event: %+v (txn revision %d)", ev, r.Revision)
	}
	if ev := next(); !ev.Deleted || ev.KV.Key != p+"k" {
		t.Fatalf("delete event: %+v", ev)
	}
	cancel()
	select {
	case ev := <-evs:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}

// testBootstrap: etcd refuses a transaction of more than model.MaxTxnOps
// operations, definitely (the old one-transaction bootstrap of 128+
// subgraphs); the chunked bootstrap of 300 subgraphs succeeds once, and
// repeating it changes nothing.
func testBootstrap(t *testing.T, c *Coord) {
	const n = 300
	plan, err := model.NewBootstrapPlan(n, []model.HostID{1, 2}, model.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	var all model.CoordRequest
	all.Kind = model.CoordTxn
	for _, req := range plan.RouteTxns() {
		all.Compares = append(all.Compares, req.Compares...)
		all.Then = append(all.Then, req.Then...)
	}
	if _, se := do(t, c, all); se != model.ErrInvalid {
		t.Fatalf("one transaction of %d routes: %v, want %v", n, se, model.ErrInvalid)
	}
	for round := range 2 {
		for i, req := range plan.Txns() {
			if len(req.Then) > model.MaxTxnOps {
				t.Fatalf("transaction %d has %d operations", i, len(req.Then))
			}
			if r, se := do(t, c, req); se != model.ErrNone || r.Succeeded != (round == 0) {
				t.Fatalf("round %d transaction %d: %+v %v", round, i, r, se)
			}
		}
	}
	r, _ := do(t, c, model.CoordRequest{Kind: model.CoordRange, Key: model.RoutesPrefix})
	if len(r.KVs) != n {
		t.Fatalf("routes: %d", len(r.KVs))
	}
	for i, kv := range r.KVs {
		rt, err := model.ParseRoute(kv)
		if err != nil || rt.Subgraph != model.SubgraphID(i) || rt.Primary != model.HostID(i%2+1) {
			t.Fatalf("route %d: %+v %v", i, rt, err)
		}
	}
}

func TestUnreachableIsAmbiguous(t *testing.T) {
	c := dial(t, []string{"http://127.0.0.1:1"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, se, err := c.Do(ctx, model.PutIfVersion("k", []byte("v"), 0))
	if err == nil || se != model.ErrNone {
		t.Fatalf("a txn against nothing: %v %v", se, err)
	}
}
