package scenarios

import (
	"strings"
	"testing"

	"territory/faults"
)

// The simulator's links have no bandwidth: a schedule that caps one is
// refused, not run without it.
func TestSimRefusesABandwidthCap(t *testing.T) {
	sc, err := Get("basic")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sc.Config(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Schedule.Faults = append(cfg.Schedule.Faults, faults.Fault{Kind: faults.NetDegrade, AtMs: 1000, DurationMs: 1000, BandwidthKBps: 10})
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "bandwidth") {
		t.Errorf("a bandwidth cap was accepted: %v", err)
	}
	cfg.Schedule.Faults[len(cfg.Schedule.Faults)-1].Kind = faults.HostCrash
	if err := cfg.Schedule.Validate(cfg.Topology()); err == nil || !strings.Contains(err.Error(), "bandwidth_kbps") {
		t.Errorf("a bandwidth cap on a crash was accepted: %v", err)
	}
}
