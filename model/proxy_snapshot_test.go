package model

import (
	"hash/crc32"
	"strings"
	"testing"
)

// proxyDriver drives a proxy territory: it answers the stream reads from
// stream and the snapshot loads from heads and blobs.
type proxyDriver struct {
	t      *testing.T
	tr     *Territory
	out    *Outbox
	now    int64
	stream [][]byte
	heads  map[SubgraphID]KV
	blobs  map[string][]byte
	facts  []Fact
	read   *LogCall // the pending stream read
	timer  *SetTimer
}

func newProxyDriver(t *testing.T, tr *Territory, stream [][]byte) *proxyDriver {
	d := &proxyDriver{t: t, tr: tr, out: &Outbox{}, stream: stream, heads: map[SubgraphID]KV{}, blobs: map[string][]byte{}}
	tr.Step(d.now, Start{}, d.out)
	d.settle()
	return d
}

// settle answers every snapshot call until none is left, and keeps the
// stream read, the last timer and the facts.
func (d *proxyDriver) settle() {
	for {
		var next []Input
		for _, o := range effects[Observe](d.out) {
			d.facts = append(d.facts, o.Fact)
		}
		for _, c := range effects[LogCall](d.out) {
			if c.Req.Stream == EgressStream {
				d.read = &c
			}
		}
		for _, c := range effects[SetTimer](d.out) {
			d.timer = &c
		}
		for _, c := range effects[CoordCall](d.out) {
			if sgText, ok := strings.CutPrefix(c.Req.Key, SnapshotHeadsPrefix); ok {
				r := CoordResult{ReqID: c.ReqID}
				for sg, kv := range d.heads { // order: one matches
					if SnapshotHeadKey(sg) == SnapshotHeadsPrefix+sgText {
						r.Resp.KVs = []KV{kv}
					}
				}
				next = append(next, r)
			}
		}
		for _, c := range effects[BlobCall](d.out) {
			if data, ok := d.blobs[c.Req.Key]; ok {
				next = append(next, BlobResult{ReqID: c.ReqID, Resp: BlobResponse{Data: data}})
			} else {
				next = append(next, BlobResult{ReqID: c.ReqID, Outcome: OutcomeFailed, Err: ErrNotFound})
			}
		}
		d.out.Reset()
		if len(next) == 0 {
			return
		}
		for _, in := range next {
			d.tr.Step(d.now, in, d.out)
		}
	}
}

// step answers the pending stream read from the stream, fires the poll timer
// if no read followed, and returns the next read's offset and the facts.
func (d *proxyDriver) step() (uint64, []Fact) {
	d.t.Helper()
	read := d.read
	if read == nil {
		d.t.Fatal("no read of the egress stream pending")
	}
	d.read, d.timer, d.facts = nil, nil, nil
	var es []LogEntry
	for off := read.Req.FromLSN; off <= uint64(len(d.stream)) && len(es) < int(read.Req.MaxEntries); off++ {
		es = append(es, LogEntry{LSN: off, Data: d.stream[off-1]})
	}
	d.tr.Step(d.now, LogResult{ReqID: read.ReqID, Resp: LogResponse{TailLSN: uint64(len(d.stream)), Entries: es}}, d.out)
	d.settle()
	for range 10 {
		if d.read != nil {
			break
		}
		if d.timer == nil {
			d.t.Fatal("no next read and no timer")
		}
		timer := d.timer
		d.timer = nil
		d.now += timer.AfterMs
		d.tr.Step(d.now, TimerFired{ID: timer.ID}, d.out)
		d.settle()
	}
	if d.read == nil {
		d.t.Fatal("no next read of the egress stream")
	}
	return d.read.Req.FromLSN, d.facts
}

// commitSnapshot makes st the committed snapshot of its subgraph.
func (d *proxyDriver) commitSnapshot(st *SubgraphState, uuid string) []byte {
	data := EncodeSnapshot(st)
	rec := SnapshotRecord{Subgraph: st.ID, UUID: uuid, State: SnapCommitted, LSN: st.AppliedLSN, Territory: 1, Epoch: 1,
		Location: SnapshotBlobKey(st.ID, uuid), Checksum: crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)), Size: len(data)}
	d.heads[st.ID] = KV{Key: SnapshotHeadKey(st.ID), Value: HeadValue(&rec), ModRevision: 5}
	d.blobs[rec.Location] = data
	return data
}

// stimulations is a record of sg's log from LSN from to to (LSN 1 creates
// the neuron), and the events.
func stimulations(sg SubgraphID, n uint32, from, to uint64) ([]byte, []Event) {
	var es []LogEntry
	var evs []Event
	for l := from; l <= to; l++ {
		ev := Event{Type: EvStimulate, Neuron: neuronIn(sg, n), Value: int64(l), Subgraph: sg, LSN: l, UUID: EventUUID{Hi: 3 + uint64(sg), Lo: l}}
		if l == 1 {
			ev.Type = EvCreateNeuron
		}
		es = append(es, LogEntry{LSN: l, Data: ev.Encode()})
		evs = append(evs, ev)
	}
	return EncodeEgressRecord(es), evs
}

func snapshotFacts(facts []Fact) []FactProxySnapshot {
	var got []FactProxySnapshot
	for _, f := range facts {
		if s, ok := f.(FactProxySnapshot); ok {
			got = append(got, s)
		}
	}
	return got
}

// A proxy starts a replica from the committed snapshot and folds only the
// events after it; when it had read past the snapshot's LSN (the subgraph
// became adjacent late) it reads again from the record holding LSN + 1, not
// from the stream's start; the replica is the fold of the whole log.
func TestProxyReplicaFromSnapshotPlusStream(t *testing.T) {
	const n = 3
	tr := proxyTerritory(t, n)
	own := adjacentTo(tr, 0, neuronIn(0, n)) // adjacent to nothing yet
	r1, ev1 := stimulations(1, n, 1, 4)
	r2, ev2 := stimulations(1, n, 5, 8)
	r3, ev3 := stimulations(1, n, 9, 10)
	other, _ := stimulations(2, n, 1, 2)
	d := newProxyDriver(t, tr, [][]byte{r1, other, r2, r3})
	// The primary's fold, and its snapshot at LSN 6.
	fold := NewSubgraphState(1, n, GenesisPolicy())
	var at6 *SubgraphState
	for _, evs := range [][]Event{ev1, ev2, ev3} {
		for i := range evs {
			fold.Apply(&evs[i])
			if evs[i].LSN == 6 {
				at6 = fold.Clone()
			}
		}
	}
	d.commitSnapshot(at6, "t1-e1-l6-1")
	if from, _ := d.step(); from != 5 || tr.Replica(1) != nil || tr.Replica(2) != nil {
		t.Fatalf("read the stream to offset %d, replica of 1 %v: want 5 and none (not adjacent)", from, tr.Replica(1))
	}
	own.saga.cross[SynapseKey{Pre: neuronIn(0, n), Post: neuronIn(1, n)}] = EventUUID{Hi: 1, Lo: 9} // adjacent to 1 now
	from, facts := d.step()
	loads := snapshotFacts(facts)
	if len(loads) != 1 || loads[0].Rejected != "" || loads[0].LSN != 6 || loads[0].Rewind != 3 || loads[0].Digest != at6.Digest() {
		t.Fatalf("newly adjacent to 1 with a snapshot at LSN 6: loads %+v, want one at LSN 6 that rewinds to offset 3 (the record of 5..8)", loads)
	}
	if r := tr.Replica(1); r == nil || r.AppliedLSN != 6 || from != 3 {
		t.Fatalf("after the load: replica %v, next read from %d, want LSN 6 and offset 3", r, from)
	}
	if _, _ = d.step(); tr.Replica(1).AppliedLSN != 10 || tr.Replica(1).Digest() != fold.Digest() {
		t.Fatalf("replica at LSN %d digest %x, the fold at 10 %x", tr.Replica(1).AppliedLSN, tr.Replica(1).Digest(), fold.Digest())
	}

	// A restart with the same snapshot: the first record of 1 starts the
	// load, and the read goes on from that record, skipping LSN 1..6.
	tr2 := proxyTerritory(t, n)
	own2 := adjacentTo(tr2, 0, neuronIn(1, n))
	_ = own2
	d2 := newProxyDriver(t, tr2, [][]byte{r1, other, r2, r3})
	d2.heads, d2.blobs = d.heads, d.blobs
	from, facts = d2.step()
	if loads := snapshotFacts(facts); len(loads) != 1 || loads[0].LSN != 6 || loads[0].Rewind != 0 || from != 1 {
		t.Fatalf("restart: loads %+v, next read %d: want a load at LSN 6 without a rewind, reading on from offset 1", loads, from)
	}
	for range 2 {
		d2.step()
	}
	if r := tr2.Replica(1); r == nil || r.AppliedLSN != 10 || r.Digest() != fold.Digest() {
		t.Fatalf("restart: replica %v, want the fold at 10", r)
	}
}

// A snapshot that fails its checks is never loaded: the replica starts from
// the stream's start, and the fact says why.
func TestProxySnapshotRejected(t *testing.T) {
	const n = 3
	for _, c := range []struct {
		name   string
		damage func(d *proxyDriver, data []byte)
		want   string
	}{
		{"corrupt blob", func(d *proxyDriver, data []byte) { data[len(data)/2] ^= 0xff }, "checksum"},
		{"blob gone", func(d *proxyDriver, _ []byte) { clear(d.blobs) }, "unreachable"},
		{"bad head", func(d *proxyDriver, _ []byte) { d.heads[1] = KV{Key: SnapshotHeadKey(1), Value: []byte("lsn=x")} }, "snapshot head"},
		{"no snapshot", func(d *proxyDriver, _ []byte) { clear(d.heads) }, "none"},
	} {
		tr := proxyTerritory(t, n)
		adjacentTo(tr, 0, neuronIn(1, n))
		r1, evs := stimulations(1, n, 1, 4)
		d := newProxyDriver(t, tr, [][]byte{r1})
		fold := NewSubgraphState(1, n, GenesisPolicy())
		for i := range evs[:2] {
			fold.Apply(&evs[i])
		}
		c.damage(d, d.commitSnapshot(fold, "t1-e1-l2-1"))
		_, facts := d.step()
		for d.read.Req.FromLSN == 1 && tr.Replica(1).AppliedLSN == 0 {
			_, more := d.step()
			facts = append(facts, more...)
		}
		loads := snapshotFacts(facts)
		if len(loads) != 1 || loads[0].LSN != 0 || !strings.Contains(loads[0].Rejected, c.want) {
			t.Errorf("%s: loads %+v, want one rejected with %q", c.name, loads, c.want)
		}
		if r := tr.Replica(1); r == nil || r.AppliedLSN != 4 {
			t.Errorf("%s: replica %v, want the whole log from the stream", c.name, r)
		}
	}
}

// The marks keep the recent records dense and stay bounded; a lookup never
// names an offset past the record that holds the LSN.
func TestProxyMarksThin(t *testing.T) {
	x := &proxy{marks: map[SubgraphID][]proxyMark{}, seen: map[SubgraphID]uint64{}}
	for i := uint64(0); i < 1000; i++ {
		x.mark(0, 1+32*i, 32*(i+1), 10+2*i)
	}
	m := x.marks[0]
	if len(m) > proxyMarks || m[0].lsn != 1 || m[len(m)-1].lsn != 1+32*999 || x.seen[0] != 32000 {
		t.Fatalf("%d marks, first %+v last %+v, seen %d", len(m), m[0], m[len(m)-1], x.seen[0])
	}
	for _, lsn := range []uint64{1, 500, 31_000, 31_969, 32_000} {
		off := x.markFor(0, lsn)
		rec := (lsn - 1) / 32 // the record holding lsn
		if off > 10+2*rec {
			t.Fatalf("LSN %d: offset %d, past its record's %d", lsn, off, 10+2*rec)
		}
		if lsn > 31_000 && off != 10+2*rec {
			t.Errorf("LSN %d: offset %d, want its record's %d (recent marks are dense)", lsn, off, 10+2*rec)
		}
	}
	if off := x.markFor(1, 5); off != 1 {
		t.Fatalf("no marks: offset %d, want 1", off)
	}
}
