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

// Client is a model.Client connected to a daemon: routes are read through
// the daemon's CoordRead, requests go over the transport.
type Client struct {
	ID     model.HostID
	remote *transport.Remote
	tr     *transport.Transport
	cl     *driver.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// ClientHostID draws a client host id from the upper half of the id space:
// territories use small ids, and two clients connected to one daemon must not
// share an id (replies are routed by it).
func ClientHostID() model.HostID { return model.HostID(1<<31 | mrand.Uint32N(1<<31-1) + 1) }

// DialClient asks the daemon at addr for the cluster's layout and starts a client.
func DialClient(ctx context.Context, addr string, tlsCfg *tls.Config, logger *slog.Logger, metrics *driver.Metrics) (*Client, error) {
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
	ccfg := model.DefaultClientConfig(c.ID, driver.NewSession(), subgraphs)
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

// Close stops the client.
func (c *Client) Close() {
	c.cancel()
	<-c.done
	c.tr.Close()
	c.remote.Close()
}
