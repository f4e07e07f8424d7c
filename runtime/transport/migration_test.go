package transport

import (
	"hash/crc32"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"territory/model"
	pb "territory/proto/territorypb"
)

// wire encodes msg, marshals the envelope to bytes, and decodes it back.
func wire(t *testing.T, msg *model.Message) (*model.Message, error) {
	t.Helper()
	env, ok := toPB(7, 8, msg)
	if !ok {
		t.Fatalf("%+v not encoded", msg)
	}
	b, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	var back pb.Envelope
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return fromPB(&back)
}

func chunk(data []byte, index, total uint32) model.MigMsg {
	return model.MigMsg{Kind: model.MigChunk, Subgraph: 3, Epoch: 40, From: 1, To: 2, SnapLSN: 17, Index: index, Total: total,
		Sum: crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)), ImageSum: 0xdeadbeef, Data: data}
}

func catchup(lsns ...uint64) model.MigMsg {
	g := model.MigMsg{Kind: model.MigCatchup, Subgraph: 3, Epoch: 40, From: 1, To: 2, SnapLSN: 17, Target: 30}
	for _, l := range lsns {
		g.Entries = append(g.Entries, model.LogEntry{LSN: l, Data: []byte{byte(l), 1, 2}})
	}
	return g
}

// Every kind of migration message crosses the wire (proto bytes) unchanged.
func TestMigrationMessagesRoundTrip(t *testing.T) {
	route := model.KV{Key: model.RouteKey(3), Value: model.EncodeRoute(2, 7), ModRevision: 43}
	msgs := map[model.MigMsgKind]model.MigMsg{
		model.MigStart:        {Kind: model.MigStart, Subgraph: 3, Epoch: 40, From: 1, To: 2},
		model.MigChunk:        chunk([]byte("an image's bytes"), 2, 5),
		model.MigChunkAck:     {Kind: model.MigChunkAck, Subgraph: 3, Epoch: 40, Next: 3},
		model.MigReady:        {Kind: model.MigReady, Subgraph: 3, Epoch: 40, From: 1, To: 2, SnapLSN: 17, Target: 19, RouteRev: 30, RouteEpoch: 6},
		model.MigAbort:        {Kind: model.MigAbort, Subgraph: 3, Epoch: 40, From: 1, To: 2},
		model.MigFlipped:      {Kind: model.MigFlipped, Subgraph: 3, Epoch: 40, From: 1, To: 2, Route: route},
		model.MigCatchup:      catchup(18, 19, 20),
		model.MigCatchupAck:   {Kind: model.MigCatchupAck, Subgraph: 3, Epoch: 40, Next: 21},
		model.MigReplay:       {Kind: model.MigReplay, Subgraph: 3, Epoch: 40, From: 1, To: 2, FromLSN: 21},
		model.MigLive:         {Kind: model.MigLive, Subgraph: 3, Epoch: 40, From: 1, To: 2},
		model.MigRequest:      {Kind: model.MigRequest, Subgraph: 3, To: 2},
		model.MigRequestReply: {Kind: model.MigRequestReply, Subgraph: 3, To: 2, Refusal: model.MigRefusedRunning, Detail: "subgraph 3 is migrating already"},
	}
	for k := model.MigMsgKind(1); k <= model.MigKindMax; k++ {
		g, ok := msgs[k]
		if !ok {
			t.Fatalf("no round-trip case for kind %s", k)
		}
		back, err := wire(t, &model.Message{Migration: &g})
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if !reflect.DeepEqual(*back.Migration, g) {
			t.Fatalf("%s: %+v came back as %+v", k, g, *back.Migration)
		}
	}
	// An empty catch-up (T_src telling T_dest the target), an accepted
	// request, and a flip resent by a restarted manager, which has no route.
	for _, g := range []model.MigMsg{catchup(), {Kind: model.MigRequestReply, Subgraph: 3, Epoch: 40, From: 1, To: 2},
		{Kind: model.MigFlipped, Subgraph: 3, Epoch: 40, From: 1, To: 2}} {
		back, err := wire(t, &model.Message{Migration: &g})
		if err != nil || !reflect.DeepEqual(*back.Migration, g) {
			t.Fatalf("%+v came back as %+v (%v)", g, back, err)
		}
	}
}

// What fails a check is refused with an error naming the field, never a panic.
func TestMigrationMessagesValidated(t *testing.T) {
	corrupt := chunk([]byte("an image's bytes"), 0, 2)
	corrupt.Data = []byte("an image's bytez")
	flipOther := model.MigMsg{Kind: model.MigFlipped, Subgraph: 3, Epoch: 40, Route: model.KV{Key: model.RouteKey(4), Value: model.EncodeRoute(2, 7)}}
	flipBad := model.MigMsg{Kind: model.MigFlipped, Subgraph: 3, Epoch: 40, Route: model.KV{Key: model.RouteKey(3), Value: []byte("garbage")}}
	empty := catchup(18)
	empty.Entries[0].Data = nil
	for _, c := range []struct {
		g    model.MigMsg
		want string
	}{
		{model.MigMsg{Kind: model.MigKindMax + 1, Epoch: 1}, "kind 13 unknown"},
		{model.MigMsg{Kind: model.MigStart, Subgraph: 3, To: 2}, "migration epoch 0"},
		{corrupt, "CRC32C"},
		{chunk([]byte("x"), 2, 2), "chunk index 2 of 2"},
		{chunk(nil, 0, 0), "chunk index 0 of 0"},
		{catchup(19, 18), "must ascend"},
		{catchup(17), "not after 17"},
		{catchup(18, 31), "beyond the catch-up target 30"},
		{empty, "entry 0 is empty"},
		{model.MigMsg{Kind: model.MigChunkAck, Subgraph: 3, Epoch: 40, Data: []byte("x")}, "outside a chunk"},
		{model.MigMsg{Kind: model.MigLive, Subgraph: 3, Epoch: 40, Entries: []model.LogEntry{{LSN: 1, Data: []byte("x")}}}, "outside a catch-up"},
		{flipOther, "route key"},
		{flipBad, "route:"},
		{model.MigMsg{Kind: model.MigRequestReply, Subgraph: 3, Refusal: model.MigRefusalMax + 1}, "refusal 8 unknown"},
		{model.MigMsg{Kind: model.MigRequestReply, Subgraph: 3}, "accepted without a migration epoch"},
		{model.MigMsg{Kind: model.MigRequestReply, Subgraph: 3, Refusal: 1, Detail: strings.Repeat("x", 2000)}, "detail of 2000 bytes"},
	} {
		_, err := wire(t, &model.Message{Migration: &c.g})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: want an error with %q, got %v", c.g, c.want, err)
		}
	}
	if _, err := fromPB(&pb.Envelope{Body: &pb.Envelope_Migration{}}); err == nil {
		t.Error("an envelope with an empty migration body was decoded")
	}
}

// FuzzEnvelope: whatever bytes arrive, decoding returns a message or an
// error, never a panic.
func FuzzEnvelope(f *testing.F) {
	for _, g := range []model.MigMsg{chunk([]byte("abc"), 0, 1), catchup(18, 19)} {
		env, _ := toPB(1, 2, &model.Message{Migration: &g})
		b, _ := proto.Marshal(env)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var env pb.Envelope
		if proto.Unmarshal(b, &env) != nil {
			return
		}
		_, _ = fromPB(&env)
	})
}

// Between two processes over loopback gRPC: a chunk and a catch-up arrive
// intact; a chunk whose bytes do not match its checksum is dropped (and
// counted) at the receiver, not handed to the core.
func TestMigrationOverGRPC(t *testing.T) {
	b, err := New(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	in := make(inbox, 8)
	b.Register(2, in.deliver)
	a, err := New(Config{Listen: "127.0.0.1:0", Hosts: map[model.HostID]string{2: b.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	image := []byte(strings.Repeat("image", 20000))
	for _, g := range []model.MigMsg{chunk(image, 0, 1), catchup(18, 19, 20)} {
		a.Send(1, 2, &model.Message{Migration: &g})
		from, msg := in.next(t)
		if from != 1 || msg.Migration == nil || !reflect.DeepEqual(*msg.Migration, g) {
			t.Fatalf("%s arrived as %d %+v", g.Kind, from, msg.Migration)
		}
	}
	// A message the sender's core would never make, built by hand on the wire.
	bad := toPBOrDie(t, chunk(image, 0, 1))
	bad.GetMigration().Sum ^= 1
	before := b.Dropped()
	a.sendEnvelope(t, 2, bad)
	good := catchup(21)
	good.Target = 21
	a.Send(1, 2, &model.Message{Migration: &good})
	if _, msg := in.next(t); msg.Migration.Kind != model.MigCatchup {
		t.Fatalf("the corrupt chunk was delivered: %+v", msg.Migration)
	}
	if b.Dropped() != before+1 {
		t.Fatalf("the corrupt chunk was not counted as dropped: %d -> %d", before, b.Dropped())
	}
}

func toPBOrDie(t *testing.T, g model.MigMsg) *pb.Envelope {
	env, ok := toPB(1, 2, &model.Message{Migration: &g})
	if !ok {
		t.Fatal("not encoded")
	}
	return env
}

// sendEnvelope queues a raw envelope to host to's peer.
func (tr *Transport) sendEnvelope(t *testing.T, to model.HostID, env *pb.Envelope) {
	t.Helper()
	tr.mu.Lock()
	q := tr.peerLocked(tr.cfg.Hosts[to]).q
	tr.mu.Unlock()
	q <- env
}
