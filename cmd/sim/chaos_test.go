package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A fault kind that cannot be made real is refused before anything starts
// (no service is needed to see it), with its reason, and exit 2.
func TestChaosRefusesWhatItCannotMakeReal(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ schedule, want string }{
		{`{"faults": [{"at_ms": 1000, "duration_ms": 2000, "kind": "clock.skew", "hosts": ["t1"], "extra_ms": 500}]}`, "clock.skew"},
		{`{"faults": [{"at_ms": 1000, "duration_ms": 2000, "kind": "net.partition", "hosts": ["t1"], "peers": ["t2"]}]}`, "only made on its path to etcd"},
		{`{"faults": [{"at_ms": 1000, "duration_ms": 2000, "kind": "log.ack-loss", "rate_pm": 1000}]}`, "cannot be made real"},
	} {
		path := filepath.Join(dir, "schedule.json")
		if err := os.WriteFile(path, []byte(tc.schedule), 0o644); err != nil {
			t.Fatal(err)
		}
		root := newRoot()
		root.SetOut(io.Discard)
		root.SetArgs([]string{"chaos", "--scenario", "short", "--seed", "1", "--schedule", path})
		err := root.Execute()
		if exitCode(err) != exitUsage || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("schedule %s: exit %d, %v; want exit %d naming %q", tc.schedule, exitCode(err), err, exitUsage, tc.want)
		}
	}
	out, code := runSim(t, "chaos", "--list")
	if code != exitPass || !strings.Contains(out, "refused") || !strings.Contains(out, "host.crash") {
		t.Fatalf("chaos --list: %d %s", code, out)
	}
}
