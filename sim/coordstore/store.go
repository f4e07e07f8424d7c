// Package coordstore is the simulator's linearizable coordination store: a
// pure, single-threaded data structure with etcd semantics (revisions, multi-key
// transactions compared on ModRevision, leases with TTLs, prefix watches).
//
// The store does no networking and reads no clock: every call that depends on
// time is handed the virtual time. The simulated world wraps it with network
// latency, unreachability and client-side timeouts; Apply is the linearization
// point of an operation.
//
// Revisions follow etcd: the store starts at revision 1 and a transaction that
// changes at least one key bumps the revision by exactly one, every key it
// writes getting that ModRevision. A transaction that changes nothing (failed
// compares with an empty Else, or only deletes of absent keys) does not bump
// the revision, and neither does a lease expiry or revoke that deletes no key.
//
// Lease ids are 1, 2, 3, ... in grant order. A watch reports changes made
// after it was registered and replays no history: a caller that needs the
// current state as well registers the watch, then reads with a Range (both
// are linearized, so nothing falls between them). Watches are per host and
// prefix, not per call: registering the same prefix twice is one watch, as
// in production, where runtime/driver keeps one etcd watch per prefix (a
// registration that timed out and is repeated opens no second watch).
//
// Values are immutable once stored: a put stores its own copy, and Get,
// Range, watch events and the checkers' reads share that buffer rather than
// copying it (a range of every route costs no value copies). A reader must
// not write into a value it got; an append reallocates (values are capped).
package coordstore

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"territory/model"
)

type kvEntry struct {
	value  []byte // owned by the store, never mutated after it is stored
	modRev int64
	lease  int64
}

type lease struct {
	id    int64
	owner model.HostID
	ttlUs int64
	// deadlineUs is when the TTL runs out: from then on a keep-alive fails.
	// revokeUs is when the lease is revoked and its keys deleted: etcd's
	// lessor looks for expired leases every 500 ms and revokes them through
	// raft, so a lease outlives its TTL by up to MaxExpiryLagUs, and until
	// then puts with it succeed.
	deadlineUs int64
	revokeUs   int64
	keys       map[string]struct{}
}

// MaxExpiryLagUs bounds how long after its TTL a lease is revoked: etcd's
// lessor checks for expired leases every 500 ms (lease/lessor.go, runLoop),
// then the revoke goes through raft (a few ms on a healthy cluster). The
// world draws each lease's lag in [0, MaxExpiryLagUs] from a seeded stream
// (SetExpiryLag).
const MaxExpiryLagUs = 550_000

// LeaseTTLUs is the TTL etcd grants for a requested TTL in ms:
// runtime/etcdcoord rounds it up to whole seconds (etcd's TTLs are whole
// seconds), at least 1 s. etcd further raises a TTL below its minimum
// (1.5 election timeouts, rounded up to seconds: 2 s with the default
// 100 ms tick and 1 s election); the core's default lease is 2 s.
func LeaseTTLUs(ttlMs int64) int64 {
	return max((ttlMs+999)/1000, 1) * 1_000_000
}

type watch struct {
	host   model.HostID
	prefix string
}

// Store is the simulated coordination store. It is not safe for concurrent
// use (the simulator is single-threaded).
type Store struct {
	rev       int64
	kv        map[string]kvEntry
	keys      []string // every key of kv, sorted
	leases    map[int64]*lease
	nextLease int64
	watches   []watch // sorted by (host, prefix), no duplicates
	notify    func(watcher model.HostID, ev model.WatchEvent)

	// minDeadline is a lower bound of every lease revoke time (math.MaxInt64
	// when there is no lease); minExact says it is the exact minimum.
	minDeadline int64
	minExact    bool

	lastNowUs int64
	busy      bool
	lag       func() int64 // the expiry lag of a deadline just set, in µs

	changed []string // scratch: keys changed by the current revision
	expired []*lease // scratch: leases expiring in one Tick
}

// New returns an empty store at revision 1.
func New() *Store {
	return &Store{
		rev:         1,
		kv:          make(map[string]kvEntry),
		leases:      make(map[int64]*lease),
		nextLease:   1,
		minDeadline: math.MaxInt64,
		minExact:    true,
	}
}

// SetExpiryLag installs the source of each lease's expiry lag (µs, in [0,
// MaxExpiryLagUs]), drawn whenever a deadline is set (grant, keep-alive).
// Without one a lease is revoked exactly at its deadline.
func (s *Store) SetExpiryLag(fn func() int64) { s.lag = fn }

func (s *Store) setDeadline(l *lease, nowUs int64) {
	l.deadlineUs = nowUs + l.ttlUs
	l.revokeUs = l.deadlineUs
	if s.lag != nil {
		lag := s.lag()
		if lag < 0 || lag > MaxExpiryLagUs {
			panic(fmt.Sprintf("coordstore: expiry lag %dus outside [0, %d]", lag, MaxExpiryLagUs))
		}
		l.revokeUs += lag
	}
}

// SetNotifier installs the watch callback. It is called synchronously, after
// the change is fully applied, once per (watch, changed key), by watcher id,
// then prefix, and then in the order of the transaction's writes, as etcd
// delivers them (a lease expiry: sorted by key, as etcd's lessor deletes
// them). A host whose watched prefixes overlap gets a key once per watch. The callback must not call back into the store's mutating
// methods (Apply, Tick, Expire*, DropWatches): that panics. Reads
// (Revision, Snapshot) are fine.
func (s *Store) SetNotifier(fn func(watcher model.HostID, ev model.WatchEvent)) {
	s.notify = fn
}

// Revision is the current store revision.
func (s *Store) Revision() int64 { return s.rev }

// Snapshot returns every key, sorted, for checkers (values shared, read-only:
// see collect).
func (s *Store) Snapshot() []model.KV {
	return s.collect(0, len(s.keys))
}

// Apply executes one request at virtual time nowUs on behalf of caller: the
// linearization point. Leases whose deadline is at or before nowUs expire
// first (as Tick would), so the outcome depends only on time, not on when the
// world happened to schedule Tick. Times must not go backwards.
func (s *Store) Apply(nowUs int64, caller model.HostID, req model.CoordRequest) (model.CoordResponse, model.ServiceErr) {
	s.enter(nowUs)
	defer s.leave()
	s.expireDue(nowUs)

	switch req.Kind {
	case model.CoordGet:
		if req.Key == "" { // etcd: "key is not provided"
			return model.CoordResponse{Revision: s.rev}, model.ErrInvalid
		}
		resp := model.CoordResponse{Revision: s.rev}
		if e, ok := s.kv[req.Key]; ok {
			resp.KVs = []model.KV{{Key: req.Key, Value: e.value, ModRevision: e.modRev, Lease: e.lease}}
		}
		return resp, model.ErrNone

	case model.CoordRange:
		lo, hi := s.prefixRange(req.Key)
		return model.CoordResponse{Revision: s.rev, KVs: s.collect(lo, hi)}, model.ErrNone

	case model.CoordTxn:
		return s.txn(req)

	case model.CoordLeaseGrant:
		if req.TTLMs <= 0 {
			panic(fmt.Sprintf("coordstore: lease grant with TTL %dms", req.TTLMs))
		}
		l := &lease{id: s.nextLease, owner: caller, ttlUs: LeaseTTLUs(req.TTLMs)}
		s.setDeadline(l, nowUs)
		s.nextLease++
		s.leases[l.id] = l
		// A lower bound stays a lower bound; an exact minimum stays exact.
		s.minDeadline = min(s.minDeadline, l.revokeUs)
		return model.CoordResponse{Revision: s.rev, Lease: l.id}, model.ErrNone

	case model.CoordLeaseKeepAlive:
		l, ok := s.leases[req.Lease]
		if !ok {
			return model.CoordResponse{Revision: s.rev}, model.ErrLeaseExpired
		}
		if nowUs >= l.deadlineUs {
			// Past its TTL, not revoked yet: etcd's renew waits for the
			// revoke, then answers lease-not-found. Here the revoke happens
			// now (sooner than etcd's, by at most the lag).
			s.dropLease(l)
			return model.CoordResponse{Revision: s.rev}, model.ErrLeaseExpired
		}
		s.setDeadline(l, nowUs)
		s.minExact = false
		return model.CoordResponse{Revision: s.rev, Lease: l.id}, model.ErrNone

	case model.CoordLeaseRevoke:
		l, ok := s.leases[req.Lease]
		if !ok {
			return model.CoordResponse{Revision: s.rev}, model.ErrLeaseExpired
		}
		s.dropLease(l)
		return model.CoordResponse{Revision: s.rev}, model.ErrNone

	case model.CoordWatch:
		s.addWatch(caller, req.Key)
		return model.CoordResponse{Revision: s.rev}, model.ErrNone
	}
	panic(fmt.Sprintf("coordstore: unknown request kind %d", req.Kind))
}

func (s *Store) txn(req model.CoordRequest) (model.CoordResponse, model.ServiceErr) {
	// As etcd, an invalid request is refused before anything is compared or
	// written, whichever branch would run (etcd's kvServer checks it before
	// the request reaches raft): InvalidArgument, which runtime/etcdcoord
	// reports as ErrInvalid.
	if !validTxn(req) {
		return model.CoordResponse{Revision: s.rev}, model.ErrInvalid
	}
	ok := true
	for _, c := range req.Compares {
		var cur int64
		if e, found := s.kv[c.Key]; found {
			cur = e.modRev
		}
		if cur != c.ModRevision {
			ok = false
			break
		}
	}
	ops := req.Then
	if !ok {
		ops = req.Else
	}
	// Validate before writing anything: the transaction is atomic.
	for i := range ops {
		op := &ops[i]
		switch op.Kind {
		case model.TxnPut:
			if op.Lease != 0 {
				if _, live := s.leases[op.Lease]; !live {
					return model.CoordResponse{Revision: s.rev}, model.ErrLeaseExpired
				}
			}
		case model.TxnDelete:
		default:
			panic(fmt.Sprintf("coordstore: unknown txn op kind %d", op.Kind))
		}
	}
	next := s.rev + 1
	s.changed = s.changed[:0]
	for i := range ops {
		op := &ops[i]
		if op.Kind == model.TxnPut {
			s.put(op.Key, op.Value, op.Lease, next)
			s.changed = append(s.changed, op.Key)
		} else if s.del(op.Key) {
			s.changed = append(s.changed, op.Key)
		}
	}
	if len(s.changed) > 0 {
		s.rev = next
		s.notifyChanged()
	}
	return model.CoordResponse{Revision: s.rev, Succeeded: ok}, model.ErrNone
}

// validTxn applies etcd's checks of a transaction (server/etcdserver/api/
// v3rpc/key.go, checkTxnRequest and checkIntervals, with the default
// limits):
//   - the largest of compares, then-ops and else-ops is at most
//     model.MaxTxnOps ("too many operations in txn request");
//   - no compare and no operation has an empty key ("key is not provided");
//   - no branch puts one key twice, or puts a key it also deletes ("duplicate
//     key given in txn request"; two deletes of one key are allowed);
//   - the request is at most model.MaxRequestBytes ("request is too large";
//     counted from above, by model.CoordRequestBytes).
func validTxn(req model.CoordRequest) bool {
	if max(len(req.Compares), len(req.Then), len(req.Else)) > model.MaxTxnOps {
		return false
	}
	for _, c := range req.Compares {
		if c.Key == "" {
			return false
		}
	}
	for _, ops := range [][]model.TxnOp{req.Then, req.Else} {
		for _, op := range ops {
			if op.Key == "" {
				return false
			}
		}
		if dupKey(ops) {
			return false
		}
	}
	return model.CoordRequestBytes(req) <= model.MaxRequestBytes
}

// dupKey reports whether ops put one key twice, or put a key they also
// delete (etcd allows two deletes of one key).
func dupKey(ops []model.TxnOp) bool {
	seen := make(map[string]model.TxnOpKind, len(ops))
	dup := false
	for _, op := range ops {
		if k, ok := seen[op.Key]; ok && (k == model.TxnPut || op.Kind == model.TxnPut) {
			dup = true
		}
		if op.Kind == model.TxnPut {
			seen[op.Key] = model.TxnPut
		} else if _, ok := seen[op.Key]; !ok {
			seen[op.Key] = model.TxnDelete
		}
	}
	return dup
}

// Tick revokes every lease whose revoke time (its deadline plus its expiry
// lag) is at or before nowUs, in that order (then lease id): each expiry deletes the lease's keys in one revision
// and notifies watchers.
func (s *Store) Tick(nowUs int64) {
	s.enter(nowUs)
	defer s.leave()
	s.expireDue(nowUs)
}

// NextExpiryUs is the earliest revoke time of a lease, so the world can schedule the
// next Tick; false when there is no lease.
func (s *Store) NextExpiryUs() (int64, bool) {
	if len(s.leases) == 0 {
		return 0, false
	}
	if !s.minExact {
		s.recomputeMin()
	}
	return s.minDeadline, true
}

// ExpireLease expires lease id now (a fault): its keys are deleted in one
// revision and watchers notified. Unknown ids are ignored.
func (s *Store) ExpireLease(id int64) {
	s.enter(s.lastNowUs)
	defer s.leave()
	if l, ok := s.leases[id]; ok {
		s.dropLease(l)
	}
}

// ExpireLeasesOf expires every lease granted by host (session loss), in lease
// id order, one revision per lease that held keys.
func (s *Store) ExpireLeasesOf(host model.HostID) {
	s.enter(s.lastNowUs)
	defer s.leave()
	s.expired = s.expired[:0]
	for _, l := range s.leases {
		if l.owner == host {
			s.expired = append(s.expired, l)
		}
	}
	slices.SortFunc(s.expired, func(a, b *lease) int { return cmp.Compare(a.id, b.id) })
	for _, l := range s.expired {
		s.dropLease(l)
	}
	clear(s.expired)
}

// DropWatches removes every watch registered by host (a crashed host loses
// its watches).
func (s *Store) DropWatches(host model.HostID) {
	s.enter(s.lastNowUs)
	defer s.leave()
	s.watches = slices.DeleteFunc(s.watches, func(w watch) bool { return w.host == host })
}

// ---- internals ----

func (s *Store) enter(nowUs int64) {
	if s.busy {
		panic("coordstore: re-entrant call (from the watch notifier?)")
	}
	if nowUs < s.lastNowUs {
		panic(fmt.Sprintf("coordstore: time went backwards: %d < %d", nowUs, s.lastNowUs))
	}
	s.lastNowUs = nowUs
	s.busy = true
}

func (s *Store) leave() { s.busy = false }

func (s *Store) expireDue(nowUs int64) {
	if nowUs < s.minDeadline {
		return
	}
	s.expired = s.expired[:0]
	for _, l := range s.leases {
		if l.revokeUs <= nowUs {
			s.expired = append(s.expired, l)
		}
	}
	slices.SortFunc(s.expired, func(a, b *lease) int {
		if c := cmp.Compare(a.revokeUs, b.revokeUs); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	for _, l := range s.expired {
		s.dropLease(l)
	}
	clear(s.expired)
	s.recomputeMin()
}

func (s *Store) recomputeMin() {
	m := int64(math.MaxInt64)
	for _, l := range s.leases {
		m = min(m, l.revokeUs)
	}
	s.minDeadline = m
	s.minExact = true
}

// dropLease removes l and deletes its keys in one revision.
func (s *Store) dropLease(l *lease) {
	delete(s.leases, l.id)
	s.minExact = false
	if len(l.keys) == 0 {
		return
	}
	s.changed = s.changed[:0]
	for k := range l.keys {
		s.changed = append(s.changed, k)
	}
	slices.Sort(s.changed)
	for _, k := range s.changed {
		if !s.del(k) {
			panic("coordstore: lease lists a key that does not exist: " + k)
		}
	}
	s.rev++
	s.notifyChanged()
}

// put stores a copy of value under key at revision rev, moving the key's
// lease attachment (a put without a lease detaches it, as in etcd).
func (s *Store) put(key string, value []byte, leaseID int64, rev int64) {
	old, exists := s.kv[key]
	if exists {
		if old.lease != 0 && old.lease != leaseID {
			s.detach(old.lease, key)
		}
	} else {
		i, _ := slices.BinarySearch(s.keys, key)
		s.keys = slices.Insert(s.keys, i, key)
	}
	if leaseID != 0 {
		l := s.leases[leaseID]
		if l == nil {
			panic("coordstore: put on a lease that was not validated")
		}
		if l.keys == nil {
			l.keys = make(map[string]struct{})
		}
		l.keys[key] = struct{}{}
	}
	s.kv[key] = kvEntry{value: clone(value), modRev: rev, lease: leaseID}
}

// del removes key; false if it did not exist.
func (s *Store) del(key string) bool {
	old, exists := s.kv[key]
	if !exists {
		return false
	}
	if old.lease != 0 {
		s.detach(old.lease, key)
	}
	delete(s.kv, key)
	i, found := slices.BinarySearch(s.keys, key)
	if !found {
		panic("coordstore: key index out of sync: " + key)
	}
	s.keys = slices.Delete(s.keys, i, i+1)
	return true
}

func (s *Store) detach(leaseID int64, key string) {
	if l := s.leases[leaseID]; l != nil {
		delete(l.keys, key)
	}
}

// prefixRange returns the [lo, hi) indexes of s.keys with the given prefix.
func (s *Store) prefixRange(prefix string) (int, int) {
	lo, _ := slices.BinarySearch(s.keys, prefix)
	hi := lo
	for hi < len(s.keys) && strings.HasPrefix(s.keys[hi], prefix) {
		hi++
	}
	return lo, hi
}

// collect returns keys[lo:hi]. The values are the store's own buffers, shared
// and not copied: a stored value is never written after it is stored (a put
// stores a fresh copy), so every reader may keep it. Each is capped at its
// length, so an append by a reader reallocates instead of writing into it.
// Readers must not write into a value: the core only parses them.
func (s *Store) collect(lo, hi int) []model.KV {
	if lo >= hi {
		return nil
	}
	out := make([]model.KV, hi-lo)
	for i, k := range s.keys[lo:hi] {
		e := s.kv[k]
		out[i] = model.KV{Key: k, Value: e.value, ModRevision: e.modRev, Lease: e.lease}
	}
	return out
}

func (s *Store) addWatch(host model.HostID, prefix string) {
	w := watch{host: host, prefix: prefix}
	i, found := slices.BinarySearchFunc(s.watches, w, cmpWatch)
	if !found {
		s.watches = slices.Insert(s.watches, i, w)
	}
}

func cmpWatch(a, b watch) int {
	if c := cmp.Compare(a.host, b.host); c != 0 {
		return c
	}
	return strings.Compare(a.prefix, b.prefix)
}

// notifyChanged reports the keys in s.changed (at revision s.rev) to every
// watch, in watch order (host, then prefix), and for each watch in the order
// of s.changed: once per watch and key, so a host whose watched prefixes
// overlap gets a key twice, as from two etcd watches. s.changed is in the order of the transaction's
// writes (etcd delivers a transaction's events in that order) or sorted (a
// lease expiry: etcd's lessor deletes a lease's keys sorted).
func (s *Store) notifyChanged() {
	if s.notify == nil || len(s.watches) == 0 {
		return
	}
	for _, w := range s.watches {
		for _, key := range s.changed {
			if strings.HasPrefix(key, w.prefix) {
				s.notify(w.host, s.event(key))
			}
		}
	}
}

func (s *Store) event(key string) model.WatchEvent {
	e, ok := s.kv[key]
	if !ok {
		return model.WatchEvent{KV: model.KV{Key: key, ModRevision: s.rev}, Deleted: true}
	}
	return model.WatchEvent{KV: model.KV{Key: key, Value: e.value, ModRevision: e.modRev, Lease: e.lease}}
}

// clone copies a caller's value into a buffer of the store's own, capped at
// its length (see collect).
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	c := make([]byte, len(b))
	copy(c, b)
	return c[:len(b):len(b)]
}

// Peek returns one key for checkers without the side effects of Apply (no
// lease expiry, no revision change). The value must not be modified.
func (s *Store) Peek(key string) (model.KV, bool) {
	e, ok := s.kv[key]
	if !ok {
		return model.KV{}, false
	}
	return model.KV{Key: key, Value: e.value, ModRevision: e.modRev, Lease: e.lease}, true
}

// PeekPrefix returns every key under prefix, sorted, for checkers (values
// shared, read-only: see collect).
func (s *Store) PeekPrefix(prefix string) []model.KV {
	lo, hi := s.prefixRange(prefix)
	return s.collect(lo, hi)
}
