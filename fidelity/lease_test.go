package fidelity

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"territory/model"
	"territory/sim/coordstore"
)

// TestLeaseExpiryTiming: on etcd, a lease's keys go between its TTL, rounded
// up to whole seconds as runtime/etcdcoord asks, and that plus the expiry
// lag the simulator draws from (coordstore.MaxExpiryLagUs, etcd's 500 ms
// lessor loop and the revoke's commit), never before; the simulator keeps
// within the same bounds by construction (sim/coordstore's tests).
func TestLeaseExpiryTiming(t *testing.T) {
	c := startEtcd(t)
	// Polling and scheduling on a shared CI machine: the allowance beyond
	// the modelled lag.
	const slack = 300 * time.Millisecond
	var wg sync.WaitGroup
	for i, ttlMs := range []int64{1000, 1500} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			key := fmt.Sprintf("lease-timing/%d", i)
			g, se, err := c.Do(ctx, model.CoordRequest{Kind: model.CoordLeaseGrant, TTLMs: ttlMs})
			granted := time.Now()
			if err != nil || se != model.ErrNone {
				t.Errorf("grant: %v %v", se, err)
				return
			}
			if _, se, err := c.Do(ctx, model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnPut, Key: key, Value: []byte("v"), Lease: g.Lease}}}); err != nil || se != model.ErrNone {
				t.Errorf("put: %v %v", se, err)
				return
			}
			for {
				r, _, err := c.Do(ctx, model.CoordRequest{Kind: model.CoordGet, Key: key})
				if err != nil {
					t.Errorf("get: %v", err)
					return
				}
				if len(r.KVs) == 0 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			gone := time.Since(granted)
			ttl := time.Duration(coordstore.LeaseTTLUs(ttlMs)) * time.Microsecond
			lag := time.Duration(coordstore.MaxExpiryLagUs) * time.Microsecond
			t.Logf("lease of %d ms (granted %v): its key went after %v, %v past the TTL", ttlMs, ttl, gone.Round(time.Millisecond), (gone - ttl).Round(time.Millisecond))
			if gone < ttl-50*time.Millisecond || gone > ttl+lag+slack {
				t.Errorf("lease of %d ms: its key went after %v, outside [%v, %v + %v + %v]", ttlMs, gone, ttl, ttl, lag, slack)
			}
		}()
	}
	wg.Wait()
}
