//go:build integration

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"territory/connectome"
	"territory/model"
)

// importOutcomes reads `territoryd import --outcomes` (one line per synapse:
// pre name, post name, pre id, post id, outcome, reason) into outcome by
// synapse.
func importOutcomes(t *testing.T, path string) map[model.SynapseKey]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[model.SynapseKey]string{}
	sc := bufio.NewScanner(f)
	for line := 0; sc.Scan(); line++ {
		if line == 0 {
			continue // the header
		}
		var pre, post, outcome string
		var k model.SynapseKey
		if _, err := fmt.Sscanf(sc.Text(), "%s\t%s\t%d\t%d\t%s", &pre, &post, &k.Pre, &k.Post, &outcome); err != nil {
			t.Fatalf("%s line %d %q: %v", path, line+1, sc.Text(), err)
		}
		out[k] = outcome
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// crossingConnectome writes the synapses of the C. elegans connectome whose
// pre neuron is in subgraph 0 and post neuron in subgraph 1 (of 2) as an edge
// list (the ids are a function of the names alone, so they stay the same), and
// parses it back.
func crossingConnectome(t *testing.T, dir string) (string, *connectome.Connectome) {
	t.Helper()
	full, err := connectome.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	rows := []string{"Source,Target,Weight,Type"}
	for _, s := range full.Synapses {
		if model.SubgraphOf(s.Pre, 2) != 0 || model.SubgraphOf(s.Post, 2) != 1 {
			continue
		}
		pre, _ := full.Name(s.Pre)
		post, _ := full.Name(s.Post)
		if s.Weight%model.FixedOne != 0 {
			t.Fatalf("%s -> %s: weight %d is not a whole count", pre, post, s.Weight)
		}
		rows = append(rows, fmt.Sprintf("%s,%s,%d,chemical", pre, post, s.Weight/model.FixedOne))
	}
	file := writeFile(t, dir, "crossing.csv", strings.Join(rows, "\n")+"\n")
	cg, err := connectome.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(cg.Synapses) != len(rows)-1 || len(cg.Synapses) < 1000 {
		t.Fatalf("%d rows gave %d synapses", len(rows)-1, len(cg.Synapses))
	}
	return file, cg
}

// TestImportPreSideKilled: the synapses of the real connectome that cross
// from subgraph 0 to subgraph 1 (about 1,600, every one a saga coordinated by
// subgraph 0), imported with `territoryd import` into two `territoryd run`
// processes on etcd, Pulsar and S3: pre's subgraph on one, post's on the
// other, under an in-degree limit the hubs exceed (so some sagas are refused
// by post and compensate). While sagas are in flight the process holding the
// PRE side is killed with SIGKILL and not restarted: the manager finds its
// territory lost and moves subgraph 0 to the other territory, whose claim
// rebuilds the open sagas from the log (snapshot, then replay). The import
// then ends, and is run again with --verify. Afterwards:
//   - no saga is open in either log, and the logs agree: pre holds a synapse
//     exactly when post holds its in-slot, committed;
//   - every synapse reads back as pre's log says, and every one the first run
//     was told ok (or already-exists) is there;
//   - every neuron, read back, has the degree its synapses give it, and the
//     folds agree, on both sides; no in-degree exceeds the limit.
//
// It found a bug (5 runs of 7 failed): the re-run sends every connect under
// its first run's event_uuid, after the dedup window, and that second saga
// was confused with the first one's late messages (a settle(release) of the
// first gave back the in-slot the second committed). Sagas are now named by
// their Reserve's LSN (model.SagaInstanceID); model/saga_reuse_test.go holds
// the fold-level reproduction.
func TestImportPreSideKilled(t *testing.T) {
	const maxIn = 16
	c := newCluster(t, clusterOpts{subgraphs: 2, runs: [][]uint32{{1}, {2}},
		policy: fmt.Sprintf("  max_out_degree: 256\n  max_in_degree: %d\n  supernode_degree: 100\n  snapshot_every: 300", maxIn)})
	file, cg := crossingConnectome(t, c.dir)
	c.startManager()
	runs := c.startRuns()
	preRun, postRun := runs[0], runs[1] // territory 1: subgraph 0 (every synapse's pre); territory 2: subgraph 1

	first := filepath.Join(c.dir, "first.tsv")
	// Four at a time, so that the synapse phase outlasts the first progress
	// line (2 s) even on an idle machine: 1,631 sagas of three appends each.
	imp := startProc(t, c.dir, "import", false, "import", "--addr", c.runAddrs[1], "--progress", "lines",
		"--concurrency", "4", "--outcomes", first, file)
	deadline := time.Now().Add(2 * time.Minute)
	var at string
	for at == "" {
		for _, l := range strings.Split(imp.tail(5), "\n") {
			var done, total int
			if _, err := fmt.Sscanf(l, "synapses %d/%d", &done, &total); err == nil {
				if done >= total {
					t.Fatalf("the synapses were all answered before the kill (%q): slow the import down", l)
				}
				at = l
			}
		}
		if at == "" && (!imp.running() || time.Now().After(deadline)) {
			t.Fatalf("the import ended or stalled before the synapses:\n%s", imp.tail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := routeOf(t, c, 0)
	preRun.kill()
	killedAt := time.Now()
	t.Logf("kill -9 of pre's process (territory %d, subgraph 0 at epoch %d) at %q", before.Primary, before.Epoch, at)
	for routeOf(t, c, 0).Primary != 2 {
		if time.Since(killedAt) > 40*time.Second {
			t.Fatalf("subgraph 0 still routed to territory %d 40s after its host died", routeOf(t, c, 0).Primary)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ops := postRun.waitOperational(40*time.Second, 0)
	t.Logf("subgraph 0 re-claimed by territory 2 at epoch %d, %v after the kill", num(ops[0], "epoch"), time.Since(killedAt).Round(time.Millisecond))
	code := imp.waitExit(3 * time.Minute)
	if code != 0 && code != 3 {
		t.Fatalf("first import: exit %d\n%s", code, imp.tail(20))
	}
	t.Logf("first import: exit %d\n%s", code, imp.tail(6))

	again := filepath.Join(c.dir, "again.json")
	againTSV := filepath.Join(c.dir, "again.tsv")
	re := startProc(t, c.dir, "import-again", false, "import", "--addr", c.runAddrs[1], "--progress", "none", "--verify",
		"--json", again, "--outcomes", againTSV, file)
	code = re.waitExit(3 * time.Minute)
	s := readSummary(t, again)
	if code != 0 {
		b, _ := json.Marshal(s)
		m := []string{}
		if s.Verify != nil {
			m = s.Verify.Mismatches[:min(10, len(s.Verify.Mismatches))]
		}
		time.Sleep(5 * time.Second)
		pre, post := sagaFolds(t, c)
		open, broken := sagaOpen(pre, post)
		t.Fatalf("import after the kill: exit %d\n%s\nsummary %s\nmismatches %v\nlogs: %d saga records open, atomicity broken: %v", code, re.tail(20), b, m, open, broken)
	}
	if v := s.Verify; v == nil || len(v.Mismatches) != 0 || v.ReadErrors != 0 || v.NeuronsPresent != len(cg.Neurons) {
		t.Fatalf("verify: %+v", s.Verify)
	}

	// The logs: nothing open, and pre and post agree.
	pre, post := waitSettled(t, c, 60*time.Second)
	committedAtPost := map[model.SynapseKey]bool{}
	for _, id := range post.InSlots() {
		if x, _ := post.InSlot(id); x.Committed {
			committedAtPost[model.SynapseKey{Pre: x.Pre, Post: x.Post}] = true
		}
	}

	// Read everything back through a client.
	cl := dial(t, c.runAddrs[1])
	read := func(req model.Request) model.Result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, r, err := cl.Do(ctx, req)
		if err != nil || r.Status != model.StatusOK {
			t.Fatalf("%v: %+v %v", req.String(), r, err)
		}
		return r
	}
	firstOut, againOut := importOutcomes(t, first), importOutcomes(t, againTSV)
	outDeg, inDeg := map[model.NeuronID]uint32{}, map[model.NeuronID]uint32{}
	present, refusedFirst := 0, 0
	for _, syn := range cg.Synapses {
		k := model.SynapseKey{Pre: syn.Pre, Post: syn.Post}
		r := read(model.Request{Op: model.OpReadSynapse, Pre: k.Pre, Post: k.Post})
		_, atPre := pre.CrossSaga(k)
		w, _ := pre.Synapse(k)
		switch {
		case r.Exists != atPre || r.Exists != committedAtPost[k]:
			t.Errorf("synapse %v: read exists=%v, pre's log %v, post's committed in-slot %v", k, r.Exists, atPre, committedAtPost[k])
		case r.Exists && (r.Value != syn.Weight || w != syn.Weight):
			t.Errorf("synapse %v: weight %d read, %d in pre's log, %d in the file", k, r.Value, w, syn.Weight)
		}
		if o := firstOut[k]; (o == "ok" || o == "already-exists") && !r.Exists {
			t.Errorf("synapse %v: the first import was told %s, and it is gone", k, o)
		}
		if o := againOut[k]; r.Exists != (o == "ok" || o == "already-exists") {
			t.Errorf("synapse %v: exists=%v, the re-run was told %s", k, r.Exists, o)
		}
		if strings.HasPrefix(firstOut[k], "rejected") {
			refusedFirst++
		}
		if r.Exists {
			present++
			outDeg[k.Pre]++
			inDeg[k.Post]++
		}
	}
	for _, n := range cg.Neurons {
		r := read(model.Request{Op: model.OpReadNeuron, Neuron: n.ID})
		fold := pre
		if model.SubgraphOf(n.ID, 2) == 1 {
			fold = post
		}
		x, ok := fold.Neuron(n.ID)
		switch {
		case !r.Exists || !ok:
			t.Errorf("neuron %s: read exists=%v, in its log %v", n.Name, r.Exists, ok)
		case r.OutDegree != outDeg[n.ID] || r.InDegree != inDeg[n.ID]:
			t.Errorf("neuron %s: read in/out degree %d/%d, its synapses say %d/%d", n.Name, r.InDegree, r.OutDegree, inDeg[n.ID], outDeg[n.ID])
		case x.OutDegree != r.OutDegree || x.InDegree != r.InDegree:
			t.Errorf("neuron %s: read in/out degree %d/%d, its log's fold %d/%d", n.Name, r.InDegree, r.OutDegree, x.InDegree, x.OutDegree)
		case r.InDegree > maxIn:
			t.Errorf("neuron %s: in-degree %d over the limit %d", n.Name, r.InDegree, maxIn)
		}
	}
	if present == len(cg.Synapses) || present == 0 {
		t.Errorf("%d of %d synapses present: the in-degree limit %d should refuse some and not all", present, len(cg.Synapses), maxIn)
	}
	t.Logf("%d synapses, %d present, %d refused by the first run, %d by the re-run; %d in-slots at post; re-run %.0f synapses/s",
		len(cg.Synapses), present, refusedFirst, len(cg.Synapses)-present, len(post.InSlots()), s.SynapsesPS)
}
