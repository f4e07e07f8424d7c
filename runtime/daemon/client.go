package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"time"

	"territory/model"
	"territory/runtime/driver"
	"territory/runtime/transport"
)

// Client is a model.Client connected to a daemon: routes are read and
// watched through the daemon's CoordRead and CoordWatch, requests go over
// the transport.
type Client struct {
	ID        model.HostID
	Subgraphs uint32 // the cluster's subgraph count
	remote    *transport.Remote
	tr        *transport.Transport
	cl        *driver.Client
	cancel    context.CancelFunc
	done      chan struct{}
}

// ClientHostID draws a client host id from the upper half of the id space:
// territories use small ids, and two clients connected to one daemon must not
// share an id (replies are routed by it).
func ClientHostID() model.HostID { return model.HostID(1<<31 | mrand.Uint32N(1<<31-1) + 1) }

// DialClient asks the daemon at addr for the cluster's layout and starts a
// client with a fresh random session.
func DialClient(ctx context.Context, addr string, tlsCfg *tls.Config, logger *slog.Logger, metrics *driver.Metrics) (*Client, error) {
	return DialClientSession(ctx, addr, tlsCfg, logger, metrics, driver.NewSession())
}

// DialClientSession is DialClient with a chosen session, the high half of the
// event_uuids of DoID: a caller that must be idempotent across processes
// (territoryd import) derives its ids from the operations under a session of
// its own. A session must never be shared by callers that could give one id
// to two different operations.
func DialClientSession(ctx context.Context, addr string, tlsCfg *tls.Config, logger *slog.Logger, metrics *driver.Metrics, session uint64) (*Client, error) {
	if session == 0 {
		return nil, fmt.Errorf("client session must not be zero")
	}
	remote, err := transport.DialRemote(addr, tlsCfg)
	if err != nil {
		return nil, err
	}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	subgraphs, hosts, err := remote.Info(ictx)
	cancel()
	if err != nil {
		remote.Close()
		return nil, fmt.Errorf("asking %s for the cluster layout: %w", addr, err)
	}
	tr, err := transport.New(transport.Config{Hosts: hosts, ClientTLS: tlsCfg, Logger: logger})
	if err != nil {
		remote.Close()
		return nil, err
	}
	c := &Client{ID: ClientHostID(), remote: remote, tr: tr, done: make(chan struct{})}
	c.Subgraphs = subgraphs
	ccfg := model.DefaultClientConfig(c.ID, session, subgraphs)
	ccfg.Home = homeOf(addr, hosts) // stale reads ask the daemon dialled first
	// The routing cache follows moves from a route watch served by the
	// daemon (CoordWatch), not only from wrong-territory answers and re-reads.
	ccfg.WatchRoutes = true
	c.cl, err = driver.NewClient(ccfg, driver.Config{Transport: tr, Coord: remote, Logger: logger, Metrics: metrics})
	if err != nil {
		tr.Close()
		remote.Close()
		return nil, err
	}
	tr.Register(c.ID, c.cl.Driver().Deliver)
	rctx, rcancel := context.WithCancel(context.Background())
	c.cancel = rcancel
	go func() {
		defer close(c.done)
		_ = c.cl.Driver().Run(rctx)
	}()
	return c, nil
}

// Do runs one operation and waits for its final answer.
func (c *Client) Do(ctx context.Context, req model.Request) (model.Request, model.Result, error) {
	return c.cl.Do(ctx, req)
}

// DoID runs one operation under the caller's event_uuid (driver.Client.DoID).
func (c *Client) DoID(ctx context.Context, req model.Request) (model.Request, model.Result, error) {
	return c.cl.DoID(ctx, req)
}

// Close stops the client.
func (c *Client) Close() {
	c.cancel()
	<-c.done
	c.tr.Close()
	c.remote.Close()
}

// homeOf is the territory the daemon at addr is, by its advertised address
// (0: none matches; stale reads then go to the primaries). The lowest id
// wins if several match, so the choice never depends on map order.
func homeOf(addr string, hosts map[model.HostID]string) model.HostID {
	var home model.HostID
	for id, a := range hosts { // order: the minimum is taken
		if a == addr && (home == 0 || id < home) {
			home = id
		}
	}
	return home
}
