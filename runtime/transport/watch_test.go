package transport

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"territory/model"
	"territory/runtime/etcdcoord"
	"territory/runtime/etcdembed"
)

// realEtcd starts an embedded etcd server (the real server code, in process)
// and a coordination adapter on it.
func realEtcd(t *testing.T) *etcdcoord.Coord {
	t.Helper()
	m := etcdembed.StartTest(t)
	c, err := etcdcoord.Dial(etcdcoord.Config{Endpoints: []string{m.Client}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func putRoute(t *testing.T, c *etcdcoord.Coord, sg model.SubgraphID, primary model.HostID, epoch uint64) {
	t.Helper()
	if _, se, err := c.Do(context.Background(), model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnPut, Key: model.RouteKey(sg), Value: model.EncodeRoute(primary, epoch)}}}); err != nil || se != model.ErrNone {
		t.Fatalf("put route %d: %v %v", sg, se, err)
	}
}

func delRoute(t *testing.T, c *etcdcoord.Coord, sg model.SubgraphID) {
	t.Helper()
	if _, se, err := c.Do(context.Background(), model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnDelete, Key: model.RouteKey(sg)}}}); err != nil || se != model.ErrNone {
		t.Fatalf("delete route %d: %v %v", sg, se, err)
	}
}

// routeView is what a watcher believes: route key -> primary, from the events.
type routeView struct{ evs chan model.WatchEvent }

func (v routeView) fn(ev model.WatchEvent) { v.evs <- ev }

// until applies events to view until ok holds, or fails after 10 s.
func (v routeView) until(t *testing.T, view map[string]string, what string, ok func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !ok() {
		select {
		case ev := <-v.evs:
			if ev.Deleted {
				delete(view, ev.KV.Key)
			} else {
				r, err := model.ParseRoute(ev.KV)
				if err != nil {
					t.Fatalf("watch delivered a value that is no route: %v", err)
				}
				view[ev.KV.Key] = fmt.Sprintf("%d@%d", r.Primary, r.Epoch)
			}
		case <-deadline:
			t.Fatalf("%s: the watcher's view is %v", what, view)
		}
	}
}

// TestRouteWatchForClients: a client's route watch through a daemon's
// transport, on a real etcd. It starts with the current routes, follows
// every change, and when the daemon goes away and comes back (at the same
// address) it is reopened: a route deleted and one moved while no stream was
// open are both seen. A watch outside the routes is refused.
func TestRouteWatchForClients(t *testing.T) {
	coord := realEtcd(t)
	putRoute(t, coord, 0, 1, 1)
	putRoute(t, coord, 1, 2, 1)
	// Not a route: never reaches a client.
	if _, se, err := coord.Do(context.Background(), model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnPut, Key: model.PolicyKey, Value: []byte("x")}}}); err != nil || se != model.ErrNone {
		t.Fatal(se, err)
	}
	serve := func(addr string) *Transport {
		srv, err := New(Config{Listen: addr, CoordRead: coord.Do, CoordWatch: coord.Watch})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	srv := serve("127.0.0.1:0")
	addr := srv.Addr()
	remote, err := DialRemote(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if err := remote.Watch(ctx, model.PolicyKey, func(model.WatchEvent) {}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a watch outside the routes was not refused: %v", err)
	}

	v := routeView{evs: make(chan model.WatchEvent, 64)}
	view := map[string]string{}
	if err := remote.Watch(ctx, model.RoutesPrefix, v.fn); err != nil {
		t.Fatal(err)
	}
	k0, k1, k2 := model.RouteKey(0), model.RouteKey(1), model.RouteKey(2)
	v.until(t, view, "the current routes", func() bool { return view[k0] == "1@1" && view[k1] == "2@1" })
	putRoute(t, coord, 0, 2, 2)
	putRoute(t, coord, 2, 1, 1)
	v.until(t, view, "the changes", func() bool { return view[k0] == "2@2" && view[k2] == "1@1" })

	// The daemon goes away; the routes change while no stream is open.
	srv.Close()
	delRoute(t, coord, 1)
	putRoute(t, coord, 2, 2, 2)
	time.Sleep(300 * time.Millisecond)
	srv = serve(addr)
	defer srv.Close()
	v.until(t, view, "the changes missed while the daemon was away", func() bool {
		_, present := view[k1]
		return !present && view[k2] == "2@2" && view[k0] == "2@2"
	})
	putRoute(t, coord, 3, 1, 1)
	v.until(t, view, "a change after the reconnect", func() bool { return view[model.RouteKey(3)] == "1@1" })
	if len(view) != 3 {
		t.Fatalf("view %v: only routes 0, 2 and 3 exist", view)
	}
}
