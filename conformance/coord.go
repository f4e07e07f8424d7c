package conformance

import (
	"bytes"
	"fmt"
	"strings"

	"territory/model"
)

// CoordService is one coordination store (a simulated store, or an etcd
// cluster) as the coordination suite sees it.
type CoordService interface {
	// Client returns a new client of the store: its own connection (or
	// simulated host), sessions and watches.
	Client() CoordClient
	// Sleep lets ms of the store's time pass: virtual time in the simulator
	// (leases due meanwhile expire), real time against a real store.
	Sleep(ms int64)
}

// CoordClient is one client of a coordination store.
type CoordClient interface {
	// Do runs one request and waits for its answer. A ServiceErr is a
	// definite refusal; a non-nil error an unknown outcome (the case fails).
	Do(req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error)
	// DoLost runs req but the caller learns nothing: either the request is
	// lost on the way or its answer is lost on the way back (the adapter
	// picks; both must happen over successive calls). It returns once the
	// request has been applied or never will be.
	DoLost(req model.CoordRequest)
	// Watch watches every key under prefix. Every change linearized after
	// Watch returns is delivered, once, in revision order (and, within one
	// transaction, in the order of its writes); nothing earlier is.
	Watch(prefix string) (CoordWatch, error)
}

// CoordWatch delivers a watch's events.
type CoordWatch interface {
	// Next returns the next event, waiting at most waitMs of the store's
	// time; false if none came.
	Next(waitMs int64) (model.WatchEvent, bool)
}

// Coordination timing: the lease TTL the cases use (etcd's TTLs are whole
// seconds), and the bound within which an expired lease's keys must be gone
// (etcd's leader checks expiry every 500 ms and revokes through raft).
const (
	LeaseTTLMs    = 2000
	LeaseGraceMs  = 3000
	watchWaitMs   = 5000
	watchQuietMs  = 300
	leasePollMs   = 100
	leaseMarginMs = 1000
)

// CoordCases is the coordination suite.
func CoordCases() []Case[CoordService] {
	return []Case[CoordService]{
		{Name: "put-get-revisions", Run: coordPutGet},
		{Name: "noop-txn-keeps-revision", Run: coordNoop},
		{Name: "cas", Run: coordCAS},
		{Name: "txn-compares", Run: coordTxn},
		{Name: "txn-duplicate-key", Run: coordTxnDup},
		{Name: "txn-limits-empty-key", Run: coordLimits},
		{Name: "range-prefix", Run: coordRange},
		{Name: "linearizable-clients", Run: coordClients},
		{Name: "lost-answer-cas", Run: coordLostCAS},
		{Name: "lease-expiry", Run: coordLeaseExpiry},
		{Name: "lease-revoke", Run: coordLeaseRevoke},
		{Name: "lease-errors", Run: coordLeaseErrors},
		{Name: "watch-order", Run: coordWatchOrder},
	}
}

// ---- helpers ----

func cdo(c CoordClient, req model.CoordRequest) (model.CoordResponse, error) {
	r, se, err := c.Do(req)
	if err != nil {
		return r, errf("%s: unknown outcome: %v", describeCoord(req), err)
	}
	if se != model.ErrNone {
		return r, errf("%s: refused: %v", describeCoord(req), se)
	}
	return r, nil
}

func describeCoord(req model.CoordRequest) string {
	switch req.Kind {
	case model.CoordGet:
		return "get " + req.Key
	case model.CoordRange:
		return "range " + req.Key
	case model.CoordTxn:
		var b bytes.Buffer
		b.WriteString("txn")
		for _, op := range req.Then {
			b.WriteString(" " + op.Key)
		}
		return b.String()
	case model.CoordLeaseGrant:
		return "lease grant"
	case model.CoordLeaseKeepAlive:
		return "lease keepalive"
	case model.CoordLeaseRevoke:
		return "lease revoke"
	}
	return "coord request"
}

func put(key, value string) model.TxnOp {
	return model.TxnOp{Kind: model.TxnPut, Key: key, Value: []byte(value)}
}

func del(key string) model.TxnOp { return model.TxnOp{Kind: model.TxnDelete, Key: key} }

func txn(cmps []model.Compare, then, els []model.TxnOp) model.CoordRequest {
	return model.CoordRequest{Kind: model.CoordTxn, Compares: cmps, Then: then, Else: els}
}

// getKV reads one key: ok false if absent.
func getKV(c CoordClient, key string) (model.KV, bool, int64, error) {
	r, err := cdo(c, model.CoordRequest{Kind: model.CoordGet, Key: key})
	if err != nil {
		return model.KV{}, false, 0, err
	}
	switch len(r.KVs) {
	case 0:
		return model.KV{}, false, r.Revision, nil
	case 1:
		if r.KVs[0].Key != key {
			return model.KV{}, false, 0, errf("get %s returned key %s", key, r.KVs[0].Key)
		}
		return r.KVs[0], true, r.Revision, nil
	}
	return model.KV{}, false, 0, errf("get %s returned %d keys", key, len(r.KVs))
}

// wantValue checks key holds value (absent when value is nil) and returns
// its ModRevision.
func wantValue(c CoordClient, key string, value []byte) (int64, error) {
	kv, ok, _, err := getKV(c, key)
	if err != nil {
		return 0, err
	}
	if value == nil {
		if ok {
			return 0, errf("%s: holds %q, want absent", key, kv.Value)
		}
		return 0, nil
	}
	if !ok {
		return 0, errf("%s: absent, want %q", key, value)
	}
	if !bytes.Equal(kv.Value, value) {
		return 0, errf("%s: holds %q, want %q", key, kv.Value, value)
	}
	if kv.ModRevision <= 0 {
		return 0, errf("%s: ModRevision %d of a present key", key, kv.ModRevision)
	}
	return kv.ModRevision, nil
}

// commit runs a transaction that must take the Then branch.
func commit(c CoordClient, req model.CoordRequest) (int64, error) {
	r, err := cdo(c, req)
	if err != nil {
		return 0, err
	}
	if !r.Succeeded {
		return 0, errf("%s: compares failed, want them to hold", describeCoord(req))
	}
	return r.Revision, nil
}

// ---- cases ----

// coordPutGet: a write bumps the store revision by at least one, and the key's
// ModRevision is the revision the transaction answered; a read of a missing
// key answers nothing at the current revision.
func coordPutGet(svc CoordService, root string) error {
	c := svc.Client()
	k := root + "k"
	if _, ok, _, err := getKV(c, k); err != nil || ok {
		return errf("get of a missing key: present=%v err=%v", ok, err)
	}
	r1, err := commit(c, txn(nil, []model.TxnOp{put(k, "v1")}, nil))
	if err != nil {
		return err
	}
	rev, err := wantValue(c, k, []byte("v1"))
	if err != nil {
		return err
	}
	if rev != r1 {
		return errf("ModRevision %d of %s is not the revision %d its write answered", rev, k, r1)
	}
	r2, err := commit(c, txn(nil, []model.TxnOp{put(k, "v2")}, nil))
	if err != nil {
		return err
	}
	if r2 <= r1 {
		return errf("second write answered revision %d, not above the first's %d", r2, r1)
	}
	if rev, err = wantValue(c, k, []byte("v2")); err != nil {
		return err
	}
	if rev != r2 {
		return errf("ModRevision %d after the second write, want %d", rev, r2)
	}
	if _, _, cur, err := getKV(c, root+"missing"); err != nil || cur < r2 {
		return errf("a read after revision %d answered revision %d (err %v)", r2, cur, err)
	}
	return nil
}

// coordNoop: a transaction that changes nothing (failed compares with an
// empty Else; a delete of an absent key) does not bump the revision, in etcd
// and in the simulator alike.
func coordNoop(svc CoordService, root string) error {
	c := svc.Client()
	k := root + "k"
	r1, err := commit(c, txn(nil, []model.TxnOp{put(k, "v")}, nil))
	if err != nil {
		return err
	}
	r, err := cdo(c, txn([]model.Compare{{Key: k, ModRevision: r1 + 1000}}, []model.TxnOp{put(k, "no")}, nil))
	if err != nil {
		return err
	}
	if r.Succeeded {
		return errf("a compare on ModRevision %d held for a key at %d", r1+1000, r1)
	}
	if r.Revision != r1 {
		return errf("a failed transaction with no Else moved the revision %d -> %d", r1, r.Revision)
	}
	r, err = cdo(c, txn(nil, []model.TxnOp{del(root + "absent")}, nil))
	if err != nil {
		return err
	}
	if !r.Succeeded || r.Revision != r1 {
		return errf("a delete of an absent key: succeeded=%v revision %d, want true and %d", r.Succeeded, r.Revision, r1)
	}
	if _, err := wantValue(c, k, []byte("v")); err != nil {
		return err
	}
	return nil
}

// coordCAS: create-if-absent, swap on the current ModRevision, and a swap on
// a stale revision that fails and changes nothing.
func coordCAS(svc CoordService, root string) error {
	c := svc.Client()
	k := root + "route"
	r, err := cdo(c, model.PutIfVersion(k, []byte("e1"), 0))
	if err != nil {
		return err
	}
	if !r.Succeeded {
		return errf("create of an absent key (compare ModRevision 0) failed")
	}
	v1 := r.Revision
	r, err = cdo(c, model.PutIfVersion(k, []byte("again"), 0))
	if err != nil {
		return err
	}
	if r.Succeeded {
		return errf("create of an existing key (compare ModRevision 0) succeeded")
	}
	r, err = cdo(c, model.PutIfVersion(k, []byte("e2"), v1))
	if err != nil {
		return err
	}
	if !r.Succeeded {
		return errf("swap on the current revision %d failed", v1)
	}
	v2 := r.Revision
	r, err = cdo(c, model.PutIfVersion(k, []byte("stale"), v1))
	if err != nil {
		return err
	}
	if r.Succeeded {
		return errf("swap on the stale revision %d succeeded (current %d)", v1, v2)
	}
	if r.Revision != v2 {
		return errf("a failed swap moved the revision %d -> %d", v2, r.Revision)
	}
	rev, err := wantValue(c, k, []byte("e2"))
	if err != nil {
		return err
	}
	if rev != v2 {
		return errf("ModRevision %d, want %d", rev, v2)
	}
	return nil
}

// coordTxn: a multi-key transaction is atomic: all compares must hold for
// Then, else Else runs; every key written gets the same ModRevision; a
// compare of an absent key with 0 holds.
func coordTxn(svc CoordService, root string) error {
	c := svc.Client()
	a, b, x, y := root+"a", root+"b", root+"x", root+"y"
	ra, err := commit(c, txn(nil, []model.TxnOp{put(a, "a1")}, nil))
	if err != nil {
		return err
	}
	rb, err := commit(c, txn(nil, []model.TxnOp{put(b, "b1")}, nil))
	if err != nil {
		return err
	}
	// One compare stale: Else runs, Then does not.
	r, err := cdo(c, txn([]model.Compare{{Key: a, ModRevision: ra}, {Key: b, ModRevision: ra}},
		[]model.TxnOp{put(a, "then"), put(x, "then")}, []model.TxnOp{put(y, "else")}))
	if err != nil {
		return err
	}
	if r.Succeeded {
		return errf("a transaction with a stale compare on %s took Then", b)
	}
	if _, err := wantValue(c, a, []byte("a1")); err != nil {
		return errf("after Else: %v", err)
	}
	if _, err := wantValue(c, x, nil); err != nil {
		return errf("after Else: %v", err)
	}
	ry, err := wantValue(c, y, []byte("else"))
	if err != nil {
		return errf("after Else: %v", err)
	}
	if ry != r.Revision {
		return errf("Else's write at ModRevision %d, the transaction answered %d", ry, r.Revision)
	}
	// All compares hold (x absent: 0): Then runs, every write at one revision.
	r, err = cdo(c, txn([]model.Compare{{Key: a, ModRevision: ra}, {Key: b, ModRevision: rb}, {Key: x, ModRevision: 0}},
		[]model.TxnOp{put(a, "a2"), put(x, "x2"), del(b)}, []model.TxnOp{put(y, "wrong")}))
	if err != nil {
		return err
	}
	if !r.Succeeded {
		return errf("a transaction whose compares all hold took Else")
	}
	if r.Revision <= ry {
		return errf("the transaction answered revision %d, not above %d", r.Revision, ry)
	}
	for _, kv := range []struct{ key, want string }{{a, "a2"}, {x, "x2"}} {
		rev, err := wantValue(c, kv.key, []byte(kv.want))
		if err != nil {
			return err
		}
		if rev != r.Revision {
			return errf("%s written at ModRevision %d, the transaction answered %d: not one revision", kv.key, rev, r.Revision)
		}
	}
	if _, err := wantValue(c, b, nil); err != nil {
		return err
	}
	if _, err := wantValue(c, y, []byte("else")); err != nil {
		return err
	}
	return nil
}

// coordTxnDup: a transaction that writes one key twice (two puts, or a put and
// a delete) in either branch is refused, definitely, and writes nothing, even
// when the duplicate is in the branch that would not run (etcd checks both).
func coordTxnDup(svc CoordService, root string) error {
	c := svc.Client()
	k, other := root+"k", root+"other"
	for i, req := range []model.CoordRequest{
		txn(nil, []model.TxnOp{put(k, "1"), put(other, "o"), put(k, "2")}, nil),
		txn(nil, []model.TxnOp{put(k, "1"), del(k)}, nil),
		txn(nil, []model.TxnOp{put(other, "o")}, []model.TxnOp{put(k, "1"), put(k, "2")}),
	} {
		r, se, err := c.Do(req)
		if err != nil {
			return errf("duplicate-key transaction %d: unknown outcome: %v", i, err)
		}
		if se != model.ErrInvalid {
			return errf("duplicate-key transaction %d: %v (succeeded=%v), want %v", i, se, r.Succeeded, model.ErrInvalid)
		}
		for _, key := range []string{k, other} {
			if _, err := wantValue(c, key, nil); err != nil {
				return errf("after refused duplicate-key transaction %d: %v", i, err)
			}
		}
	}
	return nil
}

// coordLimits: etcd's default limits and its empty-key check. A transaction
// of model.MaxTxnOps compares and as many puts is accepted; one more compare
// or one more put, a request over model.MaxRequestBytes, or an empty key (a
// get, a put, a delete or a compare) is refused with ErrInvalid (etcd's
// InvalidArgument) and writes nothing. A range of the empty prefix is every
// key, not an error.
func coordLimits(svc CoordService, root string) error {
	c := svc.Client()
	wide := func(cmps, puts int) model.CoordRequest {
		var req model.CoordRequest
		req.Kind = model.CoordTxn
		for i := range cmps {
			req.Compares = append(req.Compares, model.Compare{Key: fmt.Sprintf("%sc%03d", root, i)})
		}
		for i := range puts {
			req.Then = append(req.Then, put(fmt.Sprintf("%sp%03d", root, i), "v"))
		}
		return req
	}
	big := txn(nil, []model.TxnOp{put(root+"big", string(make([]byte, model.MaxRequestBytes)))}, nil)
	for i, req := range []model.CoordRequest{
		wide(model.MaxTxnOps+1, 1),
		wide(0, model.MaxTxnOps+1),
		txn(nil, nil, wide(0, model.MaxTxnOps+1).Then),
		big,
		txn(nil, []model.TxnOp{put("", "v")}, nil),
		txn(nil, []model.TxnOp{del("")}, nil),
		txn(nil, nil, []model.TxnOp{put("", "v")}),
		txn([]model.Compare{{Key: ""}}, []model.TxnOp{put(root+"p000", "v")}, nil),
		{Kind: model.CoordGet, Key: ""},
	} {
		r, se, err := c.Do(req)
		if err != nil {
			return errf("refused request %d: unknown outcome: %v", i, err)
		}
		if se != model.ErrInvalid {
			return errf("request %d (%s): %v (succeeded=%v), want %v", i, describeCoord(req), se, r.Succeeded, model.ErrInvalid)
		}
	}
	for _, key := range []string{root + "p000", root + "p128", root + "big"} {
		if _, err := wantValue(c, key, nil); err != nil {
			return errf("after the refused requests: %v", err)
		}
	}
	r, err := cdo(c, wide(model.MaxTxnOps, model.MaxTxnOps))
	if err != nil {
		return errf("a transaction of exactly %d compares and puts: %v", model.MaxTxnOps, err)
	}
	if !r.Succeeded {
		return errf("a transaction of %d absent-key compares failed its compares", model.MaxTxnOps)
	}
	all, err := cdo(c, model.CoordRequest{Kind: model.CoordRange, Key: ""})
	if err != nil {
		return errf("range of the empty prefix: %v", err)
	}
	n := 0
	for _, kv := range all.KVs {
		if strings.HasPrefix(kv.Key, root) {
			n++
		}
	}
	if n != model.MaxTxnOps {
		return errf("range of the empty prefix: %d keys of this case, want %d", n, model.MaxTxnOps)
	}
	return nil
}

// coordRange: a range returns exactly the keys with the prefix, sorted by
// key, with their values and ModRevisions.
func coordRange(svc CoordService, root string) error {
	c := svc.Client()
	p := root + "routes/"
	keys := []string{p + "b", root + "routes0", p + "a/2", root + "other", p + "a/1", p + "c", root + "route"}
	revs := map[string]int64{}
	for _, k := range keys {
		rev, err := commit(c, txn(nil, []model.TxnOp{put(k, "v:"+k)}, nil))
		if err != nil {
			return err
		}
		revs[k] = rev
	}
	r, err := cdo(c, model.CoordRequest{Kind: model.CoordRange, Key: p})
	if err != nil {
		return err
	}
	var got []string
	for _, kv := range r.KVs {
		got = append(got, kv.Key)
		if string(kv.Value) != "v:"+kv.Key || kv.ModRevision != revs[kv.Key] {
			return errf("range %s: %s = %q at %d, want %q at %d", p, kv.Key, kv.Value, kv.ModRevision, "v:"+kv.Key, revs[kv.Key])
		}
	}
	if err := wantKeys("range "+p, got, []string{p + "a/1", p + "a/2", p + "b", p + "c"}); err != nil {
		return err
	}
	r, err = cdo(c, model.CoordRequest{Kind: model.CoordRange, Key: root + "nothing/"})
	if err != nil {
		return err
	}
	if len(r.KVs) != 0 {
		return errf("range of an empty prefix returned %d keys", len(r.KVs))
	}
	return nil
}

// coordClients: a write acknowledged to one client is seen by the next read
// of any other (linearizable reads), and of two swaps on the same revision
// from two clients, exactly one succeeds.
func coordClients(svc CoordService, root string) error {
	a, b := svc.Client(), svc.Client()
	k := root + "k"
	rev := int64(0)
	for i := range 5 {
		v := []byte{'v', byte('0' + i)}
		r, err := cdo(a, model.PutIfVersion(k, v, rev))
		if err != nil {
			return err
		}
		if !r.Succeeded {
			return errf("round %d: swap by a on %d failed", i, rev)
		}
		got, err := wantValue(b, k, v)
		if err != nil {
			return errf("round %d: b does not see a's acknowledged write: %v", i, err)
		}
		rev = got
		r1, err := cdo(b, model.PutIfVersion(k, []byte("b"), rev))
		if err != nil {
			return err
		}
		r2, err := cdo(a, model.PutIfVersion(k, []byte("a"), rev))
		if err != nil {
			return err
		}
		if !r1.Succeeded || r2.Succeeded {
			return errf("round %d: two swaps on revision %d: b %v, a %v; want exactly the first", i, rev, r1.Succeeded, r2.Succeeded)
		}
		if rev, err = wantValue(a, k, []byte("b")); err != nil {
			return err
		}
	}
	return nil
}

// coordLostCAS: a swap whose request or answer was lost. A read shows whether
// it landed; a retry of the same swap then fails if it landed (the revision
// moved: a swap is not idempotent) and succeeds if it did not; either way the
// key ends holding the value exactly once. Run twice, so that an adapter
// that alternates loses a request once and an answer once.
func coordLostCAS(svc CoordService, root string) error {
	c := svc.Client()
	k := root + "k"
	rev, err := commit(c, txn(nil, []model.TxnOp{put(k, "old")}, nil))
	if err != nil {
		return err
	}
	landed := map[bool]int{}
	for i := range 4 {
		mine := []byte{'m', byte('0' + i)}
		swap := model.PutIfVersion(k, mine, rev)
		c.DoLost(swap)
		kv, ok, _, err := getKV(c, k)
		if err != nil {
			return err
		}
		if !ok {
			return errf("attempt %d: the key vanished", i)
		}
		did := bytes.Equal(kv.Value, mine)
		if !did && kv.ModRevision != rev {
			return errf("attempt %d: the key changed to %q at %d, neither the old value nor the lost swap's", i, kv.Value, kv.ModRevision)
		}
		landed[did]++
		r, err := cdo(c, swap)
		if err != nil {
			return err
		}
		if r.Succeeded == did {
			return errf("attempt %d: lost swap landed=%v, and its retry succeeded=%v: want the retry to succeed exactly when the first did not land", i, did, r.Succeeded)
		}
		if rev, err = wantValue(c, k, mine); err != nil {
			return errf("attempt %d after the retry: %v", i, err)
		}
	}
	if landed[true] == 0 || landed[false] == 0 {
		return errf("the adapter's DoLost never exercised both outcomes (landed: %d, not landed: %d)", landed[true], landed[false])
	}
	return nil
}

func grant(c CoordClient) (int64, error) {
	r, err := cdo(c, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: LeaseTTLMs})
	if err != nil {
		return 0, err
	}
	if r.Lease == 0 {
		return 0, errf("lease grant answered lease id 0")
	}
	return r.Lease, nil
}

// coordLeaseExpiry: a key attached to a lease lives while the lease is kept
// alive, and is deleted (with a watch event) once the lease goes unrenewed for
// its TTL; keys without the lease stay; the expired lease is gone.
func coordLeaseExpiry(svc CoordService, root string) error {
	c := svc.Client()
	w, err := c.Watch(root)
	if err != nil {
		return err
	}
	lease, err := grant(c)
	if err != nil {
		return err
	}
	k, keep := root+"alive", root+"plain"
	rk, err := commit(c, txn(nil, []model.TxnOp{{Kind: model.TxnPut, Key: k, Value: []byte("x"), Lease: lease}}, nil))
	if err != nil {
		return err
	}
	rp, err := commit(c, txn(nil, []model.TxnOp{put(keep, "y")}, nil))
	if err != nil {
		return err
	}
	if kv, ok, _, err := getKV(c, k); err != nil || !ok || kv.Lease != lease {
		return errf("%s: present=%v lease %d, want lease %d (err %v)", k, ok, kv.Lease, lease, err)
	}
	// Keep it alive for two TTLs.
	for range 2 * LeaseTTLMs / (LeaseTTLMs / 2) {
		svc.Sleep(LeaseTTLMs / 2)
		if _, err := cdo(c, model.CoordRequest{Kind: model.CoordLeaseKeepAlive, Lease: lease}); err != nil {
			return errf("keepalive of a live lease: %v", err)
		}
	}
	if _, err := wantValue(c, k, []byte("x")); err != nil {
		return errf("after keepalives for 2 TTLs: %v", err)
	}
	// Stop renewing: still there shortly before the TTL, gone after it.
	svc.Sleep(LeaseTTLMs - leaseMarginMs)
	if _, err := wantValue(c, k, []byte("x")); err != nil {
		return errf("%d ms after the last keepalive (TTL %d ms): %v", LeaseTTLMs-leaseMarginMs, LeaseTTLMs, err)
	}
	waited := int64(LeaseTTLMs - leaseMarginMs)
	for {
		_, ok, _, err := getKV(c, k)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if waited > LeaseTTLMs+LeaseGraceMs {
			return errf("%s still present %d ms after its lease's last keepalive (TTL %d ms)", k, waited, LeaseTTLMs)
		}
		svc.Sleep(leasePollMs)
		waited += leasePollMs
	}
	if _, err := wantValue(c, keep, []byte("y")); err != nil {
		return errf("a key without the lease: %v", err)
	}
	// The watch saw: put k, put keep, delete k.
	want := []watchWant{{k, "x", rk, false}, {keep, "y", rp, false}, {k, "", 0, true}}
	if err := expectEvents(w, want); err != nil {
		return err
	}
	_, se, err := c.Do(model.CoordRequest{Kind: model.CoordLeaseKeepAlive, Lease: lease})
	if err != nil || se != model.ErrLeaseExpired {
		return errf("keepalive of an expired lease: %v (err %v), want %v", se, err, model.ErrLeaseExpired)
	}
	return nil
}

// coordLeaseRevoke: revoking a lease deletes its keys at once.
func coordLeaseRevoke(svc CoordService, root string) error {
	c := svc.Client()
	lease, err := grant(c)
	if err != nil {
		return err
	}
	ks := []string{root + "b", root + "a"}
	for _, k := range ks {
		if _, err := commit(c, txn(nil, []model.TxnOp{{Kind: model.TxnPut, Key: k, Value: []byte("v"), Lease: lease}}, nil)); err != nil {
			return err
		}
	}
	if _, err := cdo(c, model.CoordRequest{Kind: model.CoordLeaseRevoke, Lease: lease}); err != nil {
		return err
	}
	for _, k := range ks {
		if _, err := wantValue(c, k, nil); err != nil {
			return errf("after revoking its lease: %v", err)
		}
	}
	return nil
}

// coordLeaseErrors: operations on a lease that does not exist are definite
// ErrLeaseExpired refusals, and a refused transaction writes nothing.
func coordLeaseErrors(svc CoordService, root string) error {
	c := svc.Client()
	lease, err := grant(c)
	if err != nil {
		return err
	}
	if _, err := cdo(c, model.CoordRequest{Kind: model.CoordLeaseRevoke, Lease: lease}); err != nil {
		return err
	}
	for _, req := range []model.CoordRequest{
		{Kind: model.CoordLeaseKeepAlive, Lease: lease},
		{Kind: model.CoordLeaseRevoke, Lease: lease},
		txn(nil, []model.TxnOp{put(root+"plain", "p"), {Kind: model.TxnPut, Key: root + "k", Value: []byte("v"), Lease: lease}}, nil),
	} {
		_, se, err := c.Do(req)
		if err != nil {
			return errf("%s on a revoked lease: unknown outcome: %v", describeCoord(req), err)
		}
		if se != model.ErrLeaseExpired {
			return errf("%s on a revoked lease: %v, want %v", describeCoord(req), se, model.ErrLeaseExpired)
		}
	}
	if _, err := wantValue(c, root+"plain", nil); err != nil {
		return errf("a refused transaction wrote: %v", err)
	}
	return nil
}

type watchWant struct {
	key, value string
	rev        int64 // 0: any (a delete's revision is the deletion's)
	deleted    bool
}

func expectEvents(w CoordWatch, want []watchWant) error {
	var lastRev int64
	for i, ww := range want {
		ev, ok := w.Next(watchWaitMs)
		if !ok {
			return errf("watch: event %d (%s deleted=%v) never came", i, ww.key, ww.deleted)
		}
		if ev.KV.Key != ww.key || ev.Deleted != ww.deleted {
			return errf("watch: event %d is %s deleted=%v, want %s deleted=%v", i, ev.KV.Key, ev.Deleted, ww.key, ww.deleted)
		}
		if !ww.deleted && string(ev.KV.Value) != ww.value {
			return errf("watch: event %d (%s) value %q, want %q", i, ww.key, ev.KV.Value, ww.value)
		}
		if ww.deleted && len(ev.KV.Value) != 0 {
			return errf("watch: delete event %d (%s) carries value %q", i, ww.key, ev.KV.Value)
		}
		if ww.rev != 0 && ev.KV.ModRevision != ww.rev {
			return errf("watch: event %d (%s) at ModRevision %d, want %d", i, ww.key, ev.KV.ModRevision, ww.rev)
		}
		if ev.KV.ModRevision < lastRev {
			return errf("watch: event %d (%s) at revision %d after one at %d: out of order", i, ww.key, ev.KV.ModRevision, lastRev)
		}
		lastRev = ev.KV.ModRevision
	}
	if ev, ok := w.Next(watchQuietMs); ok {
		return errf("watch: unexpected extra event %s deleted=%v at %d", ev.KV.Key, ev.Deleted, ev.KV.ModRevision)
	}
	return nil
}

// coordWatchOrder: a watch delivers every change under its prefix made after
// it was created, none before and none outside the prefix, in revision order;
// the writes of one transaction share its revision and arrive in the order the
// transaction lists them (etcd's order, which the simulator follows).
func coordWatchOrder(svc CoordService, root string) error {
	c, other := svc.Client(), svc.Client()
	p := root + "w/"
	if _, err := commit(c, txn(nil, []model.TxnOp{put(p+"before", "0")}, nil)); err != nil {
		return err
	}
	w, err := c.Watch(p)
	if err != nil {
		return err
	}
	var want []watchWant
	step := func(cl CoordClient, ops ...model.TxnOp) error {
		rev, err := commit(cl, txn(nil, ops, nil))
		if err != nil {
			return err
		}
		for _, op := range ops {
			if op.Kind == model.TxnPut && len(op.Key) > len(p) && op.Key[:len(p)] == p {
				want = append(want, watchWant{op.Key, string(op.Value), rev, false})
			}
			if op.Kind == model.TxnDelete {
				want = append(want, watchWant{op.Key, "", rev, true})
			}
		}
		return nil
	}
	steps := [][]model.TxnOp{
		{put(p+"a", "1")},
		{put(p+"b", "2")},
		{put(root+"elsewhere", "x")},
		{put(p+"a", "3")},
		{del(p + "b")},
		{put(p+"d", "4"), put(p+"c", "5")}, // one revision; d before c
		{put(p+"before", "6")},
	}
	for i, ops := range steps {
		cl := c
		if i%2 == 1 {
			cl = other // writes from another client are delivered too
		}
		if err := step(cl, ops...); err != nil {
			return err
		}
	}
	return expectEvents(w, want)
}
