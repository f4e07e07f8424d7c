package sim

import (
	"testing"

	"territory/model"
	"territory/sim/invariants"
)

func TestExactlyOnceApplyAcceptsAnOrderedHistory(t *testing.T) {
	w := testWorld(t)
	pub := func(f model.Fact) { w.publish(FactObserved{Host: 7, Fact: f}) }
	pub(model.FactAdopted{Territory: 7, Subgraph: 1})
	pub(model.FactSnapshotLoaded{Territory: 7, Subgraph: 1, UUID: "s", LSN: 10})
	pub(model.FactReplayed{Territory: 7, Subgraph: 1, FromLSN: 11, ToLSN: 20})
	pub(model.FactCommitted{Territory: 7, Subgraph: 1, LSN: 21})
	pub(model.FactSteppedDown{Territory: 7, Subgraph: 1})
	pub(model.FactAdopted{Territory: 7, Subgraph: 1}) // a new incarnation replays from the start
	pub(model.FactReplayed{Territory: 7, Subgraph: 1, FromLSN: 1, ToLSN: 21})
	if len(w.violations) > 0 {
		t.Fatalf("an exactly-once history flagged: %v", w.violations)
	}
}

func TestExactlyOnceApplyCatchesDoublesAndGaps(t *testing.T) {
	cases := []struct {
		name   string
		facts  []model.Fact
		detail string
	}{
		{"catch-up from the snapshot LSN", []model.Fact{
			model.FactAdopted{Territory: 7, Subgraph: 1},
			model.FactSnapshotLoaded{Territory: 7, Subgraph: 1, UUID: "s", LSN: 10},
			model.FactReplayed{Territory: 7, Subgraph: 1, FromLSN: 10, ToLSN: 20},
		}, "applied LSN 10 of subgraph 1 twice"},
		{"commit re-applied", []model.Fact{
			model.FactAdopted{Territory: 7, Subgraph: 1},
			model.FactCommitted{Territory: 7, Subgraph: 1, LSN: 1},
			model.FactCommitted{Territory: 7, Subgraph: 1, LSN: 1},
		}, "twice"},
		{"live before catch-up", []model.Fact{
			model.FactAdopted{Territory: 7, Subgraph: 1},
			model.FactSnapshotLoaded{Territory: 7, Subgraph: 1, UUID: "s", LSN: 10},
			model.FactCommitted{Territory: 7, Subgraph: 1, LSN: 15},
		}, "skipped LSNs 11..14"},
		{"applied without adopting", []model.Fact{
			model.FactCommitted{Territory: 7, Subgraph: 1, LSN: 3},
		}, "without having adopted"},
		{"applied after stepping down", []model.Fact{
			model.FactAdopted{Territory: 7, Subgraph: 1},
			model.FactSteppedDown{Territory: 7, Subgraph: 1},
			model.FactReplayed{Territory: 7, Subgraph: 1, FromLSN: 1, ToLSN: 2},
		}, "without having adopted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := testWorld(t)
			for _, f := range tc.facts {
				w.publish(FactObserved{Host: 7, Fact: f})
			}
			if !violated(w, invariants.ExactlyOnceApply, tc.detail) {
				t.Fatalf("planted %q not caught (want %q): %v", tc.name, tc.detail, w.violations)
			}
		})
	}
}
