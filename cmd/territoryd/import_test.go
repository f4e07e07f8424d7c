package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"territory/connectome"
	"territory/model"
	"territory/runtime/driver"
)

// fakeStore is a store with the domain's connect rules (cross-subgraph, no
// such neuron, degree limits), a dedup table by event_uuid, and faults: an
// operation may take effect and still answer unknown, and a context may be
// cancelled after some operations.
type fakeStore struct {
	mu        sync.Mutex
	subgraphs uint32
	maxOut    uint32
	maxIn     uint32
	neurons   map[model.NeuronID]bool
	out, in   map[model.NeuronID]uint32
	synapses  map[[2]model.NeuronID]int64
	dedup     map[model.EventUUID]model.Result
	applied   int
	unknown   func(req model.Request) bool // answer unknown (after applying) the first time
	told      map[model.EventUUID]bool
	cancelAt  int // cancel after this many applied (0: never)
	// timeouts: connects answered SAGA_TIMEOUT (without effect) this many
	// times each before they are applied.
	timeouts map[[2]model.NeuronID]int
	cancel   context.CancelFunc
	// leak: in-degree a neuron reports beyond its synapses (a slot never
	// given back); settling: reads of a neuron that still report one more
	// in-degree (a compensated saga's slot on its way back).
	leak     map[model.NeuronID]uint32
	settling map[model.NeuronID]int
}

func newFake(subgraphs, maxDeg uint32) *fakeStore {
	return &fakeStore{subgraphs: subgraphs, maxOut: maxDeg, maxIn: maxDeg, neurons: map[model.NeuronID]bool{},
		out: map[model.NeuronID]uint32{}, in: map[model.NeuronID]uint32{}, synapses: map[[2]model.NeuronID]int64{},
		dedup: map[model.EventUUID]model.Result{}, told: map[model.EventUUID]bool{}, leak: map[model.NeuronID]uint32{}, settling: map[model.NeuronID]int{}}
}

func (f *fakeStore) apply(req model.Request) model.Result {
	switch req.Op {
	case model.OpCreateNeuron:
		if f.neurons[req.Neuron] {
			return model.Result{Status: model.StatusAlreadyExists}
		}
		f.neurons[req.Neuron] = true
		return model.Result{Status: model.StatusOK}
	case model.OpConnect:
		k := [2]model.NeuronID{req.Pre, req.Post}
		switch {
		case model.SubgraphOf(req.Pre, f.subgraphs) != model.SubgraphOf(req.Post, f.subgraphs):
			return model.Result{Status: model.StatusRejected, Reason: model.ReasonCrossSubgraph}
		case f.synapses[k] != 0:
			return model.Result{Status: model.StatusAlreadyExists}
		case !f.neurons[req.Pre] || !f.neurons[req.Post]:
			return model.Result{Status: model.StatusRejected, Reason: model.ReasonNoSuchNeuron}
		case f.out[req.Pre] >= f.maxOut:
			return model.Result{Status: model.StatusRejected, Reason: model.ReasonMaxOutDegree}
		case f.in[req.Post] >= f.maxIn:
			return model.Result{Status: model.StatusRejected, Reason: model.ReasonMaxInDegree}
		}
		f.synapses[k] = req.Value
		f.out[req.Pre]++
		f.in[req.Post]++
		return model.Result{Status: model.StatusOK, Value: req.Value, Exists: true}
	}
	panic("fake: write " + req.Op.String())
}

func (f *fakeStore) DoID(ctx context.Context, req model.Request) (model.Request, model.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.ID.Hi != importSession || req.ID.Lo>>63 != 1 {
		panic("fake: not an import id")
	}
	if ctx.Err() != nil {
		return req, model.Result{}, ctx.Err()
	}
	r, ok := f.dedup[req.ID]
	k := [2]model.NeuronID{req.Pre, req.Post}
	if !ok && req.Op == model.OpConnect && f.timeouts[k] > 0 {
		f.timeouts[k]--
		r, ok = model.Result{Status: model.StatusRejected, Reason: model.ReasonSagaTimeout}, true
		f.dedup[req.ID] = r
	}
	if !ok {
		r = f.apply(req)
		f.dedup[req.ID] = r
		f.applied++
		if f.cancelAt > 0 && f.applied == f.cancelAt {
			f.cancel()
		}
	}
	if f.unknown != nil && f.unknown(req) && !f.told[req.ID] {
		f.told[req.ID] = true
		return req, model.Result{}, driver.ErrUnknownOutcome
	}
	return req, r, nil
}

func (f *fakeStore) Do(_ context.Context, req model.Request) (model.Request, model.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch req.Op {
	case model.OpReadNeuron:
		n := req.Neuron
		extra := f.leak[n]
		if f.settling[n] > 0 {
			f.settling[n]--
			extra++
		}
		return req, model.Result{Status: model.StatusOK, Exists: f.neurons[n], InDegree: f.in[n] + extra, OutDegree: f.out[n]}, nil
	case model.OpReadSynapse:
		w, ok := f.synapses[[2]model.NeuronID{req.Pre, req.Post}]
		return req, model.Result{Status: model.StatusOK, Exists: ok, Value: w}, nil
	}
	panic("fake: Do " + req.Op.String())
}

func (f *fakeStore) snapshot() (map[model.NeuronID]bool, map[[2]model.NeuronID]int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.neurons), maps.Clone(f.synapses)
}

// testGraph is a small connectome with a hub (H) whose degree exceeds 3.
func testGraph(t *testing.T) *connectome.Connectome {
	t.Helper()
	rows := []string{"Source,Target,Weight,Type"}
	for i := range 6 {
		rows = append(rows, fmt.Sprintf("H,N%d,%d,chemical", i, i+1), fmt.Sprintf("N%d,H,2,electrical", i))
	}
	rows = append(rows, "N1,N2,1,chemical", " N2 , N3 ,4,chemical", "N3,N3,1,chemical")
	c, err := connectome.Parse(strings.NewReader(strings.Join(rows, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestImportCountsOutcomesAndIsIdempotent(t *testing.T) {
	c := testGraph(t)
	f := newFake(1, 3)
	sum := importRun(context.Background(), f, 1, c, "g.csv", 4, true, nil)
	// H has 6 out (chemical) and 6 in (the gap junctions' mirrored
	// directions), plus 6 more out-synapses N_i -> H ... see the counts.
	out, in := c.Degrees()
	h, _ := c.ID("H")
	if out[h] != 6 || in[h] != 6 {
		t.Fatalf("H: out %d in %d", out[h], in[h])
	}
	if sum.Neurons.Done != len(c.Neurons) || sum.Neurons.Total != len(c.Neurons) {
		t.Fatalf("neurons %+v", sum.Neurons)
	}
	y := sum.Synapses
	if y.Total != len(c.Synapses) || y.Refused["MAX_OUT_DEGREE_POLICY_EXCEEDED"] != 3 || y.Refused["MAX_IN_DEGREE_POLICY_EXCEEDED"] != 3 ||
		y.Done != len(c.Synapses)-6 || y.Unknown != 0 || len(y.Failed) != 0 {
		t.Fatalf("synapses %+v", y)
	}
	if v := sum.Verify; v == nil || len(v.Mismatches) != 0 || v.SynapsesMatch != y.Done || v.SynapsesAbsent != 6 || v.NeuronsPresent != len(c.Neurons) || v.DegreesMatch != len(c.Neurons) {
		t.Fatalf("verify %+v", sum.Verify)
	}
	if sum.exitCode() != 0 {
		t.Fatalf("exit %d", sum.exitCode())
	}
	n1, s1 := f.snapshot()
	applied := f.applied
	again := importRun(context.Background(), f, 1, c, "g.csv", 4, true, nil)
	n2, s2 := f.snapshot()
	if !maps.Equal(n1, n2) || !maps.Equal(s1, s2) || f.applied != applied {
		t.Fatalf("a re-run changed the store (%d operations applied, then %d)", applied, f.applied)
	}
	if again.Synapses.Done != y.Done || again.Synapses.Refused["MAX_OUT_DEGREE_POLICY_EXCEEDED"] != 3 || again.exitCode() != 0 {
		t.Fatalf("re-run %+v", again.Synapses)
	}
	var b bytes.Buffer
	sum.print(&b, c)
	for _, want := range []string{"refused 6 (MAX_IN_DEGREE_POLICY_EXCEEDED 3, MAX_OUT_DEGREE_POLICY_EXCEEDED 3)", "mismatches 0", "6 gap-junction directions mirrored"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

// TestVerifyChecksDegrees: --verify compares each neuron's degrees with the
// synapses it read present; a degree that settles within degreeSettle (a
// compensated saga's in-slot given back late) passes, one that never does is
// a mismatch and exit 1.
func TestVerifyChecksDegrees(t *testing.T) {
	defer func(d time.Duration) { degreeSettle = d }(degreeSettle)
	degreeSettle = 2 * time.Second
	c := testGraph(t)
	h, _ := c.ID("H")
	n2, _ := c.ID("N2")
	f := newFake(1, 100)
	f.settling[h] = 3 // the first read and two re-reads say one more
	sum := importRun(context.Background(), f, 1, c, "g.csv", 4, true, nil)
	if v := sum.Verify; v == nil || len(v.Mismatches) != 0 || v.DegreesMatch != len(c.Neurons) || sum.exitCode() != 0 {
		t.Fatalf("a degree that settles: verify %+v, exit %d", sum.Verify, sum.exitCode())
	}
	f.leak[n2] = 1
	sum = importRun(context.Background(), f, 1, c, "g.csv", 4, true, nil)
	v := sum.Verify
	if v == nil || v.DegreesMatch != len(c.Neurons)-1 || len(v.Mismatches) != 1 || !strings.Contains(v.Mismatches[0], "neuron N2") || sum.exitCode() != 1 {
		t.Fatalf("a leaked in-slot: verify %+v, exit %d", v, sum.exitCode())
	}
}

// TestImportWritesOutcomes: --outcomes has one line per synapse of the file,
// each with the outcome its connect got.
func TestImportWritesOutcomes(t *testing.T) {
	c := testGraph(t)
	sum := importRun(context.Background(), newFake(1, 3), 1, c, "g.csv", 4, false, nil)
	var b bytes.Buffer
	if err := sum.writeOutcomes(&b, c); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") // not TrimSpace: it would eat the last line's empty reason field
	if len(lines) != len(c.Synapses)+1 || lines[0] != "pre\tpost\tpre_id\tpost_id\toutcome\treason" {
		t.Fatalf("%d lines for %d synapses:\n%s", len(lines), len(c.Synapses), b.String())
	}
	count := map[string]int{}
	for i, l := range lines[1:] {
		f := strings.Split(l, "\t")
		s := c.Synapses[i]
		if len(f) != 6 || f[2] != fmt.Sprint(s.Pre) || f[3] != fmt.Sprint(s.Post) {
			t.Fatalf("line %d %q for synapse %+v", i+2, l, s)
		}
		count[f[4]+" "+f[5]]++
	}
	y := sum.Synapses
	if count["ok "] != y.Done || count["rejected MAX_OUT_DEGREE_POLICY_EXCEEDED"] != y.Refused["MAX_OUT_DEGREE_POLICY_EXCEEDED"] ||
		count["rejected MAX_IN_DEGREE_POLICY_EXCEEDED"] != y.Refused["MAX_IN_DEGREE_POLICY_EXCEEDED"] || count["rejected MAX_IN_DEGREE_POLICY_EXCEEDED"] == 0 {
		t.Fatalf("outcomes %v, summary %+v", count, y)
	}
}

func TestImportCrossSubgraphRefusalsAreCounted(t *testing.T) {
	c := testGraph(t)
	f := newFake(8, 100)
	sum := importRun(context.Background(), f, 8, c, "g.csv", 3, true, nil)
	cross := 0
	for _, s := range c.Synapses {
		if model.SubgraphOf(s.Pre, 8) != model.SubgraphOf(s.Post, 8) {
			cross++
		}
	}
	if cross == 0 || sum.Synapses.Refused["CROSS_SUBGRAPH_UNSUPPORTED"] != cross || sum.Synapses.Done != len(c.Synapses)-cross || len(sum.Verify.Mismatches) != 0 {
		t.Fatalf("cross %d: %+v %+v", cross, sum.Synapses, sum.Verify)
	}
}

func TestImportRetriesUnknownOutcomesWithTheSameID(t *testing.T) {
	c := testGraph(t)
	f := newFake(1, 100)
	k := 0
	f.unknown = func(model.Request) bool { k++; return k%3 == 0 }
	sum := importRun(context.Background(), f, 1, c, "g.csv", 2, true, nil)
	retried := sum.Neurons.RetriedUnknown + sum.Synapses.RetriedUnknown
	if retried == 0 || sum.Neurons.Unknown+sum.Synapses.Unknown != 0 || sum.exitCode() != 0 {
		t.Fatalf("retried %d, %+v %+v", retried, sum.Neurons, sum.Synapses)
	}
	if f.applied != len(c.Neurons)+len(c.Synapses) || len(sum.Verify.Mismatches) != 0 || sum.Synapses.Done != len(c.Synapses) {
		t.Fatalf("applied %d of %d: %+v", f.applied, len(c.Neurons)+len(c.Synapses), sum.Verify)
	}
}

func TestImportResumesAfterAnInterruption(t *testing.T) {
	c := testGraph(t)
	whole := newFake(1, 3)
	importRun(context.Background(), whole, 1, c, "g.csv", 1, false, nil)
	wantN, wantS := whole.snapshot()
	for _, at := range []int{1, len(c.Neurons), len(c.Neurons) + 5} {
		f := newFake(1, 3)
		ctx, cancel := context.WithCancel(context.Background())
		f.cancelAt, f.cancel = at, cancel
		sum := importRun(ctx, f, 1, c, "g.csv", 1, false, nil)
		if !sum.Stopped || sum.exitCode() != 3 {
			t.Fatalf("stopped at %d: %+v", at, sum)
		}
		f.cancelAt = 0
		sum = importRun(context.Background(), f, 1, c, "g.csv", 1, true, nil)
		n, s := f.snapshot()
		if sum.exitCode() != 0 || !maps.Equal(n, wantN) || !maps.Equal(s, wantS) {
			t.Fatalf("resumed after %d: exit %d, store differs from an uninterrupted import", at, sum.exitCode())
		}
	}
}

func TestImportVerifyFindsAWrongWeight(t *testing.T) {
	c := testGraph(t)
	f := newFake(1, 100)
	s := c.Synapses[0]
	f.neurons[s.Pre], f.neurons[s.Post] = true, true
	f.synapses[[2]model.NeuronID{s.Pre, s.Post}] = s.Weight + 1 // written by someone else
	f.out[s.Pre]++
	f.in[s.Post]++
	sum := importRun(context.Background(), f, 1, c, "g.csv", 4, true, nil)
	if sum.Synapses.Present != 1 || sum.Neurons.Present != 2 || len(sum.Verify.Mismatches) != 1 || !strings.Contains(sum.Verify.Mismatches[0], "the file says") || sum.exitCode() != 1 {
		t.Fatalf("%+v %+v exit %d", sum.Synapses, sum.Verify, sum.exitCode())
	}
}

func TestImportIDs(t *testing.T) {
	a := model.Request{Op: model.OpConnect, Pre: 1, Post: 2, Value: 5}
	b := a
	b.Value = 6
	a2 := a
	if importID(a, 0, 1) != importID(a2, 0, 2) || importID(a, 0, 0) == importID(b, 0, 0) || importID(a, 0, 0) == importID(a, 1, 0) || importID(a, 1, 1) == importID(a, 1, 2) || importID(a, 1, 1).Lo>>63 != 1 || importID(a, 0, 0).Hi != importSession {
		t.Fatal("ids are not deterministic per operation")
	}
	c := model.Request{Op: model.OpCreateNeuron, Neuron: 1}
	if importID(c, 0, 0) == importID(model.Request{Op: model.OpCreateNeuron, Neuron: 2}, 0, 0) {
		t.Fatal("two neurons share an id")
	}
}

func TestImportRefusesABadFileBeforeDialing(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.csv", "Source,Target,Weight,Type\nA,B,1,chemical\nA,C,lots,chemical\n")
	var out bytes.Buffer
	root := rootCmd()
	root.SetOut(&out)
	root.SetErr(&out)
	// No daemon listens at this address: a refusal must come before any dial.
	root.SetArgs([]string{"import", "--addr", freeAddr(t), bad})
	err := root.Execute()
	var ee *exitError
	if !asExit(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "nothing imported") {
		t.Fatalf("%v", err)
	}
}

// importSummaryOf runs `territoryd import --json` and returns its summary,
// stdout and exit code.
func runImport(t *testing.T, bin, addr, file string, extra ...string) (importSummary, string, int) {
	t.Helper()
	js := filepath.Join(t.TempDir(), "summary.json")
	args := append([]string{"import", "--addr", addr, "--json", js, "--progress", "none"}, extra...)
	out, errs, code := runBin(t, bin, append(args, file)...)
	var sum importSummary
	b, rerr := os.ReadFile(js)
	if rerr != nil || json.Unmarshal(b, &sum) != nil {
		t.Fatalf("import exit %d wrote no summary: %s %s", code, out, errs)
	}
	return sum, out, code
}

// TestImportTheConnectomeIntoDev: the whole C. elegans connectome into
// `territoryd dev` (4 subgraphs, degree limits of 16 that the hubs exceed),
// kill -9 of the import halfway and of the daemon halfway, re-runs, and every
// synapse checked against the file.
func TestImportTheConnectomeIntoDev(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts territoryd dev three times")
	}
	file := connectome.DefaultPath()
	c, err := connectome.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	devArgs := []string{"--subgraphs", "4", "--max-out-degree", "16", "--max-in-degree", "16", "--supernode-degree", "24"}
	dev := startDevArgs(t, bin, data, addr, devArgs...)

	// kill -9 the import once it is connecting synapses.
	imp := exec.Command(bin, "import", "--addr", addr, "--progress", "lines", file)
	stderr, _ := imp.StderrPipe()
	if err := imp.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	killed := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "synapses ") {
			imp.Process.Signal(syscall.SIGKILL)
			killed = true
			break
		}
	}
	imp.Wait()
	if !killed {
		t.Fatal("the import ended before it showed synapse progress")
	}

	// kill -9 the daemon while a second import runs.
	second := exec.Command(bin, "import", "--addr", addr, "--progress", "none", "--concurrency", "4", "--timeout", "60s", file)
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	dev.Process.Signal(syscall.SIGKILL)
	dev.Wait()
	// The import now meets a dead cluster (TestImportGivesUpOnASilentCluster
	// has what it does then); kill it too.
	time.Sleep(time.Second)
	second.Process.Signal(syscall.SIGKILL)
	second.Wait()
	dev = startDevArgs(t, bin, data, addr, devArgs...)

	sum, out, code := runImport(t, bin, addr, file, "--verify")
	if code != 0 {
		t.Fatalf("import after the kills: exit %d\n%s", code, out)
	}
	y := sum.Synapses
	refusedDeg := y.Refused["MAX_OUT_DEGREE_POLICY_EXCEEDED"] + y.Refused["MAX_IN_DEGREE_POLICY_EXCEEDED"]
	if sum.Neurons.Done+sum.Neurons.Present != len(c.Neurons) || y.Total != len(c.Synapses) ||
		y.Done+y.Present+y.refusedTotal() != len(c.Synapses) || refusedDeg == 0 || y.Done == 0 {
		t.Fatalf("summary: neurons %+v synapses %+v\n%s", sum.Neurons, y, out)
	}
	v := sum.Verify
	if v == nil || len(v.Mismatches) != 0 || v.ReadErrors != 0 || v.NeuronsPresent != len(c.Neurons) || v.SynapsesMatch != y.Done+y.Present || v.SynapsesAbsent != y.refusedTotal() {
		t.Fatalf("verify %+v\n%s", v, out)
	}
	// Running it again loses nothing and finds every synapse as the file has
	// it. It may connect a few more: a connect refused for a degree limit that
	// a concurrent saga's reservation filled (and then released, the saga
	// compensating) can succeed the second time (see the README).
	again, out2, code := runImport(t, bin, addr, file, "--verify")
	ay := again.Synapses
	if code != 0 || ay.Done+ay.Present < y.Done+y.Present || ay.Done+ay.Present+ay.refusedTotal() != len(c.Synapses) ||
		len(again.Verify.Mismatches) != 0 || again.Verify.SynapsesMatch != ay.Done+ay.Present {
		t.Fatalf("re-run: exit %d\n%s\nfirst:\n%s", code, out2, out)
	}
	t.Logf("re-run:\n%s", out2)
	t.Logf("%s", out)
	dev.Process.Signal(syscall.SIGTERM)
	dev.Wait()
}

// silentStore answers nothing: every operation's outcome is unknown.
type silentStore struct{ fakeStore }

func (s *silentStore) DoID(ctx context.Context, req model.Request) (model.Request, model.Result, error) {
	s.mu.Lock()
	s.applied++
	s.mu.Unlock()
	return req, model.Result{}, driver.ErrUnknownOutcome
}

func TestImportGivesUpOnASilentCluster(t *testing.T) {
	c := testGraph(t)
	s := &silentStore{}
	sum := importRun(context.Background(), s, 1, c, "g.csv", 2, false, nil)
	// The test graph has fewer operations than the give-up bound: the
	// second pass runs, and everything stays unknown.
	if sum.GaveUp || sum.exitCode() != 3 || sum.Neurons.Unknown != len(c.Neurons) {
		t.Fatalf("%+v", sum)
	}
	rows := []string{"Source,Target,Weight,Type"}
	for i := range 200 {
		rows = append(rows, fmt.Sprintf("A%d,B%d,1,chemical", i, i))
	}
	g, err := connectome.Parse(strings.NewReader(strings.Join(rows, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	s = &silentStore{}
	sum = importRun(context.Background(), s, 1, g, "g.csv", 2, false, nil)
	if !sum.GaveUp || sum.exitCode() != 3 || s.applied > 70 {
		t.Fatalf("gave up %v after %d operations (exit %d)", sum.GaveUp, s.applied, sum.exitCode())
	}
}

// TestImportSendsTransientRefusalsAgainUnderNewIDs: a connect refused
// SAGA_TIMEOUT is answered so again for its event_uuid from the dedup table;
// the import sends it again under the next attempt's id, in the same run and
// in a re-run.
func TestImportSendsTransientRefusalsAgainUnderNewIDs(t *testing.T) {
	c := testGraph(t)
	f := newFake(1, 100)
	f.timeouts = map[[2]model.NeuronID]int{}
	s0, s1 := c.Synapses[0], c.Synapses[1]
	f.timeouts[[2]model.NeuronID{s0.Pre, s0.Post}] = 2
	f.timeouts[[2]model.NeuronID{s1.Pre, s1.Post}] = maxAttempts + 3 // more than one run's attempts
	sum := importRun(context.Background(), f, 1, c, "g.csv", 2, true, nil)
	if sum.Synapses.Done != len(c.Synapses)-1 || sum.Synapses.Refused["SAGA_TIMEOUT"] != 1 || sum.Synapses.RetriedTransient != 2+(maxAttempts-1) || len(sum.Verify.Mismatches) != 0 {
		t.Fatalf("%+v %+v", sum.Synapses, sum.Verify)
	}
	// A re-run gets attempt 0's refusal back from the dedup table and
	// retries under ids of its own.
	f.timeouts[[2]model.NeuronID{s1.Pre, s1.Post}] = 0
	again := importRun(context.Background(), f, 1, c, "g.csv", 2, true, nil)
	if again.Synapses.Done+again.Synapses.Present != len(c.Synapses) || len(again.Synapses.Refused) != 0 || again.exitCode() != 0 {
		t.Fatalf("re-run %+v", again.Synapses)
	}
}
