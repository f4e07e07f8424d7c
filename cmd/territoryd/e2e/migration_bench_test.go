//go:build integration

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"territory/model"
	"territory/runtime/daemon"
)

// Migration figures on the real services (benchmarks, not timed tests):
//
//	TERRITORY_IT_PACKAGES=./cmd/territoryd/e2e scripts/test-integration.sh -run '^$' -bench Migration -v
//
// TERRITORY_BENCH_MIGRATIONS (default 10) migrations for the write pause.

// logTimes returns the time of each JSON log record of p that pred picks.
func logTimes(p *proc, pred func(map[string]any) bool) []time.Time {
	var out []time.Time
	for _, r := range p.records() {
		if pred(r) {
			if at, err := time.Parse(time.RFC3339Nano, str(r, "time")); err == nil {
				out = append(out, at)
			}
		}
	}
	return out
}

// BenchmarkMigrationWritePause: subgraph 0 migrates back and forth between
// two `territoryd run` processes under a write load; for each migration the
// write pause is measured twice: by the clients (the longest gap between two
// acknowledged writes of the subgraph around the flip) and by the manager
// (MigReady, T_src holds its writes, to MigLive, T_dest operational, in its
// log). In the same run: one etcd compare-and-swap and one exclusive-producer
// open of a Pulsar stream at a new epoch (the fencing open T_dest makes),
// each measured as many times; the pause is reported as a ratio to their sum.
func BenchmarkMigrationWritePause(b *testing.B) {
	c := newCluster(b, clusterOpts{subgraphs: 2, runs: [][]uint32{{1}, {2}}})
	mgr := c.startManager()
	c.startRun(0, true)
	c.startRun(1, true)
	cl := dial(b, c.runAddrs[0])
	n := envInt(b, "TERRITORY_BENCH_MIGRATIONS", 10)
	s0 := neuronsIn(0, 2, 8, 1)
	groups := make([][]model.NeuronID, 4)
	for g := range groups {
		groups[g] = s0[2*g : 2*g+2]
		for _, nn := range groups[g] {
			mustDo(b, cl, model.Request{Op: model.OpCreateNeuron, Neuron: nn})
		}
	}
	led := newLedger()
	stim := startStimulators(cl, led, groups, 5*time.Second)
	waitAcked(b, led, 100, 60*time.Second)
	co := c.coord()
	l := c.newLog()
	ctx := context.Background()
	var client, manager, cas, open []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for round := 0; round < n; round++ {
			to := model.HostID(2 - round%2)
			flipped := routeWatch(b, c, 0, to)
			m := startMigrate(b, c, 0, to)
			m.wait(b, 90*time.Second)
			if m.code != 0 {
				b.Fatalf("round %d: migrate to %d: exit %d\n%s", round, to, m.code, m.out)
			}
			at := <-flipped
			waitMore(b, led, 50, 30*time.Second)
			client = append(client, writePause(led, 0, 2, at))

			// The reference: one CAS, one fencing open, as T_dest and the flip make them.
			key := "bench/cas"
			r, _, err := co.Do(ctx, model.CoordRequest{Kind: model.CoordGet, Key: key})
			var rev int64
			if err == nil && len(r.KVs) == 1 {
				rev = r.KVs[0].ModRevision
			}
			t0 := time.Now()
			if res, se, err := co.Do(ctx, model.PutIfVersion(key, []byte(fmt.Sprint(round)), rev)); err != nil || se != model.ErrNone || !res.Succeeded {
				b.Fatalf("cas: %v %v %v", res.Succeeded, se, err)
			}
			cas = append(cas, time.Since(t0))
			t0 = time.Now()
			if _, se, err := l.Do(ctx, model.LogRequest{Kind: model.LogOpen, Stream: 7, Epoch: uint64(round + 1)}); err != nil || se != model.ErrNone {
				b.Fatalf("open: %v %v", se, err)
			}
			open = append(open, time.Since(t0))
		}
	}
	b.StopTimer()
	if err := stim.halt(); err != nil {
		b.Fatal(err)
	}
	held := map[string]time.Time{}
	for _, r := range mgr.records() {
		if str(r, "msg") != "migration signal" {
			continue
		}
		at, _ := time.Parse(time.RFC3339Nano, str(r, "time"))
		k := fmt.Sprint(num(r, "migration_epoch"))
		if str(r, "signal") == "held" {
			held[k] = at
		} else if h, ok := held[k]; ok {
			manager = append(manager, at.Sub(h))
		}
	}
	if len(manager) == 0 {
		b.Fatal("no write pause in the manager's log")
	}
	ref50, ref99 := pct(cas, 0.5)+pct(open, 0.5), pct(cas, 0.99)+pct(open, 0.99)
	b.ReportMetric(ms(pct(client, 0.5)), "client-pause-p50-ms")
	b.ReportMetric(ms(pct(client, 0.99)), "client-pause-p99-ms")
	b.ReportMetric(ms(pct(manager, 0.5)), "manager-pause-p50-ms")
	b.ReportMetric(ms(pct(client, 0.5))/ms(ref50), "p50-ratio")
	b.ReportMetric(ms(pct(client, 0.99))/ms(ref99), "p99-ratio")
	b.Logf("%d migrations: write pause seen by clients p50 %.1f ms p99 %.1f ms; by the manager (ready -> live) p50 %.1f ms p99 %.1f ms; "+
		"etcd CAS p50 %.1f p99 %.1f ms, exclusive-producer open p50 %.1f p99 %.1f ms; client pause / (CAS + open): p50 x%.2f, p99 x%.2f; manager pause p50 x%.2f",
		len(client), ms(pct(client, 0.5)), ms(pct(client, 0.99)), ms(pct(manager, 0.5)), ms(pct(manager, 0.99)),
		ms(pct(cas, 0.5)), ms(pct(cas, 0.99)), ms(pct(open, 0.5)), ms(pct(open, 0.99)),
		ms(pct(client, 0.5))/ms(ref50), ms(pct(client, 0.99))/ms(ref99), ms(pct(manager, 0.5))/ms(ref50))
}

// BenchmarkMigrationDuration: subgraph 0 holds 1k, 10k or 100k synapses
// (among 1,000 neurons, written to its Pulsar stream with AppendBatch and
// recovered by territory 1), and migrates to territory 2 with no load: the
// duration from the PENDING record to COMMITTED, on the manager's clock, and
// the image's size.
func BenchmarkMigrationDuration(b *testing.B) {
	for _, synapses := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("synapses=%d", synapses), func(b *testing.B) { migrationDuration(b, synapses) })
	}
}

func migrationDuration(b *testing.B, synapses int) {
	const neurons = 1000
	c := newCluster(b, clusterOpts{subgraphs: 2, runs: [][]uint32{{1}, {2}}, policy: "  max_out_degree: 1000\n  max_in_degree: 1000"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	co := c.coord()
	if _, _, err := daemon.Bootstrap(ctx, co, 2, []model.HostID{1, 2}, c.policy); err != nil {
		b.Fatal(err)
	}
	route := model.RouteKey(0)
	r, _, err := co.Do(ctx, model.CoordRequest{Kind: model.CoordGet, Key: route})
	if err != nil || len(r.KVs) != 1 {
		b.Fatalf("route: %v", err)
	}
	if res, _, err := co.Do(ctx, model.PutIfVersion(route, model.EncodeRoute(1, 1), r.KVs[0].ModRevision)); err != nil || !res.Succeeded {
		b.Fatalf("route epoch 1: %v", err)
	}
	l := c.newLog()
	if _, se, err := l.Do(ctx, model.LogRequest{Kind: model.LogOpen, Stream: 0, Epoch: 1}); err != nil || se != model.ErrNone {
		b.Fatalf("open: %v %v", se, err)
	}
	ns := neuronsIn(0, 2, neurons, 1)
	now := time.Now().UnixMilli()
	var entries []model.LogEntry
	add := func(ev model.Event) {
		ev.LSN = uint64(len(entries) + 1)
		ev.UUID, ev.Subgraph, ev.WriterEpoch, ev.TimestampMs = model.EventUUID{Hi: 1 << 40, Lo: ev.LSN}, 0, 1, now
		entries = append(entries, model.LogEntry{LSN: ev.LSN, Data: ev.Encode()})
	}
	add(model.Event{Type: model.EvAdoptPolicy, Policy: c.policy}) // a fold starts from the genesis policy (no degree at all)
	for _, n := range ns {
		add(model.Event{Type: model.EvCreateNeuron, Neuron: n})
	}
	for i := 0; i < synapses; i++ {
		a := i % neurons
		add(model.Event{Type: model.EvConnect, Pre: ns[a], Post: ns[(a+1+i/neurons)%neurons], Value: model.FixedOne})
	}
	for i := 0; i < len(entries); i += 5000 {
		if err := l.AppendBatch(ctx, 0, 1, entries[i:min(len(entries), i+5000)]); err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	mgr := c.startManager()
	// Both at once: territory 2 must hold its alive key while territory 1
	// replays, or the manager would find it lost and move its subgraph.
	src := c.startRun(0, false)
	dst := c.startRun(1, false)
	src.waitOperational(3*time.Minute, 0)
	dst.waitOperational(time.Minute, 1)
	b.ResetTimer()
	m := startMigrate(b, c, 0, 2)
	m.wait(b, 2*time.Minute)
	b.StopTimer()
	if m.code != 0 {
		b.Fatalf("migrate: exit %d\n%s", m.code, m.out)
	}
	cl := dial(b, c.runAddrs[1])
	rn := readNeuron(b, cl, ns[0])
	if want := uint32(synapses / neurons); rn.OutDegree < want {
		b.Fatalf("neuron %d at T_dest: out-degree %d, want at least %d", ns[0], rn.OutDegree, want)
	}
	rec := func(state string) time.Time {
		ts := logTimes(mgr, func(r map[string]any) bool { return str(r, "msg") == "migration record" && str(r, "state") == state })
		if len(ts) == 0 {
			b.Fatalf("no %s record in the manager's log", state)
		}
		return ts[0]
	}
	d := rec("COMMITTED").Sub(rec("PENDING"))
	var image int64
	for _, r := range src.records() {
		if str(r, "msg") == "migration step" && str(r, "step") == "image" {
			image = num(r, "image_bytes")
		}
	}
	phases := []string{}
	prev := rec("PENDING")
	for _, s := range []string{"SNAPSHOT_STREAMING", "ROUTE_FLIPPED", "CATCHUP_STREAMING", "SYNC_COMPLETE", "COMMITTED"} {
		at := rec(s)
		phases = append(phases, fmt.Sprintf("->%s %.1fms", s, ms(at.Sub(prev))))
		prev = at
	}
	b.ReportMetric(ms(d), "migration-ms")
	b.ReportMetric(float64(image), "image-bytes")
	b.Logf("%d synapses: PENDING -> COMMITTED in %.1f ms (%s), image %d bytes, CLI: %s", synapses, ms(d), strings.Join(phases, " "), image, m.out)
}
