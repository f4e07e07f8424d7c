//go:build integration

package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"territory/model"
	"territory/runtime/daemon"
)

// The benchmarks measure territoryd against raw pulsar-client-go on the same
// standalone, side by side in one run (interleaved, so both see the same
// broker and bookie conditions). Each benchmark iteration is a whole
// measurement (hundreds of samples), so the default -benchtime runs it once:
//
//	TERRITORY_IT_PACKAGES=./cmd/territoryd/e2e scripts/test-integration.sh -run '^$' -bench . -v
//
// Sizes: TERRITORY_BENCH_COMMITS (default 1000 writes), TERRITORY_BENCH_REPLAY_N
// (default 20000 events), TERRITORY_BENCH_ROUNDS (default 5 recoveries).

func envInt(b *testing.B, k string, def int) int {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", k, v)
	}
	return n
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func rawClient(b *testing.B, url string) pulsar.Client {
	cl, err := pulsar.NewClient(pulsar.ClientOptions{URL: url, Logger: quietPulsarLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return cl
}

// BenchmarkCommitLatency: the latency of one territoryd write (a stimulate
// from a client through the gRPC transport to the territory, appended to the
// subgraph's Pulsar topic with quorum 3/3/2, applied, answered) against a
// raw synchronous pulsar-client-go send of a message of the same size to a
// topic of the same namespace (batching off), interleaved one for one.
func BenchmarkCommitLatency(b *testing.B) {
	c := newCluster(b, clusterOpts{subgraphs: 1, runs: [][]uint32{{1}}})
	mgr := c.startManager()
	run := c.startRun(0, true)
	cl := dial(b, c.runAddrs[0])
	const n = model.NeuronID(7)
	mustDo(b, cl, model.Request{Op: model.OpCreateNeuron, Neuron: n})
	ev := model.Event{LSN: 1 << 20, UUID: model.EventUUID{Hi: 1 << 40, Lo: 1 << 20}, Type: model.EvStimulate, WriterEpoch: 1, Neuron: n, Value: 1000, TimestampMs: time.Now().UnixMilli()}
	payload := ev.Encode()
	raw, err := rawClient(b, c.svc.PulsarURL).CreateProducer(pulsar.ProducerOptions{
		Topic: fmt.Sprintf("persistent://public/%s/%s-raw", e2eNamespace, c.prefix), DisableBatching: true})
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	samples := envInt(b, "TERRITORY_BENCH_COMMITS", 1000)
	ctx := context.Background()
	write := func() time.Duration {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		t0 := time.Now()
		_, r, err := cl.Do(octx, model.Request{Op: model.OpStimulate, Neuron: n, Value: 1})
		d := time.Since(t0)
		if err != nil || r.Status != model.StatusOK {
			b.Fatalf("stimulate: %v %v", r.Status, err)
		}
		return d
	}
	send := func() time.Duration {
		t0 := time.Now()
		if _, err := raw.Send(ctx, &pulsar.ProducerMessage{Payload: payload}); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	for i := 0; i < 50; i++ { // warm both paths up
		write()
		send()
	}
	var td, rd []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < samples; j++ {
			td = append(td, write())
			rd = append(rd, send())
		}
	}
	b.StopTimer()
	t50, t99, r50, r99 := pct(td, .5), pct(td, .99), pct(rd, .5), pct(rd, .99)
	b.ReportMetric(ms(t50), "territoryd-p50-ms")
	b.ReportMetric(ms(t99), "territoryd-p99-ms")
	b.ReportMetric(ms(r50), "raw-p50-ms")
	b.ReportMetric(ms(r99), "raw-p99-ms")
	b.ReportMetric(ms(t50)/ms(r50), "p50-ratio")
	b.ReportMetric(ms(t99)/ms(r99), "p99-ratio")
	b.Logf("%d writes (payload %d bytes): territoryd p50 %.3f ms p99 %.3f ms; raw send p50 %.3f ms p99 %.3f ms; ratio p50 x%.2f p99 x%.2f",
		len(td), len(payload), ms(t50), ms(t99), ms(r50), ms(r99), ms(t50)/ms(r50), ms(t99)/ms(r99))
	run.term()
	mgr.term()
}

// forgetSnapshots deletes a subgraph's snapshot records and head from etcd
// (the blobs stay, unreferenced).
func forgetSnapshots(b *testing.B, co interface {
	Do(context.Context, model.CoordRequest) (model.CoordResponse, model.ServiceErr, error)
}, sg model.SubgraphID) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, se, err := co.Do(ctx, model.CoordRequest{Kind: model.CoordRange, Key: model.SnapshotPrefix(sg)})
	if err != nil || se != model.ErrNone {
		b.Fatalf("snapshot records: %v %v", se, err)
	}
	txn := model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Kind: model.TxnDelete, Key: model.SnapshotHeadKey(sg)}}}
	for _, kv := range r.KVs {
		txn.Then = append(txn.Then, model.TxnOp{Kind: model.TxnDelete, Key: kv.Key})
	}
	if _, se, err := co.Do(ctx, txn); err != nil || se != model.ErrNone {
		b.Fatalf("delete snapshot records: %v %v", se, err)
	}
}

// BenchmarkRecoveryReplay: a subgraph stream of TERRITORY_BENCH_REPLAY_N
// events (creates and stimulations of 100 neurons, written through
// pulsarlog.AppendBatch at epoch 1) is recovered by a fresh `territoryd run`
// (no snapshot: the whole log is replayed through pulsarlog reads of
// ReplayBatch entries). The replay rate is the applied LSN over the time from
// the "adopted" log record to the "operational" one (claim, snapshot lookup,
// open and replay); it is measured TERRITORY_BENCH_ROUNDS times (a kill -9
// between rounds, and the snapshot that follows each recovery is forgotten;
// each round claims a new epoch), each time beside a raw Reader that reads
// the whole topic from the earliest message.
func BenchmarkRecoveryReplay(b *testing.B) {
	c := newCluster(b, clusterOpts{subgraphs: 1, runs: [][]uint32{{1}}})
	n := envInt(b, "TERRITORY_BENCH_REPLAY_N", 20000)
	rounds := envInt(b, "TERRITORY_BENCH_ROUNDS", 5)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	co := c.coord()
	if _, _, err := daemon.Bootstrap(ctx, co, 1, []model.HostID{1}, c.policy); err != nil {
		b.Fatal(err)
	}
	// The filler writes at epoch 1: the route says so, and the territory
	// claims epoch 2 (a recovery).
	route := model.RouteKey(0)
	r, _, err := co.Do(ctx, model.CoordRequest{Kind: model.CoordGet, Key: route})
	if err != nil || len(r.KVs) != 1 {
		b.Fatalf("route: %v", err)
	}
	if res, _, err := co.Do(ctx, model.PutIfVersion(route, model.EncodeRoute(1, 1), r.KVs[0].ModRevision)); err != nil || !res.Succeeded {
		b.Fatalf("route epoch 1: %v", err)
	}
	l := c.newLog() // the filler: closed before the rounds, so no territory has to take its producer over
	if _, se, err := l.Do(ctx, model.LogRequest{Kind: model.LogOpen, Stream: 0, Epoch: 1}); err != nil || se != model.ErrNone {
		b.Fatalf("open: %v %v", se, err)
	}
	now := time.Now().UnixMilli()
	entries := make([]model.LogEntry, n)
	for i := range entries {
		lsn := uint64(i + 1)
		ev := model.Event{LSN: lsn, UUID: model.EventUUID{Hi: 1 << 40, Lo: lsn}, Subgraph: 0, WriterEpoch: 1,
			Neuron: model.NeuronID(1 + i%100), Value: int64(i % 1000), TimestampMs: now}
		ev.Type = model.EvStimulate
		if i < 100 {
			ev.Type = model.EvCreateNeuron
		}
		entries[i] = model.LogEntry{LSN: lsn, Data: ev.Encode()}
	}
	t0 := time.Now()
	for i := 0; i < n; i += 5000 {
		if err := l.AppendBatch(ctx, 0, 1, entries[i:min(n, i+5000)]); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("filled %d events (%d bytes each) in %v", n, len(entries[n-1].Data), time.Since(t0).Round(time.Millisecond))
	topic := l.Topic(0)
	l.Close()
	raw := rawClient(b, c.svc.PulsarURL)
	var terr, rawr []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for round := 0; round < rounds; round++ {
			p := c.startRun(0, false)
			ops := p.waitOperational(2*time.Minute, 0)
			var adopted time.Time
			for _, rec := range p.records() {
				if str(rec, "msg") == "adopted" && num(rec, "subgraph") == 0 {
					adopted, _ = time.Parse(time.RFC3339Nano, str(rec, "time"))
				}
			}
			op, _ := time.Parse(time.RFC3339Nano, str(ops[0], "time"))
			applied := num(ops[0], "applied_lsn")
			if applied < int64(n) || adopted.IsZero() {
				b.Fatalf("round %d: operational at lsn %d (adopted at %v)", round, applied, adopted)
			}
			d := op.Sub(adopted)
			terr = append(terr, float64(applied)/d.Seconds())
			p.kill()
			// A recovery is followed by a snapshot: forget it, so that the
			// next round replays the whole log again.
			forgetSnapshots(b, co, 0)

			t0 := time.Now()
			rd, err := raw.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID(), ReceiverQueueSize: 1000})
			if err != nil {
				b.Fatal(err)
			}
			count := 0
			for rd.HasNext() {
				m, err := rd.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				_ = m.Payload()
				count++
			}
			rd.Close()
			rawr = append(rawr, float64(count)/time.Since(t0).Seconds())
			b.Logf("round %d: territoryd replayed %d events in %v (%.0f events/s); raw reader %d messages at %.0f/s",
				round, applied, d.Round(time.Millisecond), terr[len(terr)-1], count, rawr[len(rawr)-1])
		}
	}
	b.StopTimer()
	slices.Sort(terr)
	slices.Sort(rawr)
	tm, rm := terr[len(terr)/2], rawr[len(rawr)/2]
	b.ReportMetric(tm, "territoryd-events/s")
	b.ReportMetric(rm, "raw-reader-msgs/s")
	b.ReportMetric(tm/rm, "rate-ratio")
	b.Logf("replay of %d events: territoryd %.0f events/s, raw reader %.0f messages/s (x%.2f), medians of %d rounds", n, tm, rm, tm/rm, len(terr))
}
