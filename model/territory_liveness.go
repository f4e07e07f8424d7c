package model

import (
	"fmt"
	"strconv"
	"strings"
)

// Liveness, the host's part: the territory keeps a lease-backed key
// alive/<id> in the coordination store (the control plane's failure
// detector), re-reads the routes to adopt or drop subgraphs, and runs the
// components' periodic duties on its tick.

// AlivePrefix holds one lease-backed key per live territory.
const AlivePrefix = "alive/"

// AliveKey is a territory's liveness key.
func AliveKey(id HostID) string { return AlivePrefix + strconv.FormatUint(uint64(id), 10) }

// ParseAliveKey returns the territory of a liveness key.
func ParseAliveKey(key string) (HostID, error) {
	rest, ok := strings.CutPrefix(key, AlivePrefix)
	if !ok {
		return 0, fmt.Errorf("alive key %q: missing prefix", key)
	}
	n, err := strconv.ParseUint(rest, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("alive key %q: bad territory id", key)
	}
	return HostID(n), nil
}

func (t *Territory) grantLease() {
	t.leaseBusy = true
	t.coord(t.hostCall(hostLeaseGrant), CoordRequest{Kind: CoordLeaseGrant, TTLMs: t.cfg.LeaseTTLMs})
}

func (t *Territory) onLease(tag uint8, res *result) {
	t.leaseBusy = false
	switch tag {
	case hostLeaseGrant:
		if !res.ok() {
			return // the next tick grants again
		}
		t.lease = res.Coord.Lease
		t.leaseBusy = true
		t.coord(t.hostCall(hostAlivePut), CoordRequest{Kind: CoordTxn,
			Then: []TxnOp{{Kind: TxnPut, Key: AliveKey(t.cfg.ID), Value: []byte("alive"), Lease: t.lease}}})
	case hostAlivePut:
		if !res.ok() {
			// The session expired during the transaction, or the put failed or
			// timed out: grant a new lease and put the key again on the next
			// tick, or the control plane would think us lost for good.
			t.lease = 0
		}
	case hostKeepAlive:
		if res.Outcome == OutcomeFailed && res.Err == ErrLeaseExpired {
			t.lease = 0
		}
	}
}

// tick runs the periodic duties. Periods are counted in ticks of the
// territory's timer, not read from its wall clock: a clock jump must not make
// a duty run early or never.
func (t *Territory) tick() {
	t.ticks++
	t.afterMs(t.hostCall(hostTick), t.cfg.TickMs)
	if !t.leaseBusy {
		switch {
		case t.lease == 0:
			t.grantLease()
		case t.every(t.cfg.KeepAliveMs):
			t.leaseBusy = true
			t.coord(t.hostCall(hostKeepAlive), CoordRequest{Kind: CoordLeaseKeepAlive, Lease: t.lease})
		}
	}
	if !t.watching && !t.watchBusy {
		t.watchRoutes()
	}
	poll := t.cfg.RoutePollMs
	if t.watching {
		poll = t.cfg.RouteResyncMs
	}
	if t.booted && !t.pollBusy && t.every(poll) {
		t.pollRoutes()
	}
	for _, sg := range t.owned {
		p := t.subgraphs[sg]
		if p.phase != phaseOperational {
			continue
		}
		for _, c := range t.comps[1:] {
			c.tick(p)
			if t.subgraphs[sg] != p {
				break // stepped down
			}
		}
	}
}

// every says whether a duty of period ms is due on this tick.
func (t *Territory) every(ms int64) bool { return t.ticks%max(1, ms/t.cfg.TickMs) == 0 }
