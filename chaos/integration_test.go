//go:build integration

package chaos

import (
	"os"
	"testing"

	"territory/runtime/servicetest"
)

// TestChaosCalm is a chaos run without faults against the real services: it
// must pass every check. The planted bugs of scripts/mutants that name it
// (ack-stimulate-unlogged) must make it fail.
func TestChaosCalm(t *testing.T) {
	if !HaveServices() {
		servicetest.Absent(t, ServicesMissing)
	}
	r, err := Run(Options{Scenario: "calm", Seed: 1, WorkDir: t.TempDir(), Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range r.Violations {
		t.Errorf("violation: %s", v)
	}
	for _, v := range r.LogViolations {
		t.Errorf("logcheck: %s", v)
	}
	if !r.Pass {
		t.Fatalf("%s", r.Line())
	}
	t.Log(r.Line())
}
