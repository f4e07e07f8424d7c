package transport

import (
	"context"
	"strings"
	"testing"
	"time"

	"territory/model"
	pb "territory/proto/territorypb"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type inbox chan struct {
	from model.HostID
	msg  *model.Message
}

func (in inbox) deliver(from model.HostID, msg *model.Message) bool {
	select {
	case in <- struct {
		from model.HostID
		msg  *model.Message
	}{from, msg}:
		return true
	default:
		return false
	}
}

func (in inbox) next(t *testing.T) (model.HostID, *model.Message) {
	t.Helper()
	select {
	case m := <-in:
		return m.from, m.msg
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
	return 0, nil
}

// TestRequestReplyOverGRPC: a client that does not listen sends a request to
// a served host over loopback gRPC and gets the reply on its own stream.
func TestRequestReplyOverGRPC(t *testing.T) {
	coordCalls := 0
	server, err := New(Config{Listen: "127.0.0.1:0",
		Info: &pb.InfoResponse{Subgraphs: 8, Hosts: map[uint32]string{1: "x:1"}},
		CoordRead: func(ctx context.Context, req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
			coordCalls++
			if req.Kind != model.CoordRange || req.Key != model.RoutesPrefix {
				return model.CoordResponse{}, model.ErrNotFound, nil
			}
			return model.CoordResponse{Revision: 9, KVs: []model.KV{{Key: model.RouteKey(0), Value: model.EncodeRoute(1, 3), ModRevision: 7}}}, model.ErrNone, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	territory := make(inbox, 8)
	server.Register(1, territory.deliver)

	client, err := New(Config{Hosts: map[model.HostID]string{1: server.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	clientIn := make(inbox, 8)
	client.Register(1<<31+5, clientIn.deliver)

	req := &model.Request{ID: model.EventUUID{Hi: 77, Lo: 3}, Op: model.OpConnect, Pre: 10, Post: 11, Value: -5}
	client.Send(1<<31+5, 1, &model.Message{Request: req})
	from, msg := territory.next(t)
	if from != 1<<31+5 || msg.Request == nil || *msg.Request != *req {
		t.Fatalf("request arrived as %d %+v", from, msg.Request)
	}
	rep := &model.Reply{ID: req.ID, Result: model.Result{Status: model.StatusRejected, Reason: model.ReasonMaxOutDegree, Value: -1, Exists: true}}
	server.Send(1, 1<<31+5, &model.Message{Reply: rep})
	from, msg = clientIn.next(t)
	if from != 1 || msg.Reply == nil || *msg.Reply != *rep {
		t.Fatalf("reply arrived as %d %+v", from, msg.Reply)
	}

	// No route: dropped, never blocks.
	before := client.Dropped()
	client.Send(1<<31+5, 999, &model.Message{Request: req})
	if client.Dropped() != before+1 {
		t.Fatal("a message without a route was not counted as dropped")
	}

	// Info and CoordRead for clients.
	remote, err := DialRemote(server.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, hosts, err := remote.Info(ctx)
	if err != nil || n != 8 || hosts[1] != "x:1" {
		t.Fatalf("info: %d %v %v", n, hosts, err)
	}
	resp, se, err := remote.Do(ctx, model.CoordRequest{Kind: model.CoordRange, Key: model.RoutesPrefix})
	if err != nil || se != model.ErrNone || resp.Revision != 9 || len(resp.KVs) != 1 || resp.KVs[0].ModRevision != 7 {
		t.Fatalf("coord read: %+v %v %v", resp, se, err)
	}
	if _, se, _ := remote.Do(ctx, model.CoordRequest{Kind: model.CoordGet, Key: model.RouteKey(5)}); se != model.ErrNotFound {
		t.Fatalf("service error not carried: %v", se)
	}
	// Nothing outside the routes prefix is served, by key or by prefix, and
	// the coordination store is not even asked.
	calls := coordCalls
	for _, req := range []model.CoordRequest{
		{Kind: model.CoordGet, Key: model.PolicyKey},
		{Kind: model.CoordGet, Key: model.SnapshotHeadKey(0)},
		{Kind: model.CoordRange, Key: model.SnapshotsPrefix},
		{Kind: model.CoordRange, Key: ""},
		{Kind: model.CoordRange, Key: "routes/"},
		{Kind: model.CoordGet, Key: strings.TrimSuffix(model.RoutesPrefix, "/")},
		{Kind: model.CoordRange, Key: "migrations"},
		{Kind: model.CoordRange, Key: "alive"},
	} {
		_, _, err := remote.Do(ctx, req)
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `clients may read only keys under ["routes/subgraphs/" "migrations/" "alive/"]`) {
			t.Errorf("read of %q (range %v) not refused clearly: %v", req.Key, req.Kind == model.CoordRange, err)
		}
	}
	if coordCalls != calls {
		t.Fatalf("refused reads reached the coordination store (%d calls)", coordCalls-calls)
	}
	// The migration records and the alive keys are readable (status, migrate).
	for _, req := range []model.CoordRequest{{Kind: model.CoordRange, Key: model.MigrationsPrefix}, {Kind: model.CoordGet, Key: model.AliveKey(1)}} {
		if _, _, err := remote.Do(ctx, req); err != nil {
			t.Errorf("read of %q refused: %v", req.Key, err)
		}
	}
	if _, se, _ := remote.Do(ctx, model.PutIfVersion("k", nil, 0)); se != model.ErrUnavailable {
		t.Fatalf("a client write went through: %v", se)
	}
}

// TestReconnect: a client's messages flow again after the server restarts on
// the same address.
func TestReconnect(t *testing.T) {
	server, err := New(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := server.Addr()
	in := make(inbox, 64)
	server.Register(1, in.deliver)
	client, err := New(Config{Hosts: map[model.HostID]string{1: addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	msg := &model.Message{Request: &model.Request{ID: model.EventUUID{Lo: 1}, Op: model.OpReadNeuron}}
	client.Send(2, 1, msg)
	in.next(t)
	server.Close()
	server, err = New(Config{Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	in2 := make(inbox, 64)
	server.Register(1, in2.deliver)
	deadline := time.Now().Add(10 * time.Second)
	for {
		client.Send(2, 1, msg) // the first few may be lost on the dead stream
		select {
		case <-in2:
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery after the server came back")
		}
	}
}

func TestConversionRoundTrip(t *testing.T) {
	for _, msg := range []*model.Message{
		{Request: &model.Request{ID: model.EventUUID{Hi: 1, Lo: 2}, Op: model.OpStimulate, Neuron: 9, Value: -3}},
		{Reply: &model.Reply{ID: model.EventUUID{Hi: 1, Lo: 2}, Result: model.Result{Status: model.StatusBusy, Value: 4, Exists: true, InDegree: 150, OutDegree: 7}}},
		{Request: &model.Request{ID: model.EventUUID{Hi: 1, Lo: 3}, Op: model.OpReadSynapse, Pre: 4, Post: 5, Stale: true, MinLSN: 77}},
		{Reply: &model.Reply{ID: model.EventUUID{Hi: 1, Lo: 3}, Result: model.Result{Status: model.StatusOK, Value: 8, Exists: true, LSN: 78, Proxy: true}}},
		{Recovered: &model.Recovered{Territory: 3, Subgraph: 7, Epoch: 11}},
		{CommitRecovery: &model.CommitRecovery{Subgraph: 7, Epoch: 11, TimestampMs: 1234567}},
		{Saga: &model.SagaMsg{Kind: model.SagaAcceptReply, ID: model.EventUUID{Hi: 5, Lo: 6}, Pre: 1 << 40, Post: 3, Weight: -7,
			Status: model.StatusRejected, Reason: model.ReasonMaxInDegree, Release: true, Unlink: true, Outcome: model.SagaReleased}},
	} {
		env, ok := toPB(1, 2, msg)
		if !ok {
			t.Fatalf("%+v not encoded", msg)
		}
		back, err := fromPB(env)
		if err != nil {
			t.Fatalf("%+v not decoded: %v", env, err)
		}
		switch {
		case msg.Request != nil && *back.Request != *msg.Request,
			msg.Reply != nil && *back.Reply != *msg.Reply,
			msg.Recovered != nil && *back.Recovered != *msg.Recovered,
			msg.CommitRecovery != nil && *back.CommitRecovery != *msg.CommitRecovery,
			msg.Saga != nil && *back.Saga != *msg.Saga:
			t.Fatalf("%+v came back as %+v", msg, back)
		}
	}
}

func TestConversionRejectsEmpty(t *testing.T) {
	if _, ok := toPB(1, 2, &model.Message{}); ok {
		t.Fatal("an empty message was encoded")
	}
	if _, err := fromPB(&pb.Envelope{From: 1, To: 2}); err == nil {
		t.Fatal("an empty envelope was decoded")
	}
}
