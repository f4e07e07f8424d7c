package scenarios

import (
	"testing"

	"territory/sim"
)

// TestSupernodesScenario: the egress path is exercised, not only passed: the
// stream carries supernode subgraphs, redeliveries happen, and every check holds.
func TestSupernodesScenario(t *testing.T) {
	s, err := Get("supernodes")
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range []uint64{1, 2} {
		cfg, err := s.Config(seed, 30_000)
		if err != nil {
			t.Fatal(err)
		}
		w, err := sim.NewWorld(cfg, seed)
		if err != nil {
			t.Fatal(err)
		}
		o, err := w.Run()
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range o.Violations {
			t.Errorf("seed %d: %s", seed, v)
		}
		t.Logf("seed %d: egress %+v stale %+v ops %d", seed, o.Egress, o.Stale, o.Ops)
		// Seed 1 draws from the connectome's hubs: only the few subgraphs of
		// its hubs hold a supernode, so few stale reads are a proxy's.
		minSubgraphs, minByProxy := 4, o.Stale.Reads/4
		if seed%2 == 1 {
			minSubgraphs, minByProxy = 2, 1
		}
		if o.Stale.Reads < 100 || o.Stale.ByProxy < minByProxy {
			t.Errorf("seed %d: %d stale reads, %d by a proxy: stale reads were not exercised", seed, o.Stale.Reads, o.Stale.ByProxy)
		}
		if o.Egress.Subgraphs < minSubgraphs || o.Egress.Published < 100 {
			t.Errorf("seed %d: the stream carries %d subgraphs, %d entries: the supernode path was not exercised", seed, o.Egress.Subgraphs, o.Egress.Published)
		}
	}
}

// TestChaosCarriesSupernodes: chaos runs the supernode path too: the stream
// carries subgraphs and proxies answer stale reads, under its faults.
func TestChaosCarriesSupernodes(t *testing.T) {
	s, err := Get("chaos")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := s.Config(3, 30_000)
	if err != nil {
		t.Fatal(err)
	}
	w, err := sim.NewWorld(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	o, err := w.Run()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range o.Violations {
		t.Error(v)
	}
	t.Logf("egress %+v stale %+v", o.Egress, o.Stale)
	if o.Egress.Subgraphs == 0 || o.Egress.Published < 50 || o.Stale.ByProxy == 0 {
		t.Errorf("chaos did not exercise the supernode path: egress %+v stale %+v", o.Egress, o.Stale)
	}
}
