package sim_test

import "testing"

// TestSagasScenarioDrivesEveryPath: the sagas scenario commits sagas,
// compensates refused and timed-out ones, releases in-slots and closes
// cross-subgraph prunes, sends connects again after the dedup window (new
// sagas under an old event_uuid), and every answer is checked against pre's
// log.
// A saga path no seed reaches is a path no check looks at.
func TestSagasScenarioDrivesEveryPath(t *testing.T) {
	var total struct{ answers, committed, compensated, timedOut, released, unlinked, resent int }
	for seed := uint64(1); seed <= 6; seed++ {
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
		total.resent += res.Workload.Resent
	}
	t.Logf("sagas over 6 seeds: %+v", total)
	if total.answers < 100 || total.committed < 50 || total.compensated-total.timedOut < 10 || total.timedOut < 1 || total.released < 10 || total.unlinked < 10 || total.resent < 100 {
		t.Errorf("the scenario does not reach every saga path: %+v", total)
	}
}
