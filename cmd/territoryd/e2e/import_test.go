//go:build integration

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"territory/connectome"
)

// importSummary is the part of `territoryd import --json` this test reads.
type importSummary struct {
	Neurons struct {
		Total, Done, Unknown int
		Present              int `json:"already_present"`
	} `json:"neurons"`
	Synapses struct {
		Total, Done, Unknown int
		Present              int            `json:"already_present"`
		Refused              map[string]int `json:"refused"`
		Failed               map[string]int `json:"failed"`
		Seconds              float64        `json:"seconds"`
	} `json:"synapses"`
	Verify *struct {
		NeuronsPresent int      `json:"neurons_present"`
		SynapsesMatch  int      `json:"synapses_match"`
		Mismatches     []string `json:"mismatches"`
		ReadErrors     int      `json:"read_errors"`
	} `json:"verify"`
	SynapsesPS float64 `json:"synapses_per_second"`
}

func readSummary(t testing.TB, path string) importSummary {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s importSummary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestImportConnectomeUnderKill: the whole C. elegans connectome (448
// neurons, 6631 synapses, most of them cross-subgraph sagas) imported with
// `territoryd import` into three `territoryd run` processes (one territory
// each, 6 subgraphs) on etcd, Pulsar and S3, under a policy that fits the
// data. Halfway through the synapses one process is killed with SIGKILL
// (its subgraphs are pre of some sagas and post of others) and restarted;
// the import is then run again, and every neuron and synapse is read back and
// checked against the file.
func TestImportConnectomeUnderKill(t *testing.T) {
	file := connectome.DefaultPath()
	cg, err := connectome.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, clusterOpts{subgraphs: 6, runs: [][]uint32{{1}, {2}, {3}},
		policy: "  max_out_degree: 256\n  max_in_degree: 256\n  supernode_degree: 100\n  snapshot_every: 400"})
	c.startManager()
	runs := c.startRuns()
	victim := 1
	first := filepath.Join(c.dir, "first.json")
	imp := startProc(t, c.dir, "import", false, "import", "--addr", c.runAddrs[0], "--progress", "lines", "--json", first, file)
	deadline := time.Now().Add(3 * time.Minute)
	var before string
	for {
		lines := strings.Split(imp.tail(5), "\n")
		last := lines[len(lines)-1]
		var done, total int
		if _, err := fmt.Sscanf(last, "synapses %d/%d", &done, &total); err == nil && done >= total/2 {
			before = last // halfway
			break
		}
		if !imp.running() || time.Now().After(deadline) {
			t.Fatalf("the import ended or stalled before the synapses:\n%s", imp.tail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("kill -9 of run-%d at %q", victim, before)
	runs[victim].kill()
	time.Sleep(2 * time.Second)
	c.startRun(victim, false)
	code := imp.waitExit(4 * time.Minute)
	t.Logf("first import: exit %d\n%s", code, imp.tail(12))

	again := filepath.Join(c.dir, "again.json")
	re := startProc(t, c.dir, "import-again", false, "import", "--addr", c.runAddrs[2], "--progress", "none", "--verify", "--json", again, file)
	if code := re.waitExit(4 * time.Minute); code != 0 {
		t.Fatalf("import after the kill: exit %d\n%s", code, re.tail(20))
	}
	s := readSummary(t, again)
	y := s.Synapses
	if s.Neurons.Done+s.Neurons.Present != len(cg.Neurons) || y.Total != len(cg.Synapses) || y.Done+y.Present != len(cg.Synapses) ||
		len(y.Refused) != 0 || len(y.Failed) != 0 || y.Unknown != 0 {
		t.Fatalf("after the re-run: neurons %+v synapses %+v", s.Neurons, y)
	}
	if v := s.Verify; v == nil || len(v.Mismatches) != 0 || v.ReadErrors != 0 || v.NeuronsPresent != len(cg.Neurons) || v.SynapsesMatch != len(cg.Synapses) {
		t.Fatalf("verify: %+v", s.Verify)
	}
	if _, err := os.Stat(first); err == nil {
		f := readSummary(t, first)
		t.Logf("first import (killed halfway): synapses %+v, %.0f/s", f.Synapses, f.SynapsesPS)
	}
	t.Logf("re-run: synapses %+v, %.0f/s; verify %+v", y, s.SynapsesPS, *s.Verify)
}
