//go:build integration

package e2e

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"territory/model"
)

// BenchmarkSupernodePath: the supernode path of issue 11 on real Pulsar, in
// one run, on one cluster (two territoryd processes, one `territoryd egress`,
// territory 1 with a proxy of the hub's subgraph, which territory 2 serves):
//   - a supernode write (a stimulate of the hub, one synchronous commit)
//     against a raw synchronous pulsar-client-go send to a topic of the same
//     namespace, interleaved one for one (TERRITORY_BENCH_COMMITS, default
//     500, of each);
//   - the commit-to-proxy lag of those writes: from the write's answer to
//     the first stale read at territory 1 that shows it (each write adds 1
//     to the hub's potential and the writes are sequential, so the k-th is
//     visible once the proxy's potential is the base plus k; a write's
//     answer carries no LSN). A reader loops on stale reads meanwhile, so
//     the figure includes its own resolution, about one read;
//   - the proxy's catch-up after an egress outage: the egress is stopped
//     (SIGSTOP) while TERRITORY_BENCH_BACKLOG (default 2000) writes commit,
//     then continued; writes per second until a stale read shows the last
//     one, against a raw pulsar-client-go Reader of the egress topic
//     read from its start (messages per second, and events per second at the
//     topic's events per message).
func BenchmarkSupernodePath(b *testing.B) {
	c := newCluster(b, clusterOpts{subgraphs: 2, runs: [][]uint32{{1}, {2}}, proxy: true,
		policy: "  supernode_degree: 3\n  max_out_degree: 64\n  max_in_degree: 64"})
	mgr := c.startManager()
	runs := c.startRuns()
	sg := model.SubgraphID(1) // territory 2's (InitialRoutes: subgraph i to territory i mod 2 + 1)
	if r := routeOf(b, c, sg); r.Primary != 2 {
		b.Fatalf("subgraph %d is served by territory %d, not 2", sg, r.Primary)
	}
	ns := neuronsIn(sg, c.opts.subgraphs, 5, 1)
	hub := ns[0]
	cl := dial(b, c.runAddrs[0]) // home: territory 1, the proxy
	for _, n := range ns {
		mustDo(b, cl, model.Request{Op: model.OpCreateNeuron, Neuron: n})
	}
	for _, post := range ns[1:] {
		mustDo(b, cl, model.Request{Op: model.OpConnect, Pre: hub, Post: post, Value: 100})
	}
	// A synapse from territory 1's subgraph (0) to the hub (a saga) makes
	// territory 1 adjacent to the hub's subgraph: its proxy replicates it
	// (model/proxy_adjacency.go).
	near := neuronsIn(0, c.opts.subgraphs, 1, 1)[0]
	mustDo(b, cl, model.Request{Op: model.OpCreateNeuron, Neuron: near})
	mustDo(b, cl, model.Request{Op: model.OpConnect, Pre: near, Post: hub, Value: 100})
	egress := c.startEgress(601)
	for end := time.Now().Add(60 * time.Second); c.coordValue(model.EgressLeaderKey) == ""; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(end) {
			b.Fatal("no egress leader after 60s")
		}
	}

	// The stale reader: (time, LSN) of every read the proxy served.
	type seen struct {
		at    time.Time
		value int64 // the hub's potential
	}
	var (
		mu    sync.Mutex
		reads []seen
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
			if err == nil && r.Status == model.StatusOK && r.Proxy {
				mu.Lock()
				reads = append(reads, seen{time.Now(), r.Value})
				mu.Unlock()
			}
		}
	}()
	proxyAt := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		if len(reads) == 0 {
			return -1
		}
		return reads[len(reads)-1].value
	}
	for end := time.Now().Add(60 * time.Second); proxyAt() < 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			b.Fatal("no stale read served by the proxy after 60s")
		}
	}

	ctx := context.Background()
	ev := model.Event{LSN: 1 << 20, UUID: model.EventUUID{Hi: 1 << 40, Lo: 1 << 20}, Type: model.EvStimulate, WriterEpoch: 1, Neuron: hub, Value: 1000, TimestampMs: time.Now().UnixMilli()}
	payload := ev.Encode()
	pc := rawClient(b, c.svc.PulsarURL)
	raw, err := pc.CreateProducer(pulsar.ProducerOptions{Topic: fmt.Sprintf("persistent://public/%s/%s-raw", e2eNamespace, c.prefix), DisableBatching: true})
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	type acked struct {
		at    time.Time
		value int64 // the hub's potential once this write applies
	}
	_, r0, err := cl.Do(ctx, model.Request{Op: model.OpReadNeuron, Neuron: hub})
	if err != nil || r0.Status != model.StatusOK {
		b.Fatalf("read the hub: %v %v", r0.Status, err)
	}
	potential := r0.Value
	write := func() (time.Duration, acked) {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		t0 := time.Now()
		_, r, err := cl.Do(octx, model.Request{Op: model.OpStimulate, Neuron: hub, Value: 1})
		d := time.Since(t0)
		if err != nil || r.Status != model.StatusOK {
			b.Fatalf("stimulate: %v %v", r.Status, err)
		}
		potential++
		return d, acked{time.Now(), potential}
	}
	send := func() time.Duration {
		t0 := time.Now()
		if _, err := raw.Send(ctx, &pulsar.ProducerMessage{Payload: payload}); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	for range 50 {
		write()
		send()
	}
	samples := envInt(b, "TERRITORY_BENCH_COMMITS", 500)
	backlog := envInt(b, "TERRITORY_BENCH_BACKLOG", 2000)
	var wd, rd, lag []time.Duration
	var acks []acked
	var catchUpEPS, rawMPS, eventsPerMsg float64
	b.ResetTimer()
	for range b.N {
		for range samples {
			d, a := write()
			wd, acks = append(wd, d), append(acks, a)
			rd = append(rd, send())
		}
		// Commit-to-proxy lag of each write.
		last := acks[len(acks)-1].value
		for end := time.Now().Add(30 * time.Second); proxyAt() < last; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(end) {
				b.Fatalf("the proxy did not show potential %d within 30s (at %d)", last, proxyAt())
			}
		}
		mu.Lock()
		j := 0
		for _, a := range acks {
			for j < len(reads) && reads[j].value < a.value {
				j++
			}
			lag = append(lag, max(0, reads[j].at.Sub(a.at)))
		}
		mu.Unlock()
		acks = acks[:0]

		// Catch-up after an egress outage.
		if err := egress.Signal(syscall.SIGSTOP); err != nil {
			b.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // the last batch in flight lands
		var werr error
		var tmu sync.Mutex
		var ww sync.WaitGroup
		for w := range 4 {
			ww.Add(1)
			go func() { // writers of their own: b.Fatal only on the benchmark's goroutine
				defer ww.Done()
				for i := w; i < backlog; i += 4 {
					octx, cancel := context.WithTimeout(ctx, 10*time.Second)
					_, r, err := cl.Do(octx, model.Request{Op: model.OpStimulate, Neuron: hub, Value: 1})
					cancel()
					tmu.Lock()
					if err == nil && r.Status != model.StatusOK {
						err = fmt.Errorf("stimulate: %v", r.Status)
					}
					if err != nil && werr == nil {
						werr = err
					}
					tmu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
		ww.Wait()
		if werr != nil {
			b.Fatal(werr)
		}
		potential += int64(backlog)
		t0 := time.Now()
		if err := egress.Signal(syscall.SIGCONT); err != nil {
			b.Fatal(err)
		}
		for end := time.Now().Add(60 * time.Second); proxyAt() < potential; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(end) {
				b.Fatalf("the proxy did not catch up to potential %d within 60s (at %d)", potential, proxyAt())
			}
		}
		catchUpEPS = float64(backlog) / time.Since(t0).Seconds()

		// A raw reader of the egress topic, from its start.
		rdr, err := pc.CreateReader(pulsar.ReaderOptions{Topic: fmt.Sprintf("persistent://public/%s/%s-%d", e2eNamespace, c.prefix, model.EgressStream),
			StartMessageID: pulsar.EarliestMessageID()})
		if err != nil {
			b.Fatal(err)
		}
		msgs, r0 := 0, time.Now()
		for rdr.HasNext() {
			nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := rdr.Next(nctx)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			msgs++
		}
		rawMPS = float64(msgs) / time.Since(r0).Seconds()
		rdr.Close()
		entries, _ := readEvents(b, c.openLog(), sg)
		eventsPerMsg = float64(len(entries)) / float64(msgs) // the egress carries only sg's log: the one supernode's
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	w50, w99, r50, r99, l50, l99 := pct(wd, .5), pct(wd, .99), pct(rd, .5), pct(rd, .99), pct(lag, .5), pct(lag, .99)
	b.ReportMetric(ms(w50), "supernode-write-p50-ms")
	b.ReportMetric(ms(w99), "supernode-write-p99-ms")
	b.ReportMetric(ms(r50), "raw-p50-ms")
	b.ReportMetric(ms(r99), "raw-p99-ms")
	b.ReportMetric(ms(w50)/ms(r50), "write-p50-ratio")
	b.ReportMetric(ms(l50), "proxy-lag-p50-ms")
	b.ReportMetric(ms(l99), "proxy-lag-p99-ms")
	b.ReportMetric(catchUpEPS, "catchup-events/s")
	b.ReportMetric(rawMPS*eventsPerMsg, "raw-reader-events/s")
	b.Logf("%d supernode writes: p50 %.2f ms p99 %.2f ms; raw send p50 %.2f ms p99 %.2f ms (x%.2f, x%.2f); commit-to-proxy lag p50 %.2f ms p99 %.2f ms; "+
		"catch-up after the egress outage %.0f events/s; raw reader of the egress topic %.0f messages/s (%.2f events per message: %.0f events/s; catch-up x%.2f of it)",
		len(wd), ms(w50), ms(w99), ms(r50), ms(r99), ms(w50)/ms(r50), ms(w99)/ms(r99), ms(l50), ms(l99),
		catchUpEPS, rawMPS, eventsPerMsg, rawMPS*eventsPerMsg, catchUpEPS/(rawMPS*eventsPerMsg))
	egress.kill()
	for _, r := range runs {
		r.term()
	}
	mgr.term()
}
