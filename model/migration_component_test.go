package model

import (
	"hash/crc32"
	"testing"
)

func migSends(out *Outbox, kind MigMsgKind) []*MigMsg {
	var ms []*MigMsg
	for _, s := range effects[Send](out) {
		if s.Msg.Migration != nil && s.Msg.Migration.Kind == kind {
			ms = append(ms, s.Msg.Migration)
		}
	}
	return ms
}

func appendsOf(out *Outbox) []LogCall {
	var as []LogCall
	for _, c := range effects[LogCall](out) {
		if c.Req.Kind == LogAppend {
			as = append(as, c)
		}
	}
	return as
}

// The source holds its writes once the image is at T_dest and the append in
// flight is answered; it reports the route revision of its claim, and lets
// the writes go only by rewriting its own route at that revision.
func TestMigrationSourceHoldsWritesUntilItsOwnRouteCAS(t *testing.T) {
	tr, out := bootTerritory(t) // subgraph 0, route revision 5, LSN 1 committed
	out.Reset()
	tr.Step(4, MessageIn{From: 50, Msg: &Message{Request: &Request{ID: EventUUID{9, 1}, Op: OpCreateNeuron, Neuron: 5}}}, out)
	app := appendsOf(out)
	out.Reset()
	tr.Step(5, MessageIn{From: 100, Msg: &Message{Migration: &MigMsg{Kind: MigStart, Subgraph: 0, Epoch: 9, To: 8}}}, out)
	chunks := migSends(out, MigChunk)
	if len(chunks) == 0 || chunks[0].SnapLSN != 1 || chunks[0].Index != 0 {
		t.Fatalf("no image streamed at the applied LSN: %v", out.Effects)
	}
	out.Reset()
	tr.Step(6, MessageIn{From: 8, Msg: &Message{Migration: &MigMsg{Kind: MigChunkAck, Subgraph: 0, Epoch: 9, Next: uint64(chunks[0].Total)}}}, out)
	if len(migSends(out, MigReady)) != 0 {
		t.Fatal("ready with an append in flight")
	}
	out.Reset()
	tr.Step(7, LogResult{ReqID: app[0].ReqID, Resp: LogResponse{LSN: 2, TailLSN: 2}}, out)
	ready := migSends(out, MigReady)
	if len(ready) != 1 || ready[0].Target != 2 || ready[0].RouteRev != 5 || ready[0].RouteEpoch != 1 {
		t.Fatalf("ready must name the held LSN and the claim's revision: %v", out.Effects)
	}
	out.Reset()
	tr.Step(8, MessageIn{From: 50, Msg: &Message{Request: &Request{ID: EventUUID{9, 2}, Op: OpCreateNeuron, Neuron: 6}}}, out)
	if len(appendsOf(out)) != 0 {
		t.Fatalf("an append while held: %v", out.Effects)
	}
	// No flip within the hold: the source rewrites its own route at the held revision.
	var release []CoordCall
	for i := 0; i < migHoldTicks+1 && len(release) == 0; i++ {
		out.Reset()
		tickOnce(t, tr, int64(300+250*i), out)
		for _, c := range effects[CoordCall](out) {
			if c.Req.Kind == CoordTxn && len(c.Req.Compares) == 1 && c.Req.Compares[0].Key == RouteKey(0) {
				release = append(release, c)
			}
		}
	}
	if len(release) != 1 || release[0].Req.Compares[0].ModRevision != 5 || len(appendsOf(out)) != 0 {
		t.Fatalf("release must be a CAS of the route at revision 5, with nothing appended before it: %v", release)
	}
	out.Reset()
	tr.Step(2000, CoordResult{ReqID: release[0].ReqID, Resp: CoordResponse{Succeeded: true, Revision: 12}}, out)
	if a := appendsOf(out); len(a) != 1 || a[0].Req.LSN != 3 {
		t.Fatalf("the held write must be appended once released: %v", out.Effects)
	}
}

// imageChunks is an image of subgraph 0 (one subgraph) at LSN lsn, as MigChunk messages.
func imageChunks(t *testing.T, lsn uint64, epoch uint64) ([]*MigMsg, *SubgraphState) {
	st := NewSubgraphState(0, 1, GenesisPolicy())
	for l := uint64(1); l <= lsn; l++ {
		ev, err := EventFromRequest(&Request{ID: EventUUID{3, l}, Op: OpCreateNeuron, Neuron: NeuronID(l)}, 0, l, 1)
		if err != nil {
			t.Fatal(err)
		}
		st.Apply(&ev)
	}
	data := EncodeSnapshot(st)
	var ms []*MigMsg
	sum := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	for off, i := 0, uint32(0); off < len(data); off, i = off+16, i+1 {
		c := data[off:min(len(data), off+16)]
		ms = append(ms, &MigMsg{Kind: MigChunk, Subgraph: 0, Epoch: epoch, From: 7, To: 8, SnapLSN: lsn, Index: i, Sum: crc32.Checksum(c, crc32.MakeTable(crc32.Castagnoli)), ImageSum: sum, Data: c})
	}
	for _, m := range ms {
		m.Total = uint32(len(ms))
	}
	return ms, st
}

func logEntry(t *testing.T, lsn uint64) LogEntry {
	ev, err := EventFromRequest(&Request{ID: EventUUID{3, lsn}, Op: OpCreateNeuron, Neuron: NeuronID(lsn)}, 0, lsn, 1)
	if err != nil {
		t.Fatal(err)
	}
	return LogEntry{LSN: lsn, Data: ev.Encode()}
}

// The destination installs the checked image in place of a snapshot load,
// applies the catch-up once and in LSN order (a gap waits, a duplicate is
// skipped), and only then opens the log at its epoch.
func TestMigrationDestinationAppliesTheCatchupOnceThenOpens(t *testing.T) {
	cfg := DefaultTerritoryConfig(8, 1)
	cfg.Manager = 100
	tr, err := NewTerritory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := &Outbox{}
	tr.Step(0, Start{}, out)
	boot := effects[CoordCall](out)[0]
	chunks, _ := imageChunks(t, 2, 9)
	// A corrupt chunk is refused; the rest arrive, one of them twice.
	bad := *chunks[0]
	bad.Data = append([]byte{0xff}, bad.Data[1:]...)
	for i, m := range append([]*MigMsg{&bad}, append(chunks, chunks[0])...) {
		out.Reset()
		tr.Step(int64(1+i), MessageIn{From: 7, Msg: &Message{Migration: m}}, out)
	}
	if acks := migSends(out, MigChunkAck); len(acks) != 1 || acks[0].Next != uint64(len(chunks)) {
		t.Fatalf("the whole image must be acknowledged: %v", out.Effects)
	}
	// The flipped route names us: adopt, claim, install.
	out.Reset()
	kv := KV{Key: RouteKey(0), Value: EncodeRoute(8, 2), ModRevision: 20}
	tr.Step(50, CoordResult{ReqID: boot.ReqID, Resp: CoordResponse{KVs: []KV{kv}}}, out)
	claim := effects[CoordCall](out)
	out.Reset()
	tr.Step(51, CoordResult{ReqID: claim[len(claim)-1].ReqID, Resp: CoordResponse{Succeeded: true, Revision: 21}}, out)
	if acks := migSends(out, MigCatchupAck); len(acks) != 1 || acks[0].Next != 3 || len(effects[LogCall](out)) != 0 {
		t.Fatalf("the image is installed at LSN 2 and the catch-up asked from 3, before any log call: %v", out.Effects)
	}
	catchup := func(now int64, target uint64, lsns ...uint64) *Outbox {
		var es []LogEntry
		for _, l := range lsns {
			es = append(es, logEntry(t, l))
		}
		o := &Outbox{}
		tr.Step(now, MessageIn{From: 7, Msg: &Message{Migration: &MigMsg{Kind: MigCatchup, Subgraph: 0, Epoch: 9, From: 7, Target: target, SnapLSN: 2, Entries: es}}}, o)
		return o
	}
	replayed := func(o *Outbox) (n int) {
		for _, f := range effects[Observe](o) {
			if r, ok := f.Fact.(FactReplayed); ok {
				n += int(r.ToLSN - r.FromLSN + 1)
			}
		}
		return n
	}
	if o := catchup(52, 5, 4); replayed(o) != 0 || migSends(o, MigCatchupAck)[0].Next != 3 {
		t.Fatalf("a gap must be asked again from 3: %v", o.Effects)
	}
	if o := catchup(53, 5, 3, 4); replayed(o) != 2 || migSends(o, MigCatchupAck)[0].Next != 5 {
		t.Fatalf("3 and 4 applied once: %v", o.Effects)
	}
	if o := catchup(54, 5, 2, 3, 4); replayed(o) != 0 || len(effects[LogCall](o)) != 0 {
		t.Fatalf("a duplicate batch applied again, or the log opened before the target: %v", o.Effects)
	}
	o := catchup(55, 5, 5)
	open := effects[LogCall](o)
	if replayed(o) != 1 || len(open) != 1 || open[0].Req.Kind != LogOpen || open[0].Req.Epoch != 3 {
		t.Fatalf("caught up at 5: the log opens at the claimed epoch: %v", o.Effects)
	}
	o.Reset()
	tr.Step(56, LogResult{ReqID: open[0].ReqID, Resp: LogResponse{TailLSN: 5}}, o)
	if st, _ := tr.State(0); st == nil || st.AppliedLSN != 5 || len(tr.Operational()) != 1 || len(migSends(o, MigLive)) != 1 {
		t.Fatalf("operational at LSN 5 and MigLive: %v", o.Effects)
	}
}
