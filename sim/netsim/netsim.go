// Package netsim is the simulated network between hosts (territories,
// clients, service endpoints): per-link latency, loss, duplication,
// reordering and latency spikes, and partitions, all driven by the kernel's
// event queue and one seeded PRNG stream.
//
// The network only decides whether and when a message arrives. Whether the
// receiving host is up when it arrives is the world's business: deliver
// callbacks run regardless of host state.
package netsim

import (
	"fmt"

	"territory/model"
	"territory/sim/kernel"
)

// LinkConfig describes one direction of a link. PM fields are per million.
type LinkConfig struct {
	LatencyMinUs int64 // one-way latency, uniform in [min, max]
	LatencyMaxUs int64
	DropPM       int64 // message lost
	DuplicatePM  int64 // message delivered twice (each copy with its own latency)
	ReorderPM    int64 // extra delay uniform in [0, 10×LatencyMaxUs]: later messages overtake it
	SpikePM      int64 // extra delay of SpikeUs
	SpikeUs      int64
}

// Validate checks 0 ≤ min ≤ max, odds within [0, 1e6] and a non-negative spike.
func (c LinkConfig) Validate() error {
	if c.LatencyMinUs < 0 || c.LatencyMaxUs < c.LatencyMinUs {
		return fmt.Errorf("netsim: bad latency [%d, %d]", c.LatencyMinUs, c.LatencyMaxUs)
	}
	for _, pm := range [...]int64{c.DropPM, c.DuplicatePM, c.ReorderPM, c.SpikePM} {
		if pm < 0 || pm > 1_000_000 {
			return fmt.Errorf("netsim: odds %d not in [0, 1000000] per million", pm)
		}
	}
	if c.SpikeUs < 0 {
		return fmt.Errorf("netsim: negative spike %d", c.SpikeUs)
	}
	return nil
}

// Stats counts what the network did. Sent = Blocked + Dropped + messages
// scheduled; Delivered counts deliveries that have run (a duplicated
// message counts twice, and once in Duplicated).
type Stats struct {
	Sent, Delivered, Dropped, Duplicated, Blocked int64
}

// delivery is one scheduled arrival; pooled, with its event callback bound
// once so that Send does not allocate.
type delivery struct {
	n       *Network
	deliver func()
	fn      func()
}

func (d *delivery) fire() {
	n, deliver := d.n, d.deliver
	d.deliver = nil
	n.pool = append(n.pool, d)
	n.stats.Delivered++
	deliver()
}

// Network is the simulated network.
type Network struct {
	k       *kernel.Kernel
	rnd     *kernel.Rand
	def     LinkConfig
	links   map[uint64]LinkConfig // directional overrides, key from<<32|to
	blocked map[uint64]struct{}   // directional partitions, key from<<32|to
	stats   Stats
	pool    []*delivery
}

func pair(from, to model.HostID) uint64 { return uint64(from)<<32 | uint64(to) }

// New returns a network on kernel k drawing its randomness from rnd, with
// def as the configuration of every link without an override. An invalid
// config panics.
func New(k *kernel.Kernel, rnd *kernel.Rand, def LinkConfig) *Network {
	mustValid(def)
	return &Network{
		k:       k,
		rnd:     rnd,
		def:     def,
		links:   make(map[uint64]LinkConfig),
		blocked: make(map[uint64]struct{}),
	}
}

func mustValid(c LinkConfig) {
	if err := c.Validate(); err != nil {
		panic(err)
	}
}

// Send schedules deliver zero times (partitioned or dropped), once, or twice
// (duplicated), each after its own latency. Partitions are checked now, at
// send time: a message already in flight when a partition starts is still
// delivered (as a packet already on the wire would be, near enough).
//
// Draw order from the PRNG, fixed for determinism: drop, duplicate, then per
// copy latency, spike, reorder. Odds of 0 draw nothing.
func (n *Network) Send(from, to model.HostID, deliver func()) {
	n.stats.Sent++
	if len(n.blocked) > 0 {
		if _, ok := n.blocked[pair(from, to)]; ok {
			n.stats.Blocked++
			return
		}
	}
	c := &n.def
	if len(n.links) > 0 {
		if lc, ok := n.links[pair(from, to)]; ok {
			c = &lc
		}
	}
	if n.rnd.Chance(c.DropPM) {
		n.stats.Dropped++
		return
	}
	copies := 1
	if n.rnd.Chance(c.DuplicatePM) {
		copies = 2
		n.stats.Duplicated++
	}
	for range copies {
		delay := n.rnd.Between(c.LatencyMinUs, c.LatencyMaxUs)
		if n.rnd.Chance(c.SpikePM) {
			delay += c.SpikeUs
		}
		if n.rnd.Chance(c.ReorderPM) {
			delay += n.rnd.Between(0, 10*c.LatencyMaxUs)
		}
		var d *delivery
		if last := len(n.pool) - 1; last >= 0 {
			d = n.pool[last]
			n.pool = n.pool[:last]
		} else {
			d = &delivery{n: n}
			d.fn = d.fire
		}
		d.deliver = deliver
		n.k.After(delay, d.fn)
	}
}

// SetDefault replaces the configuration of every link without an override.
func (n *Network) SetDefault(c LinkConfig) {
	mustValid(c)
	n.def = c
}

// Default returns the default link configuration.
func (n *Network) Default() LinkConfig { return n.def }

// SetLink overrides the configuration of the direction from → to.
func (n *Network) SetLink(from, to model.HostID, c LinkConfig) {
	mustValid(c)
	n.links[pair(from, to)] = c
}

// ClearLink removes the override of from → to.
func (n *Network) ClearLink(from, to model.HostID) {
	delete(n.links, pair(from, to))
}

// Link returns the configuration in force for from → to.
func (n *Network) Link(from, to model.HostID) LinkConfig {
	if lc, ok := n.links[pair(from, to)]; ok {
		return lc
	}
	return n.def
}

// Partition cuts every member of a from every member of b, both ways.
// Partitions accumulate until Heal.
func (n *Network) Partition(a, b []model.HostID) {
	n.PartitionOneWay(a, b)
	n.PartitionOneWay(b, a)
}

// PartitionOneWay drops every message from a member of from to a member of
// to; the other direction is untouched.
func (n *Network) PartitionOneWay(from, to []model.HostID) {
	for _, f := range from {
		for _, t := range to {
			if f != t {
				n.blocked[pair(f, t)] = struct{}{}
			}
		}
	}
}

// Isolate cuts h from every other host of all, both ways.
func (n *Network) Isolate(h model.HostID, all []model.HostID) {
	n.Partition([]model.HostID{h}, all)
}

// Heal removes every partition and every link override.
func (n *Network) Heal() {
	clear(n.blocked)
	clear(n.links)
}

// Blocked reports whether a message from → to would be cut by a partition.
func (n *Network) Blocked(from, to model.HostID) bool {
	_, ok := n.blocked[pair(from, to)]
	return ok
}

// Stats returns the counters so far.
func (n *Network) Stats() Stats { return n.stats }
