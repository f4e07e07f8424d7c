package sim_test

import "testing"

// TestSagasScenarioDrivesEveryPath: the sagas scenario commits sagas,
// compensates refused and timed-out ones, releases in-slots and closes
// cross-subgraph prunes, and every answer is checked against pre's log.
// A saga path no seed reaches is a path no check looks at.
func TestSagasScenarioDrivesEveryPath(t *testing.T) {
	var total struct{ answers, committed, compensated, timedOut, released, unlinked int }
	for seed := uint64(1); seed <= 4; seed++ {
		res := run(t, "sagas", seed, 0)
		if !res.Pass {
			t.Errorf("seed %d failed: %s", seed, res.Line())
		}
		s := res.Sagas
		total.answers += s.Answers
		total.committed += s.Committed
		total.compensated += s.Compensated
		total.timedOut += s.TimedOut
		total.released += s.Released
		total.unlinked += s.Unlinked
	}
	t.Logf("sagas over 4 seeds: %+v", total)
	if total.answers < 100 || total.committed < 50 || total.compensated-total.timedOut < 10 || total.timedOut < 1 || total.released < 10 || total.unlinked < 10 {
		t.Errorf("the scenario does not reach every saga path: %+v", total)
	}
}
