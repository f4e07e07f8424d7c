//go:build integration

package chaos

import (
	"os"
	"testing"

	"territory/linearizability"

	"territory/runtime/servicetest"
)

// TestChaosCalm is a chaos run without faults against the real services: it
// must pass every check. The planted bugs of scripts/mutants that name it
// (ack-stimulate-unlogged, saga-commit-on-refusal-chaos) must make it fail;
// each failing check fails a subtest named by it (TestChaosCalm/saga-atomic,
// TestChaosCalm/logcheck, TestChaosCalm/linearizable), so that a mutant's
// expectation names the check that caught it.
func TestChaosCalm(t *testing.T) {
	if !HaveServices() {
		servicetest.Absent(t, ServicesMissing)
	}
	r, err := Run(Options{Scenario: "calm", Seed: 1, WorkDir: t.TempDir(), Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string][]string{}
	var names []string
	for _, v := range r.Violations {
		if by[v.Invariant] == nil {
			names = append(names, v.Invariant)
		}
		by[v.Invariant] = append(by[v.Invariant], v.String())
	}
	if len(r.LogViolations) > 0 {
		names = append(names, "logcheck")
		by["logcheck"] = r.LogViolations
	}
	if r.Linearizable != linearizability.VerdictOK {
		names = append(names, "linearizable")
		by["linearizable"] = append(r.ViolatingKeys, string(r.Linearizable))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			for i, d := range by[name] {
				if i == 10 {
					t.Errorf("... and %d more", len(by[name])-i)
					break
				}
				t.Error(d)
			}
		})
	}
	if !r.Pass {
		t.Fatalf("%s", r.Line())
	}
	t.Log(r.Line())
}
