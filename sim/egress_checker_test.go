package sim

import (
	"strings"
	"testing"

	"territory/model"
	"territory/sim/invariants"
)

// egressRig is a test world with only the egress checker, a hand-made log
// of subgraph 0 (neuron a connected to three others: a supernode at degree
// 3), and ways to publish stream records and proxy facts.
type egressRig struct {
	t       *testing.T
	w       *World
	fold    *model.SubgraphState
	entries []model.LogEntry
	digests []uint64
}

func newEgressRig(t *testing.T) *egressRig {
	w := testWorld(t)
	w.cfg.Egress = 1
	c := newEgressChecker(w.view).(*egressChecker)
	w.checkers = []Checker{c}
	// Every territory is adjacent to subgraph 0 unless a test says otherwise.
	c.adjOf = func(*View, model.HostID) []model.SubgraphID { return []model.SubgraphID{0} }
	r := &egressRig{t: t, w: w, fold: model.NewSubgraphState(0, w.cfg.Subgraphs, model.GenesisPolicy())}
	var ns []model.NeuronID
	for n := model.NeuronID(1); len(ns) < 4; n++ {
		if model.SubgraphOf(n, w.cfg.Subgraphs) == 0 {
			ns = append(ns, n)
		}
	}
	p := model.DefaultPolicy()
	p.SupernodeDegree = 3
	r.commit(model.Event{Type: model.EvAdoptPolicy, Policy: p})
	for _, n := range ns {
		r.commit(model.Event{Type: model.EvCreateNeuron, Neuron: n})
	}
	for _, post := range ns[1:] {
		r.commit(model.Event{Type: model.EvConnect, Pre: ns[0], Post: post, Value: 1})
	}
	if !r.fold.HasSupernode() {
		t.Fatal("rig: no supernode")
	}
	return r
}

// commit folds one event as the fold checker would and publishes it.
func (r *egressRig) commit(ev model.Event) {
	ev.LSN, ev.Subgraph = r.fold.AppliedLSN+1, 0
	ev.UUID = model.EventUUID{Hi: 9, Lo: ev.LSN}
	data := ev.Encode()
	res, applied := r.fold.Apply(&ev)
	r.entries = append(r.entries, model.LogEntry{LSN: ev.LSN, Data: data})
	r.digests = append(r.digests, r.fold.Digest())
	r.w.publish(EntryFolded{Entry: EntryCommitted{Stream: 0, LSN: ev.LSN, Data: data}, Subgraph: 0, Event: ev, Result: res, Applied: applied, Fold: r.fold})
}

// publish puts the entries from..to (LSNs) in the stream as one record.
func (r *egressRig) publish(offset uint64, from, to uint64) {
	r.w.publish(EgressCommitted{Offset: offset, Epoch: 1, Data: model.EncodeEgressRecord(r.entries[from-1 : to])})
}

func (r *egressRig) applied(host model.HostID, lsn uint64, digest uint64) {
	r.w.publish(FactObserved{Host: host, Fact: model.FactProxyApplied{Territory: host, Subgraph: 0, LSN: lsn, Digest: digest}})
}

// expect asserts exactly the named violations (none: clean).
func (r *egressRig) expect(names ...string) {
	r.t.Helper()
	var got []string
	for _, v := range r.w.violations {
		got = append(got, v.Invariant)
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		r.t.Fatalf("violations %v, want %v (%v)", got, names, r.w.violations)
	}
}

func TestEgressCleanWithRedelivery(t *testing.T) {
	r := newEgressRig(t)
	r.publish(1, 1, 4)
	r.publish(2, 3, 7) // LSNs 3 and 4 again: a republished batch
	r.applied(1, 4, r.digests[3])
	r.applied(1, 7, r.digests[6])
	r.expect()
	c := r.w.checkers[0].(*egressChecker)
	if c.redeliv != 2 {
		t.Fatalf("redeliveries %d, want 2", c.redeliv)
	}
}

func TestEgressGapPlanted(t *testing.T) {
	r := newEgressRig(t)
	r.publish(1, 1, 3)
	r.publish(2, 5, 7) // LSN 4 never published
	r.expect(invariants.EgressNoGap)
}

func TestEgressNotFromLSN1Planted(t *testing.T) {
	r := newEgressRig(t)
	r.publish(1, 2, 7)
	r.expect(invariants.EgressNoGap)
}

func TestEgressForgedEntryPlanted(t *testing.T) {
	r := newEgressRig(t)
	ev, _ := model.DecodeEvent(r.entries[1].Data)
	ev.Value = 42 // same LSN, other bytes: not the committed entry
	r.w.publish(EgressCommitted{Offset: 1, Data: model.EncodeEgressRecord([]model.LogEntry{r.entries[0], {LSN: 2, Data: ev.Encode()}})})
	r.expect(invariants.EgressNoGap)
}

func TestProxyGapFactPlanted(t *testing.T) {
	r := newEgressRig(t)
	r.w.publish(FactObserved{Host: 1, Fact: model.FactProxyGap{Territory: 1, Subgraph: 0, Applied: 2, LSN: 4}})
	r.expect(invariants.EgressNoGap)
}

func TestProxyPrefixPlanted(t *testing.T) {
	r := newEgressRig(t)
	r.applied(1, 5, r.digests[5]) // LSN 5 claiming the state of LSN 6
	r.expect(invariants.ProxyPrefix)
}

func TestProxyBeyondLogPlanted(t *testing.T) {
	r := newEgressRig(t)
	r.applied(1, 9, r.digests[7]) // 8 entries committed
	r.expect(invariants.ProxyPrefix)
}

func TestProxyMonotonicPlanted(t *testing.T) {
	r := newEgressRig(t)
	r.applied(1, 5, r.digests[4])
	r.applied(1, 3, r.digests[2])
	r.expect(invariants.ProxyMonotonic)
}

func TestProxyRestartMayRebuild(t *testing.T) {
	r := newEgressRig(t)
	r.applied(1, 5, r.digests[4])
	r.w.publish(HostChanged{Host: 1, Change: HostCrashed})
	r.applied(1, 3, r.digests[2]) // a new incarnation rebuilding from the stream
	r.expect()
}

// TestEgressLagPlanted: 10 s after the commits, the stream holds them but
// the proxy of t1 (up all along) is behind: lag. A proxy that caught up is not.
func TestEgressLagPlanted(t *testing.T) {
	for _, caughtUp := range []bool{false, true} {
		r := newEgressRig(t)
		t1 := r.w.territories[0].id
		r.w.territories[0].up = true // Running: the view reads the host
		r.publish(1, 1, 8)
		r.w.k.At(5_000_000, func() {
			for _, h := range r.w.territories {
				r.w.publish(HostChanged{Host: h.id, Change: HostBooted}) // booted now: too recent to judge
			}
		})
		r.w.k.At(10_000_000, func() {
			if caughtUp {
				r.applied(t1, 8, r.digests[7])
			} else {
				r.applied(t1, 4, r.digests[3])
			}
		})
		r.w.k.At(10_000_000, func() {})
		if err := r.w.k.Run(10_000_001); err != nil {
			t.Fatal(err)
		}
		r.w.checkers[0].(*egressChecker).checkLag(r.w.view)
		if caughtUp {
			r.expect()
		} else {
			r.expect(invariants.EgressLag)
		}
	}
}

func TestEgressStreamLagPlanted(t *testing.T) {
	r := newEgressRig(t)
	r.publish(1, 1, 3)
	r.w.k.At(5_000_000, func() {})
	if err := r.w.k.Run(5_000_001); err != nil {
		t.Fatal(err)
	}
	r.w.checkers[0].(*egressChecker).checkLag(r.w.view)
	r.expect(invariants.EgressLag)
}

// TestProxyAdjacentPlanted: t1 keeps its replica of subgraph 0 for 4 s after
// its territory stopped being adjacent to it: a violation; one that dropped
// it in time is not. A lagging replica of a subgraph it is no longer
// adjacent to is no lag violation.
func TestProxyAdjacentPlanted(t *testing.T) {
	for _, drops := range []bool{false, true} {
		r := newEgressRig(t)
		c := r.w.checkers[0].(*egressChecker)
		r.publish(1, 1, 8)
		t1 := r.w.territories[0].id
		r.w.territories[0].up = true
		adjacent, kept := true, true
		c.adjOf = func(_ *View, h model.HostID) []model.SubgraphID {
			if adjacent || h != t1 {
				return []model.SubgraphID{0}
			}
			return nil
		}
		replica := model.NewSubgraphState(0, r.w.cfg.Subgraphs, model.GenesisPolicy())
		c.replicaOf = func(_ *View, h model.HostID, sg model.SubgraphID) *model.SubgraphState {
			if h == t1 && kept {
				return replica
			}
			return nil
		}
		r.w.k.At(1_000_000, func() { adjacent = false; c.sample(r.w.view) })
		r.w.k.At(2_000_000, func() {
			if drops {
				kept = false
				r.w.publish(FactObserved{Host: t1, Fact: model.FactProxyDropped{Territory: t1, Subgraph: 0, LSN: 4}})
			}
		})
		r.w.k.At(5_500_000, func() { c.sample(r.w.view) })
		if err := r.w.k.Run(5_500_001); err != nil {
			t.Fatal(err)
		}
		if drops {
			r.expect()
		} else {
			r.expect(invariants.ProxyAdjacent)
		}
		if c.checkLag(r.w.view); drops {
			r.expect()
		}
	}
}

func (r *egressRig) fromSnapshot(host model.HostID, lsn uint64, digest uint64) {
	r.w.publish(FactObserved{Host: host, Fact: model.FactProxySnapshot{Territory: host, Subgraph: 0, UUID: "s", LSN: lsn, Digest: digest}})
}

// A replica started from a snapshot is judged at the snapshot's LSN, and the
// starts are counted.
func TestProxySnapshotStartClean(t *testing.T) {
	r := newEgressRig(t)
	r.publish(1, 1, 8)
	r.fromSnapshot(1, 4, r.digests[3])
	r.applied(1, 8, r.digests[7])
	r.w.publish(FactObserved{Host: 2, Fact: model.FactProxySnapshot{Territory: 2, Subgraph: 0, Rejected: "snapshot x: checksum", Rewind: 1}})
	r.expect()
	var o Outcome
	r.w.checkers[0].(*egressChecker).Report(&o)
	if e := o.Egress; e.ReplicaStarts != 2 || e.FromSnapshot != 1 || e.SnapshotLSNs != 4 || e.SnapshotRejected != 1 || e.Rewinds != 1 {
		t.Fatalf("figures %+v", e)
	}
}

func TestProxySnapshotNotTheFoldPlanted(t *testing.T) {
	r := newEgressRig(t)
	r.fromSnapshot(1, 4, r.digests[4]) // LSN 4 claiming the state of LSN 5
	r.expect(invariants.ProxyPrefix)
}

func TestProxySnapshotBehindReplicaPlanted(t *testing.T) {
	r := newEgressRig(t)
	r.applied(1, 6, r.digests[5])
	r.fromSnapshot(1, 4, r.digests[3]) // a live replica replaced by an older snapshot
	r.expect(invariants.ProxyMonotonic)
}
