package model

import "fmt"

// A proxy's replica starts from its subgraph's committed snapshot (the one
// the primaries persist, territory_snapshot.go), then the stream: "it
// survives its own crash by rebuilding from the primary's snapshot plus the
// stream". When the territory becomes adjacent to a subgraph (at boot, after
// a crash, or later), the proxy reads the subgraph's snapshot head, gets the
// blob and checks it like the recovery loader (SnapshotFor: size, checksum,
// decoding, subgraph and LSN); the replica starts at the snapshot's LSN S.
// With no snapshot, or none that passes, or the stores unreachable after
// LoadAttempts tries, the replica starts empty at LSN 0, as before.
//
// Then it needs every event of the subgraph after S, once, in order. The
// proxy applies an event only at the replica's LSN + 1, so any stream offset
// at or before the first record holding S+1 is sound: the events at or below
// S are dropped as duplicates. Which offset: the proxy keeps, for each
// subgraph of the stream, marks (first LSN L, offset O) of the records it read
// in this incarnation, one per record that starts past every earlier one.
// Every event of the subgraph from L on is in the stream at O or after: the
// egress publishes each subgraph's log in LSN order, from its persisted
// cursor + 1, and persists the cursor only after the record is acknowledged,
// so the record at O was made after the cursor reached L-1; every later
// leader starts at or below the first LSN not yet acknowledged, and appends
// after O (it fenced the older one). So the proxy reads again from the
// greatest mark at or below S+1, and only if it already read past S for that
// subgraph (else S+1 is still ahead). A snapshot-started replica thus folds
// O(suffix) events instead of the whole log. What it does not save: a
// restarted proxy still reads the stream once from offset 1, since nothing
// durable tells it where a subgraph's record of S+1 is (an LSN-to-offset
// index in the coordination store would grow with the stream, and a snapshot
// record cannot name an egress offset: the primary that writes it does not
// know the stream).
//
// The stream reads wait while a load is in flight, so no event of the
// subgraph is applied to a replica that the snapshot then replaces.

// proxyMarks bounds the marks kept per subgraph; when full, the older half is
// thinned to every other mark, so the recent marks (where a snapshot's LSN
// falls) stay dense and the old ones grow sparse. Any earlier mark is sound,
// only further back.
const proxyMarks = 64

// proxyMark: the proxy read a record of a subgraph at off whose first event
// is at lsn.
type proxyMark struct{ lsn, off uint64 }

// proxyLoad is a snapshot load in flight for one subgraph.
type proxyLoad struct {
	tries int
	rec   SnapshotRecord
}

// FactProxySnapshot: a proxy started its replica of Subgraph from the
// committed snapshot UUID at LSN (Digest its state's), or, Rejected saying
// why ("none": no committed snapshot; "unreachable": the stores did not
// answer; else the check that failed), from the empty state at LSN 0. Rewind
// is the stream offset the proxy went back to for the events after LSN (0:
// they are all ahead of it).
type FactProxySnapshot struct {
	Territory HostID
	Subgraph  SubgraphID
	UUID      string
	LSN       uint64
	Digest    uint64
	Rejected  string
	Rewind    uint64
}

func (FactProxySnapshot) isFact() {}

// mark records a record of sg read at off whose first event is at lsn, and
// the highest LSN of sg read.
func (x *proxy) mark(sg SubgraphID, first, last, off uint64) {
	x.seen[sg] = max(x.seen[sg], last)
	m := x.marks[sg]
	if len(m) > 0 && first <= m[len(m)-1].lsn {
		return // read again, or republished: an earlier mark covers it
	}
	if len(m) == proxyMarks {
		half := m[:proxyMarks/2]
		kept := half[:0]
		for i := 0; i < len(half); i += 2 {
			kept = append(kept, half[i])
		}
		m = append(kept, m[proxyMarks/2:]...)
	}
	x.marks[sg] = append(m, proxyMark{lsn: first, off: off})
}

// markFor is the offset of the greatest mark of sg at or below lsn; 1 (the
// stream's start) if none.
func (x *proxy) markFor(sg SubgraphID, lsn uint64) uint64 {
	off := uint64(1)
	for _, m := range x.marks[sg] {
		if m.lsn > lsn {
			break
		}
		off = m.off
	}
	return off
}

// load starts the snapshot load of a subgraph newly adjacent.
func (x *proxy) load(sg SubgraphID) {
	x.loading[sg] = &proxyLoad{}
	x.getHead(sg)
}

func (x *proxy) getHead(sg SubgraphID) {
	x.t.coord(call{comp: x.id, tag: proxyTagHead, sg: sg}, CoordRequest{Kind: CoordGet, Key: SnapshotHeadKey(sg)})
}

// onLoad handles a head or blob result of sg's load.
func (x *proxy) onLoad(c call, res *result) {
	sg := c.sg
	l := x.loading[sg]
	if l == nil {
		return
	}
	if !res.ok() {
		if c.tag == proxyTagBlob && res.Err == ErrInvalid {
			x.loaded(sg, nil, "the head names no valid blob key")
			return
		}
		// A timeout, an unreachable store, or a blob gone since the head was
		// read (superseded and collected): read the head again.
		l.tries++
		if l.tries >= x.t.cfg.LoadAttempts {
			x.loaded(sg, nil, "unreachable")
			return
		}
		x.t.after(call{comp: x.id, tag: proxyTagLoadRetry, sg: sg}, l.tries)
		return
	}
	if c.tag == proxyTagHead {
		if len(res.Coord.KVs) == 0 {
			x.loaded(sg, nil, "none")
			return
		}
		r, err := ParseHead(sg, res.Coord.KVs[0])
		if err != nil {
			x.t.out.Add(badCoordValue(x.t.cfg.ID, res.Coord.KVs[0].Key, err))
			x.loaded(sg, nil, err.Error())
			return
		}
		if r.State != SnapCommitted || r.Location == "" {
			x.loaded(sg, nil, fmt.Sprintf("the head names a %s record without a blob", r.State))
			return
		}
		l.rec = r
		x.t.blob(call{comp: x.id, tag: proxyTagBlob, sg: sg}, BlobRequest{Kind: BlobGet, Key: r.Location})
		return
	}
	st, err := SnapshotFor(l.rec, x.t.cfg.Subgraphs, res.Blob.Data)
	if err != nil {
		x.loaded(sg, nil, err.Error()) // a blob that fails its checks is never loaded
		return
	}
	x.loaded(sg, st, "")
}

// loaded starts sg's replica from st (nil: empty) and goes back in the stream
// if the events after it are behind the read offset; the reads resume once
// no load is in flight.
func (x *proxy) loaded(sg SubgraphID, st *SubgraphState, rejected string) {
	l := x.loading[sg]
	delete(x.loading, sg)
	f := FactProxySnapshot{Territory: x.t.cfg.ID, Subgraph: sg, Rejected: rejected}
	from := uint64(1)
	if st != nil && st.AppliedLSN > 0 {
		f.UUID, f.LSN, f.Digest = l.rec.UUID, st.AppliedLSN, st.Digest()
		from = st.AppliedLSN + 1
	} else {
		st = NewSubgraphState(sg, x.t.cfg.Subgraphs, GenesisPolicy())
	}
	x.replicas[sg] = st
	if x.seen[sg] >= from {
		if off := x.markFor(sg, from); off < x.offset {
			x.offset, f.Rewind = off, off
		}
	}
	x.t.observe(f)
	if st.AppliedLSN > 0 {
		x.learnTail(sg, 0)
		x.report(sg)
	}
	if len(x.loading) == 0 {
		x.read()
	}
}
