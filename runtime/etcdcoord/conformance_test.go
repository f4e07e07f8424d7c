package etcdcoord

import (
	"context"
	"testing"
	"time"

	"territory/conformance"
	"territory/model"
)

// etcdCoord runs the coordination suite on a real etcd server: embedded etcd
// (runtime/etcdembed) is etcd's own server code in this process, so the dev
// store and the production store are the same code; the integration-tagged
// test runs the suite on a 3-member cluster with clients on different members.
type etcdCoord struct {
	t    *testing.T
	eps  []string
	next int
	lose conformance.Alternate
}

func (e *etcdCoord) Client() conformance.CoordClient {
	// One member per client, round robin: in a cluster, clients of one case
	// talk to different members.
	ep := e.eps[e.next%len(e.eps)]
	e.next++
	return &etcdClient{e: e, c: dial(e.t, []string{ep})}
}

func (e *etcdCoord) Sleep(ms int64) { time.Sleep(time.Duration(ms) * time.Millisecond) }

type etcdClient struct {
	e *etcdCoord
	c *Coord
}

func (cl *etcdClient) Do(req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.c.Do(ctx, req)
}

func (cl *etcdClient) DoLost(req model.CoordRequest) {
	if cl.e.lose.AnswerLost() {
		cl.Do(req)
	}
}

func (cl *etcdClient) Watch(prefix string) (conformance.CoordWatch, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cl.e.t.Cleanup(cancel)
	ch := make(chan model.WatchEvent, 1024)
	// Watch returns once etcd has created the watch; events flow until the
	// test ends.
	if err := cl.c.Watch(ctx, prefix, func(ev model.WatchEvent) { ch <- ev }); err != nil {
		return nil, err
	}
	return etcdWatch(ch), nil
}

type etcdWatch chan model.WatchEvent

func (w etcdWatch) Next(waitMs int64) (model.WatchEvent, bool) {
	select {
	case ev := <-w:
		return ev, true
	case <-time.After(time.Duration(waitMs) * time.Millisecond):
		return model.WatchEvent{}, false
	}
}

// TestConformance: the dev store, one embedded member.
func TestConformance(t *testing.T) {
	eps := startSingle(t)
	conformance.Run(t, conformance.CoordCases(), nil, func(t *testing.T) conformance.CoordService {
		return &etcdCoord{t: t, eps: eps}
	})
}
