package model

import (
	"fmt"
	"slices"
)

// failureDetector polls the territories' alive keys (each territory keeps
// its own under a lease) once per tick. A territory missing from the listing
// for HostLossMs of ticks in a row is lost; on a loss it hands the live
// territories to the reassigner. No poll starts while the reassigner is
// reading routes or moving subgraphs, so a move is never planned from a
// listing older than the moves in flight.
type failureDetector struct {
	territories []HostID
	tickMs      int64
	hostLossMs  int64
	reassign    *reassigner
	missing     map[HostID]int64 // consecutive polls without the alive key
	live        []HostID         // the territories of the last poll with their key
	polling     bool
}

const callAlive uint8 = 0

func newFailureDetector(cfg ManagerConfig, r *reassigner) *failureDetector {
	return &failureDetector{territories: slices.Clone(cfg.Territories), tickMs: cfg.TickMs, hostLossMs: cfg.HostLossMs,
		reassign: r, missing: map[HostID]int64{}}
}

func (d *failureDetector) tick(m *Manager) {
	if d.polling || d.reassign.busy() {
		return
	}
	d.polling = true
	m.coord(mcall{part: d, tag: callAlive}, CoordRequest{Kind: CoordRange, Key: AlivePrefix})
}

func (d *failureDetector) onMessage(*Manager, MessageIn)      {}
func (d *failureDetector) onBlob(*Manager, mcall, BlobResult) {}

func (d *failureDetector) onCoord(m *Manager, _ mcall, res CoordResult) {
	d.polling = false
	if res.Outcome != OutcomeOK {
		return
	}
	alive := map[HostID]bool{}
	for _, kv := range res.Resp.KVs {
		if id, err := ParseAliveKey(kv.Key); err == nil {
			alive[id] = true
		} else {
			m.badValue(kv.Key, err)
		}
	}
	if d.observe(alive) && len(d.live) > 0 {
		d.reassign.begin(m, d.live, d.lost)
	}
}

// observe counts one poll: the territories with their key are live, the
// others miss one more poll. It reports whether a territory is lost.
func (d *failureDetector) observe(alive map[HostID]bool) (anyLost bool) {
	d.live = d.live[:0]
	for _, id := range d.territories {
		if alive[id] {
			d.missing[id] = 0
			d.live = append(d.live, id)
			continue
		}
		d.missing[id]++
		anyLost = anyLost || d.lost(id)
	}
	return anyLost
}

// lost reports a territory missing for HostLossMs of polls.
func (d *failureDetector) lost(id HostID) bool {
	return d.missing[id]*d.tickMs >= d.hostLossMs
}

// reassigner reads the routes and moves every subgraph of a lost territory
// to a live one, by compare-and-swap on the route's revision, keeping the
// epoch: the new primary bumps it when it claims, and that claim fences the
// lost one should it come back. A route that changed since it was read is
// left alone (the swap fails); the next loss detection reads it again.
type reassigner struct {
	reading bool
	moving  int // route swaps in flight
	live    []HostID
	lost    func(HostID) bool
	holds   func(SubgraphID) bool // a migration in flight: leave the route to the migrator
}

const (
	callRoutes uint8 = iota
	callReassign
)

func (r *reassigner) busy() bool { return r.reading || r.moving > 0 }

// begin reads the routes, to move those of lost territories to live ones.
func (r *reassigner) begin(m *Manager, live []HostID, lost func(HostID) bool) {
	r.reading, r.live, r.lost = true, slices.Clone(live), lost
	m.coord(mcall{part: r, tag: callRoutes}, CoordRequest{Kind: CoordRange, Key: RoutesPrefix})
}

func (r *reassigner) tick(*Manager)                      {}
func (r *reassigner) onMessage(*Manager, MessageIn)      {}
func (r *reassigner) onBlob(*Manager, mcall, BlobResult) {}

func (r *reassigner) onCoord(m *Manager, c mcall, res CoordResult) {
	switch c.tag {
	case callReassign:
		r.moving--
		return
	case callRoutes:
	default:
		panic(fmt.Sprintf("manager %d: reassigner got a result of call tag %d", m.cfg.ID, c.tag))
	}
	r.reading = false
	if res.Outcome != OutcomeOK {
		return
	}
	var routes []Route
	for _, kv := range res.Resp.KVs {
		route, err := ParseRoute(kv)
		if err == nil && uint32(route.Subgraph) >= m.cfg.Subgraphs {
			err = fmt.Errorf("route %s: subgraph %d beyond the %d of the cluster", kv.Key, route.Subgraph, m.cfg.Subgraphs)
		}
		if err != nil {
			m.badValue(kv.Key, err) // and leave that route alone
			continue
		}
		if r.holds != nil && r.holds(route.Subgraph) {
			continue
		}
		routes = append(routes, route)
	}
	for _, to := range planReassignments(routes, r.live, r.lost) {
		r.moving++
		m.coord(mcall{part: r, tag: callReassign}, PutIfVersion(RouteKey(to.Subgraph), EncodeRoute(to.Primary, to.Epoch), to.ModRevision))
	}
}

// planReassignments returns the new route of every subgraph whose primary is
// lost (and not live again), in the order of routes: each goes to the live
// territory serving the fewest subgraphs at that point (the first such in
// live on a tie), with its epoch and the revision it was read at.
func planReassignments(routes []Route, live []HostID, lost func(HostID) bool) []Route {
	if len(live) == 0 {
		return nil
	}
	load := map[HostID]int{}
	for _, r := range routes {
		load[r.Primary]++
	}
	var moves []Route
	for _, r := range routes {
		if !lost(r.Primary) || slices.Contains(live, r.Primary) {
			continue
		}
		target := live[0]
		for _, id := range live[1:] {
			if load[id] < load[target] {
				target = id
			}
		}
		load[target]++
		r.Primary = target
		moves = append(moves, r)
	}
	return moves
}
