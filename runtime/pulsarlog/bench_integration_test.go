//go:build integration

package pulsarlog

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"territory/model"
)

// rawClient is a plain pulsar-client-go client on the same standalone.
func rawClient(b *testing.B) pulsar.Client {
	url, _ := pulsarEnv(b)
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: url, Logger: defaultLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// BenchmarkAppendLatency compares synchronous appends through the adapter
// with raw synchronous sends (same payload size, batching off, same
// standalone, a topic of the same namespace), interleaved one for one so both
// see the same broker and bookie conditions.
func BenchmarkAppendLatency(b *testing.B) {
	prefix := testPrefix(b)
	l := newTestLog(b, prefix)
	c := rawClient(b)
	const st = 1
	ctx := context.Background()
	if _, serr := open(b, l, st, 1); serr != model.ErrNone {
		b.Fatal(serr)
	}
	raw, err := c.CreateProducer(pulsar.ProducerOptions{Topic: l.Topic(st) + "-raw", DisableBatching: true})
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	data := make([]byte, 128)
	// Warm both paths up.
	for i := 0; i < 20; i++ {
		mustAppend(b, l, st, 1, uint64(i+1), data)
		if _, err := raw.Send(ctx, &pulsar.ProducerMessage{Payload: data}); err != nil {
			b.Fatal(err)
		}
	}
	next := uint64(21)
	ad := make([]time.Duration, 0, b.N)
	rw := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		resp, serr, err := l.Do(ctx, model.LogRequest{Kind: model.LogAppend, Stream: st, Epoch: 1, LSN: next, Data: data})
		ad = append(ad, time.Since(t0))
		if err != nil || serr != model.ErrNone || resp.LSN != next {
			b.Fatalf("append %d: %+v %v %v", next, resp, serr, err)
		}
		next++
		t0 = time.Now()
		if _, err := raw.Send(ctx, &pulsar.ProducerMessage{Payload: data}); err != nil {
			b.Fatal(err)
		}
		rw = append(rw, time.Since(t0))
	}
	b.StopTimer()
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	a50, a99 := percentile(ad, 0.50), percentile(ad, 0.99)
	r50, r99 := percentile(rw, 0.50), percentile(rw, 0.99)
	b.ReportMetric(us(a50), "adapter-p50-µs")
	b.ReportMetric(us(a99), "adapter-p99-µs")
	b.ReportMetric(us(r50), "raw-p50-µs")
	b.ReportMetric(us(r99), "raw-p99-µs")
	b.ReportMetric(us(a50)/us(r50), "p50-ratio")
	b.ReportMetric(us(a99)/us(r99), "p99-ratio")
	b.Logf("n=%d append p50 %v / raw %v (x%.2f), p99 %v / raw %v (x%.2f)",
		b.N, a50, r50, us(a50)/us(r50), a99, r99, us(a99)/us(r99))
}

// BenchmarkReplay compares reading a stream back through the adapter (a
// fresh process: LogRead in batches of DefaultMaxEntries from LSN 1) with a
// raw Reader from the earliest message of the same topic. The stream holds
// TERRITORY_BENCH_REPLAY_N entries (default 20000) of 128 bytes, written once
// with pipelined appends.
func BenchmarkReplay(b *testing.B) {
	n := 20000
	if v := os.Getenv("TERRITORY_BENCH_REPLAY_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("TERRITORY_BENCH_REPLAY_N=%q", v)
		}
	}
	prefix := testPrefix(b)
	w := newTestLog(b, prefix)
	c := rawClient(b)
	const st = 2
	if _, serr := open(b, w, st, 1); serr != model.ErrNone {
		b.Fatal(serr)
	}
	fill(b, w, st, n)
	ctx := context.Background()
	var adRate, rawRate []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Each iteration replays three times each way, interleaved (the
		// standalone shares two cores with this process; medians are
		// reported). Both sides are timed from a fresh start, reader creation
		// included.
		for round := 0; round < 3; round++ {
			// Adapter, fresh process (no in-process index; the topic-property
			// checkpoint is beyond LSN 1, so the scan starts at the beginning
			// as a replay does).
			r := newTestLog(b, prefix)
			t0 := time.Now()
			got, tail := readAll(b, r, st, 1, DefaultMaxEntries)
			d := time.Since(t0)
			if len(got) != n || tail != uint64(n) {
				b.Fatalf("adapter replay: %d entries, tail %d", len(got), tail)
			}
			adRate = append(adRate, float64(n)/d.Seconds())
			r.Close()

			// Raw reader over every message of the topic (n entries + 1 marker).
			t0 = time.Now()
			rd, err := c.CreateReader(pulsar.ReaderOptions{Topic: w.Topic(st), StartMessageID: pulsar.EarliestMessageID(), ReceiverQueueSize: 1000})
			if err != nil {
				b.Fatal(err)
			}
			for count := 0; count < n+1; count++ {
				m, err := rd.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				_ = m.Payload()
			}
			d = time.Since(t0)
			rd.Close()
			rawRate = append(rawRate, float64(n)/d.Seconds())
		}
	}
	b.StopTimer()
	slices.Sort(adRate)
	slices.Sort(rawRate)
	a, r := adRate[len(adRate)/2], rawRate[len(rawRate)/2]
	b.ReportMetric(a, "adapter-events/s")
	b.ReportMetric(r, "raw-events/s")
	b.ReportMetric(a/r, "rate-ratio")
	b.Logf("replay of %d entries: adapter %.0f events/s, raw reader %.0f events/s (x%.2f)", n, a, r, a/r)
}

// fill appends 1..n pipelined (AppendBatch): each append is handed to the
// producer in LSN order and the acknowledgements are awaited afterwards.
func fill(b *testing.B, l *Log, st uint32, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	data := make([]byte, 128)
	entries := make([]model.LogEntry, n)
	for i := range entries {
		entries[i] = model.LogEntry{LSN: uint64(i + 1), Data: data}
	}
	t0 := time.Now()
	if err := l.AppendBatch(ctx, st, 1, entries); err != nil {
		b.Fatalf("pipelined fill: %v", err)
	}
	b.Logf("filled %d entries (pipelined) in %v", n, time.Since(t0))
}
