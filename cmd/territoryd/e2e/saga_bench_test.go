//go:build integration

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"territory/connectome"
	"territory/model"
)

// BenchmarkSagaLatency: a cross-subgraph connect (the handshake saga:
// reserve in pre's log, accept in post's, commit in pre's, each a quorum
// append to Pulsar, plus two gRPC hops between the territories) against a
// same-subgraph connect (one append), on two territoryd processes, one
// subgraph each, interleaved one for one. Every sample connects fresh
// neurons, so no degree limit is reached. TERRITORY_BENCH_SAGAS (default
// 300) samples of each.
func BenchmarkSagaLatency(b *testing.B) {
	c := newCluster(b, clusterOpts{subgraphs: 2, runs: [][]uint32{{1}, {2}}})
	mgr := c.startManager()
	runs := c.startRuns()
	cl := dial(b, c.runAddrs[0])
	samples := envInt(b, "TERRITORY_BENCH_SAGAS", 300)
	warm := 20
	total := warm + b.N*samples
	pre := neuronsIn(0, 2, 2*total, 1) // pre, and a local post, of each sample
	post := neuronsIn(1, 2, total, 1)
	for _, n := range append(append([]model.NeuronID{}, pre...), post...) {
		mustDo(b, cl, model.Request{Op: model.OpCreateNeuron, Neuron: n})
	}
	ctx := context.Background()
	connect := func(from, to model.NeuronID) time.Duration {
		octx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		t0 := time.Now()
		_, r, err := cl.Do(octx, model.Request{Op: model.OpConnect, Pre: from, Post: to, Value: model.FixedOne})
		d := time.Since(t0)
		if err != nil || r.Status != model.StatusOK {
			b.Fatalf("connect n%d->n%d: %v %v %v", from, to, r.Status, r.Reason, err)
		}
		return d
	}
	i := 0
	sample := func() (local, cross time.Duration) {
		local = connect(pre[2*i], pre[2*i+1])
		cross = connect(pre[2*i], post[i])
		i++
		return local, cross
	}
	for range warm {
		sample()
	}
	var ld, xd []time.Duration
	b.ResetTimer()
	for range b.N {
		for range samples {
			l, x := sample()
			ld, xd = append(ld, l), append(xd, x)
		}
	}
	b.StopTimer()
	l50, l99, x50, x99 := pct(ld, .5), pct(ld, .99), pct(xd, .5), pct(xd, .99)
	b.ReportMetric(ms(x50), "saga-p50-ms")
	b.ReportMetric(ms(x99), "saga-p99-ms")
	b.ReportMetric(ms(l50), "local-p50-ms")
	b.ReportMetric(ms(l99), "local-p99-ms")
	b.ReportMetric(ms(x50)/ms(l50), "p50-ratio")
	b.ReportMetric(ms(x99)/ms(l99), "p99-ratio")
	b.Logf("%d connects of each kind: saga p50 %.2f ms p99 %.2f ms; same-subgraph p50 %.2f ms p99 %.2f ms; ratio p50 x%.2f p99 x%.2f",
		len(xd), ms(x50), ms(x99), ms(l50), ms(l99), ms(x50)/ms(l50), ms(x99)/ms(l99))
	for _, r := range runs {
		r.term()
	}
	mgr.term()
}

// BenchmarkImportConnectome: `territoryd import` of the C. elegans
// connectome (448 neurons, 6,631 synapses, 93% of them across subgraphs:
// sagas) into three territoryd processes on etcd, Pulsar and S3, against
// the import of a file of as many synapses that all stay within their
// subgraph, into a fresh cluster of the same shape in the same run. Reports
// synapses per second of each (the connect phase, from the summary).
func BenchmarkImportConnectome(b *testing.B) {
	cg, err := connectome.LoadDefault()
	if err != nil {
		b.Fatal(err)
	}
	local := filepath.Join(b.TempDir(), "local.csv")
	if err := os.WriteFile(local, []byte(sameSubgraphFile(cg, 6)), 0o644); err != nil {
		b.Fatal(err)
	}
	importInto := func(file string) float64 {
		c := newCluster(b, clusterOpts{subgraphs: 6, runs: [][]uint32{{1}, {2}, {3}},
			policy: "  max_out_degree: 256\n  max_in_degree: 256\n  supernode_degree: 100\n  snapshot_every: 400"})
		mgr := c.startManager()
		runs := c.startRuns()
		sum := filepath.Join(c.dir, "summary.json")
		imp := startProc(b, c.dir, "import", false, "import", "--addr", c.runAddrs[0], "--progress", "none", "--json", sum, file)
		if code := imp.waitExit(5 * time.Minute); code != 0 {
			b.Fatalf("import %s: exit %d", file, code)
		}
		s := readSummary(b, sum)
		if s.Synapses.Unknown > 0 || len(s.Synapses.Failed) > 0 {
			b.Fatalf("import %s: %d unknown, failed %v", file, s.Synapses.Unknown, s.Synapses.Failed)
		}
		for _, r := range runs {
			r.term()
		}
		mgr.term()
		return s.SynapsesPS
	}
	var cps, lps float64
	for range b.N {
		cps += importInto(connectome.DefaultPath())
		lps += importInto(local)
	}
	cps, lps = cps/float64(b.N), lps/float64(b.N)
	b.ReportMetric(cps, "connectome-synapses/s")
	b.ReportMetric(lps, "same-subgraph-synapses/s")
	b.ReportMetric(cps/lps, "ratio")
	b.Logf("connectome %.0f synapses/s, same-subgraph file %.0f synapses/s (x%.2f)", cps, lps, cps/lps)
}

// sameSubgraphFile is an edge list of as many synapses as the connectome,
// each between two of its neurons that share a subgraph (of n; names map to
// ids as the import maps them), each pair once, spread over the subgraphs,
// so none is a saga.
func sameSubgraphFile(cg *connectome.Connectome, n uint32) string {
	by := make([][]string, n)
	for _, nr := range cg.Neurons {
		sg := model.SubgraphOf(nr.ID, n)
		by[sg] = append(by[sg], nr.Name)
	}
	rows := []string{"Source,Target,Weight,Type"}
	for j := 0; len(rows) <= len(cg.Synapses); j++ {
		names := by[j%int(n)]
		k, p := len(names), j/int(n)
		a, z := p/(k-1), p%(k-1)
		if z >= a {
			z++ // every other neuron of the subgraph: no self-loop
		}
		rows = append(rows, names[a]+","+names[z]+",1,chemical")
	}
	return strings.Join(rows, "\n") + "\n"
}
