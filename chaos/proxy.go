package chaos

import (
	"context"
	"fmt"
	"strings"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Proxy is a toxiproxy TCP proxy run in this process: a process dialled to
// Addr reaches the upstream until the proxy is cut, partitioned or slowed.
type Proxy struct{ p *toxiproxy.Proxy }

var toxiServer = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())

// NewProxy starts a proxy to upstream (host:port) on a free loopback port.
func NewProxy(name, upstream string) (*Proxy, error) {
	return NewProxyAt(name, "127.0.0.1:0", upstream)
}

// NewProxyAt starts a proxy to upstream listening on listen (host:port).
func NewProxyAt(name, listen, upstream string) (*Proxy, error) {
	p := toxiproxy.NewProxy(toxiServer, name, listen, upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("toxiproxy %s: %w", name, err)
	}
	return &Proxy{p: p}, nil
}

// Addr is the proxy's listening address (host:port).
func (x *Proxy) Addr() string { return x.p.Listen }

// Cut makes the upstream unreachable through the proxy: it stops listening
// and closes every connection (connection refused until Heal).
func (x *Proxy) Cut() { x.p.Stop() }

// Heal listens again on the same address.
func (x *Proxy) Heal() error { return x.p.Start() }

// Close stops the proxy for good.
func (x *Proxy) Close() { x.p.Stop() }

// addToxic adds a toxic to both directions.
func (x *Proxy) addToxic(kind, attrs string) error {
	for _, stream := range []string{"upstream", "downstream"} {
		js := fmt.Sprintf(`{"name": %q, "type": %q, "stream": %q, "toxicity": 1.0, "attributes": %s}`, kind+"_"+stream, kind, stream, attrs)
		if _, err := x.p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			return fmt.Errorf("toxic %s on %s: %w", kind, x.p.Name, err)
		}
	}
	return nil
}

func (x *Proxy) removeToxic(kind string) error {
	for _, stream := range []string{"upstream", "downstream"} {
		if err := x.p.Toxics.RemoveToxic(context.Background(), kind+"_"+stream); err != nil {
			return fmt.Errorf("remove toxic %s from %s: %w", kind, x.p.Name, err)
		}
	}
	return nil
}

// Partition black-holes every byte both ways, on open connections and new
// ones (the timeout toxic with no timeout); Unpartition removes it, which
// also closes the connections it held.
func (x *Proxy) Partition() error   { return x.addToxic("timeout", `{"timeout": 0}`) }
func (x *Proxy) Unpartition() error { return x.removeToxic("timeout") }

// Degrade adds ms of latency each way (if ms > 0) and caps each direction
// at kbps KB/s (if kbps > 0; toxiproxy's bandwidth toxic); Undegrade removes them.
func (x *Proxy) Degrade(ms, kbps int64) error {
	if ms > 0 {
		if err := x.Slow(ms); err != nil {
			return err
		}
	}
	if kbps > 0 {
		return x.addToxic("bandwidth", fmt.Sprintf(`{"rate": %d}`, kbps))
	}
	return nil
}

// Undegrade removes what Degrade(ms, kbps) added.
func (x *Proxy) Undegrade(ms, kbps int64) error {
	if ms > 0 {
		if err := x.Unslow(); err != nil {
			return err
		}
	}
	if kbps > 0 {
		return x.removeToxic("bandwidth")
	}
	return nil
}

// Slow adds ms of latency each way; Unslow removes it.
func (x *Proxy) Slow(ms int64) error {
	return x.addToxic("latency", fmt.Sprintf(`{"latency": %d, "jitter": 0}`, ms))
}
func (x *Proxy) Unslow() error { return x.removeToxic("latency") }
