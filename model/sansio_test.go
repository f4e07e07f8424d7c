package model

import (
	"os/exec"
	"strings"
	"testing"
)

// TestModelIsSansIO fails the build if the protocol core reaches a package
// that does I/O, reads a clock, draws randomness or starts concurrency.
func TestModelIsSansIO(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "territory/model").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := map[string]bool{"time": true, "math/rand": true, "math/rand/v2": true, "os": true, "net": true, "sync": true}
	var bad []string
	for _, p := range strings.Fields(string(out)) {
		if forbidden[p] || strings.HasPrefix(p, "net/") || strings.HasPrefix(p, "os/") {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		t.Fatalf("model/ reaches %v: the core must stay sans-IO (DESIGN.md section 2)", bad)
	}
}
