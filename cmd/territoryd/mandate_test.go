package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"territory/model"
)

func mandate(t *testing.T, bin, addr string, args ...string) ([]map[string]any, string, int) {
	t.Helper()
	out, errs, code := runBin(t, bin, append([]string{"mandate", "--addr", addr}, args...)...)
	var lines []map[string]any
	for _, l := range strings.Split(out, "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("mandate output line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines, errs, code
}

// TestDevSagaAndMandate: on `territoryd dev` (8 subgraphs, in-degree limit
// 8), a connect across subgraphs is made by the handshake saga and read and
// pruned like a local one; a growth mandate reports each synapse fulfilled or
// as a mandate.fulfillment.failed event (a missing post, post's full
// in-degree); malformed mandates are refused before anything is sent.
func TestDevSagaAndMandate(t *testing.T) {
	bin := buildBinary(t)
	addr := freeAddr(t)
	startDev(t, bin, filepath.Join(t.TempDir(), "data"), addr)
	post := model.NeuronID(1)
	var pres []model.NeuronID
	for n := post + 1; len(pres) < 10; n++ {
		if model.SubgraphOf(n, 8) != model.SubgraphOf(post, 8) {
			pres = append(pres, n)
		}
	}
	mustClient(t, bin, addr, "ok", "create-neuron", fmt.Sprint(post))
	for _, n := range pres {
		mustClient(t, bin, addr, "ok", "create-neuron", fmt.Sprint(n))
	}
	P, Q := fmt.Sprint(pres[0]), fmt.Sprint(post)
	mustClient(t, bin, addr, "ok", "connect", P, Q, "500")
	mustClient(t, bin, addr, "ok exists=true weight=500", "read-synapse", P, Q)
	mustClient(t, bin, addr, "ok weight=450", "adjust", P, Q, "-50")
	mustClient(t, bin, addr, "ok", "prune", P, Q)
	mustClient(t, bin, addr, "ok exists=false weight=0", "read-synapse", P, Q)

	// Nine pres to one post of in-degree limit 8, and one post that does not
	// exist. A fresh post: the pruned synapse's in-slot at the first one is
	// released asynchronously (the unlink), and may still count.
	post2 := post + 1
	for model.SubgraphOf(post2, 8) != model.SubgraphOf(post, 8) {
		post2++
	}
	mustClient(t, bin, addr, "ok", "create-neuron", fmt.Sprint(post2))
	var syn []string
	for _, n := range pres[:9] {
		syn = append(syn, fmt.Sprintf("%d:%d:7", n, post2))
	}
	syn = append(syn, fmt.Sprintf("%d:%d:7", pres[9], 999_999))
	lines, errs, code := mandate(t, bin, addr, append([]string{"--id", "grow-frag-1", "--parallel", "1"}, syn...)...)
	if code != 1 || len(lines) != 10 {
		t.Fatalf("mandate: exit %d, %d lines, stderr %q", code, len(lines), errs)
	}
	fulfilled, codes := 0, map[string]int{}
	for _, l := range lines {
		if l["fulfilled"] == true {
			fulfilled++
			continue
		}
		if l["event_type"] != model.MandateFailedType || l["mandate_id"] != "grow-frag-1" || l["event_id"] == "" ||
			!strings.HasPrefix(fmt.Sprint(l["source_territory"]), "territory-") || l["details"] == "" {
			t.Fatalf("failure event %v", l)
		}
		codes[fmt.Sprint(l["reason_code"])]++
	}
	if fulfilled != 8 || codes[model.MandatePeerRejection] != 1 || codes[model.MandateNoSuchNeuron] != 1 {
		t.Fatalf("mandate outcomes: %d fulfilled, failures %v", fulfilled, codes)
	}
	// Run again: what exists stays fulfilled (already there).
	lines, _, code = mandate(t, bin, addr, "--id", "grow-frag-1", syn[0])
	if code != 0 || len(lines) != 1 || lines[0]["fulfilled"] != true {
		t.Fatalf("rerun of a fulfilled synapse: exit %d %v", code, lines)
	}

	for _, bad := range [][]string{
		{"--id", "", syn[0]},
		{"--id", "has space", syn[0]},
		{"--id", "x"},
		{"--id", "x", "1:2"},
		{"--id", "x", "0:2:1"},
		{"--id", "x", syn[0], syn[0]},
	} {
		if _, errs, code := mandate(t, bin, addr, bad...); code != 2 || !strings.Contains(errs, "mandate") {
			t.Errorf("mandate %q: exit %d, stderr %q", bad, code, errs)
		}
	}
}

// TestBenchAgainstDev: territoryd bench against dev, as JSON.
func TestBenchAgainstDev(t *testing.T) {
	bin := buildBinary(t)
	addr := freeAddr(t)
	startDev(t, bin, filepath.Join(t.TempDir(), "data"), addr)
	cmd := exec.Command(bin, "bench", "--addr", addr, "--workers", "8", "--ops", "400", "--neurons", "40", "--json", "-")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench: %v: %s", err, errb.String())
	}
	var rep struct {
		Ops          int64   `json:"ops"`
		OpsPerSecond float64 `json:"ops_per_second"`
		Errors       int64   `json:"errors"`
		All          struct {
			Outcomes map[string]int64 `json:"outcomes"`
			P99Ms    float64          `json:"p99_ms"`
		} `json:"all"`
		ByOp map[string]json.RawMessage `json:"by_op"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("bench JSON %q: %v", out.String(), err)
	}
	if rep.Ops != 400 || rep.OpsPerSecond <= 0 || rep.Errors != 0 || rep.All.Outcomes["ok"] == 0 || len(rep.ByOp) < 5 || rep.All.P99Ms <= 0 {
		t.Fatalf("bench report: %+v", rep)
	}
	bad := exec.Command(bin, "bench", "--addr", addr, "--mix", "fly=1")
	if err := bad.Run(); err == nil {
		t.Fatal("a bad mix was accepted")
	}
}
