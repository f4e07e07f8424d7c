package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"territory/model"
)

// TestDevMigrateAndStatus: on `territoryd dev` (2 territories, 4 subgraphs),
// `territoryd migrate --wait` moves a subgraph through every phase to
// COMMITTED and its writes are there afterwards; status shows the new
// route as a table and as JSON; bad requests get clear errors: an unknown
// subgraph or territory (exit 2), a destination that serves it already
// (exit 1, refused by the manager).
func TestDevMigrateAndStatus(t *testing.T) {
	bin := buildBinary(t)
	addr := freeAddr(t)
	startDevArgs(t, bin, filepath.Join(t.TempDir(), "data"), addr, "--subgraphs", "4", "--territories", "2")
	var ns []model.NeuronID
	for n := model.NeuronID(1); len(ns) < 3; n++ {
		if model.SubgraphOf(n, 4) == 1 {
			ns = append(ns, n)
		}
	}
	for i, n := range ns {
		mustClient(t, bin, addr, "ok", "create-neuron", fmt.Sprint(n))
		mustClient(t, bin, addr, fmt.Sprintf("ok potential=%d", 100*(i+1)), "stimulate", fmt.Sprint(n), fmt.Sprint(100*(i+1)))
	}
	status := func() clusterView {
		out, errs, code := runBin(t, bin, "status", "--addr", addr, "--json")
		var v clusterView
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
			t.Fatalf("status --json: exit %d: %s %s", code, out, errs)
		}
		return v
	}
	v := status()
	if len(v.Routes) != 4 || v.Routes[1].Primary != 2 || len(v.Territories) != 2 || !v.Territories[0].Alive || v.Manager == 0 {
		t.Fatalf("status before: %+v", v)
	}

	out, errs, code := runBin(t, bin, "migrate", "--addr", addr, "--subgraph", "1", "--to", "1", "--wait")
	if code != 0 || !strings.Contains(out, "accepted: subgraph 1, 2 -> 1") || !strings.Contains(out, "COMMITTED: subgraph 1 is served by 1") {
		t.Fatalf("migrate --wait: exit %d:\n%s\n%s", code, out, errs)
	}
	v = status()
	if v.Routes[1].Primary != 1 || v.Routes[1].Migrating || len(v.Migrations) != 0 {
		t.Fatalf("status after: %+v", v)
	}
	for i, n := range ns {
		mustClient(t, bin, addr, fmt.Sprintf("ok exists=true potential=%d in_degree=0 out_degree=0", 100*(i+1)), "read-neuron", fmt.Sprint(n))
	}
	mustClient(t, bin, addr, "ok potential=150", "stimulate", fmt.Sprint(ns[0]), "50")
	table, _, code := runBin(t, bin, "status", "--addr", addr)
	if code != 0 || !strings.Contains(table, "MIGRATION SUBGRAPH") || !strings.Contains(table, "1          127.0.0.1") {
		t.Fatalf("status table: exit %d\n%s", code, table)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--subgraph", "9", "--to", "1"}, 2, "unknown subgraph 9: the cluster has subgraphs 0..3"},
		{[]string{"--subgraph", "1", "--to", "7"}, 2, "unknown territory 7"},
		{[]string{"--subgraph", "1", "--to", "1"}, 1, "refused by the manager: ALREADY_THERE: subgraph 1 is served by 1 already"},
		{[]string{"--to", "1"}, 2, "--subgraph S and --to T are required"},
	} {
		_, errs, code := runBin(t, bin, append([]string{"migrate", "--addr", addr}, c.args...)...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("migrate %v: exit %d (want %d): %s (want %q)", c.args, code, c.code, errs, c.want)
		}
	}
}
