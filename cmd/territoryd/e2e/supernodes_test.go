//go:build integration

package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"territory/model"
)

// startEgress starts `territoryd egress` with egress_id id on the cluster's
// Pulsar log.
func (c *cluster) startEgress(id int) *proc {
	c.t.Helper()
	conf := writeFile(c.t, c.dir, fmt.Sprintf("egress-%d.yaml", id), c.common()+c.pulsarSection(c.svc.PulsarURL, c.svc.AdminURL)+fmt.Sprintf("egress_id: %d\n", id))
	return startProc(c.t, c.dir, fmt.Sprintf("egress-%d", id), false, "egress", "--config", conf)
}

// coordValue is a key's value in etcd ("" if absent or unreadable).
func (c *cluster) coordValue(key string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r, se, err := c.coord().Do(ctx, model.CoordRequest{Kind: model.CoordGet, Key: key})
	if err != nil || se != model.ErrNone || len(r.KVs) == 0 {
		return ""
	}
	return string(r.KVs[0].Value)
}

// staleRead is one recorded stale read.
type staleRead struct {
	at    time.Time
	lsn   uint64
	proxy bool
	value int64
}

// TestEgressKill9UnderLoad: a supernode in a subgraph served by territory 2;
// territory 1 (another process, with proxy: true), adjacent to it through a
// synapse of its own subgraph to the supernode, is the home of a client
// that reads the supernode stale in a loop while writers stimulate it. Two
// `territoryd egress` processes on the Pulsar egress topic; kill -9 of the
// leader under load: the standby takes over at a newer epoch, the proxy
// catches up with the subgraph's log tail (lag back to zero), and no
// recorded stale read ever went backwards.
func TestEgressKill9UnderLoad(t *testing.T) {
	c := newCluster(t, clusterOpts{subgraphs: 4, runs: [][]uint32{{1}, {2}}, proxy: true,
		policy: "  supernode_degree: 3\n  max_out_degree: 64\n  max_in_degree: 64"})
	c.startManager()
	c.startRuns()
	var sg model.SubgraphID
	for sg = 0; sg < model.SubgraphID(c.opts.subgraphs); sg++ {
		if routeOf(t, c, sg).Primary == 2 {
			break
		}
	}
	if sg == model.SubgraphID(c.opts.subgraphs) {
		t.Fatal("territory 2 serves no subgraph")
	}
	ns := neuronsIn(sg, c.opts.subgraphs, 5, 1)
	hub := ns[0]
	cl := dial(t, c.runAddrs[0]) // home: territory 1, not the primary of sg
	for _, n := range ns {
		mustDo(t, cl, model.Request{Op: model.OpCreateNeuron, Neuron: n})
	}
	for _, post := range ns[1:] {
		mustDo(t, cl, model.Request{Op: model.OpConnect, Pre: hub, Post: post, Value: 100})
	}
	// A synapse from a neuron of territory 1's subgraph to the hub (a
	// cross-subgraph saga): territory 1 is adjacent to the hub's subgraph,
	// so its proxy replicates it (model/proxy_adjacency.go).
	var near model.SubgraphID
	for near = 0; near < model.SubgraphID(c.opts.subgraphs); near++ {
		if routeOf(t, c, near).Primary == 1 {
			break
		}
	}
	if near == model.SubgraphID(c.opts.subgraphs) {
		t.Fatal("territory 1 serves no subgraph")
	}
	pre := neuronsIn(near, c.opts.subgraphs, 1, 1)[0]
	mustDo(t, cl, model.Request{Op: model.OpCreateNeuron, Neuron: pre})
	mustDo(t, cl, model.Request{Op: model.OpConnect, Pre: pre, Post: hub, Value: 100})
	e1, e2 := c.startEgress(501), c.startEgress(502)
	procs := map[string]*proc{"501": e1, "502": e2}
	var leader string
	for end := time.Now().Add(60 * time.Second); leader == ""; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("no egress leader after 60s")
		}
		leader = c.coordValue(model.EgressLeaderKey)
	}
	standby := map[string]string{"501": "502", "502": "501"}[leader]

	// Writers on the hub; one reader of stale reads, recording each.
	led := newLedger()
	stim := startStimulators(cl, led, [][]model.NeuronID{{hub}, {hub}}, 6*time.Second)
	var (
		mu    sync.Mutex
		reads []staleRead
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, r, err := cl.Do(ctx, model.Request{Op: model.OpReadNeuron, Neuron: hub, Stale: true})
			cancel()
			if err == nil && r.Status == model.StatusOK {
				mu.Lock()
				reads = append(reads, staleRead{at: time.Now(), lsn: r.LSN, proxy: r.Proxy, value: r.Value})
				mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	proxyReads := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range reads {
			if r.proxy {
				n++
			}
		}
		return n
	}
	for end := time.Now().Add(60 * time.Second); proxyReads() < 20; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("only %d stale reads served by the proxy after 60s", proxyReads())
		}
	}
	waitAcked(t, led, 200, 60*time.Second)
	beforeKill := proxyReads()
	killed := time.Now()
	procs[leader].kill()
	for c.coordValue(model.EgressLeaderKey) != standby {
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("the standby %s did not take over within 30s (leader %q)", standby, c.coordValue(model.EgressLeaderKey))
		}
		time.Sleep(100 * time.Millisecond)
	}
	takeover := time.Since(killed)
	time.Sleep(3 * time.Second) // load goes on under the new leader
	if err := stim.halt(); err != nil {
		t.Fatal(err)
	}
	// The proxy catches up with the log's tail: a stale read at the tail.
	entries, _ := readEvents(t, c.openLog(), sg)
	tail := uint64(len(entries))
	var caughtUp time.Duration
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		last := reads[len(reads)-1]
		mu.Unlock()
		if last.proxy && last.lsn >= tail {
			caughtUp = time.Since(start)
			break
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("the proxy did not catch up with LSN %d within 60s: last stale read %+v", tail, last)
		}
	}
	close(stop)
	wg.Wait() // the reader is gone: reads is ours alone
	for i := 1; i < len(reads); i++ {
		if reads[i].lsn < reads[i-1].lsn {
			t.Fatalf("stale read %d went back: LSN %d after %d", i, reads[i].lsn, reads[i-1].lsn)
		}
	}
	// Each recorded read is what the log's fold returns at its LSN.
	_, evs := readEvents(t, c.openLog(), sg)
	st := model.NewSubgraphState(sg, c.opts.subgraphs, model.GenesisPolicy())
	req := model.Request{Op: model.OpReadNeuron, Neuron: hub}
	for _, r := range reads {
		for st.AppliedLSN < r.lsn {
			st.Apply(&evs[st.AppliedLSN])
		}
		if want := st.Read(&req); want.Value != r.value {
			t.Fatalf("stale read at LSN %d (proxy %v): potential %d, the log's fold there %d", r.lsn, r.proxy, r.value, want.Value)
		}
	}
	acked, _ := led.counts()
	t.Logf("%d acknowledged writes, %d stale reads (%d by the proxy, %d of them after the kill); standby leading %s after kill -9; proxy at the tail (LSN %d) %s after the load stopped",
		acked, len(reads), proxyReads(), proxyReads()-beforeKill, takeover.Round(10*time.Millisecond), tail, caughtUp.Round(10*time.Millisecond))
	if proxyReads() == beforeKill {
		t.Fatal("no stale read was served by the proxy after the egress leader was killed")
	}
}
