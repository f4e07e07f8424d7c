package faults

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

type rnd struct{ s uint64 }

func (r *rnd) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
func (r *rnd) Int63n(n int64) int64         { return int64(r.next() % uint64(n)) }
func (r *rnd) Chance(perMillion int64) bool { return int64(r.next()%1_000_000) < perMillion }

var top = Topology{Hosts: []string{"t1", "t2", "t3", "c1", "coord", "log", "blob"}, Bookies: 5}

func spec() Spec {
	return Spec{Kinds: Kinds(), Count: 30, StartMs: 1000, EndMs: 50_000, MinDurMs: 100, MaxDurMs: 3000, MaxRatePM: 100_000,
		Territories: []string{"t1", "t2", "t3"}, Clients: []string{"c1"}, Services: []string{"coord", "log", "blob"}}
}

func TestGenerateIsDeterministicAndValid(t *testing.T) {
	a, err := Generate(&rnd{s: 1}, spec(), top)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(&rnd{s: 1}, spec(), top)
	c, _ := Generate(&rnd{s: 2}, spec(), top)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same randomness, different schedules")
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("different randomness, same schedule")
	}
	if len(a.Faults) != 30 {
		t.Fatalf("%d faults, want 30", len(a.Faults))
	}
	for i := 1; i < len(a.Faults); i++ {
		if a.Faults[i].AtMs < a.Faults[i-1].AtMs {
			t.Fatal("schedule not sorted by time")
		}
	}
}

func TestScheduleRoundTripsThroughJSON(t *testing.T) {
	a, _ := Generate(&rnd{s: 5}, spec(), top)
	data, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(data, top)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("JSON round trip changed the schedule")
	}
}

func TestParseRejectsBadSchedules(t *testing.T) {
	cases := map[string]string{
		`{"faults":[{"at_ms":1,"kind":"net.teleport"}]}`:                             "unknown fault kind",
		`{"faults":[{"at_ms":1,"kind":"host.crash","hosts":["t9"]}]}`:                `unknown host "t9"`,
		`{"faults":[{"at_ms":1,"kind":"host.crash"}]}`:                               "needs at least 1 host",
		`{"faults":[{"at_ms":-1,"kind":"host.crash","hosts":["t1"]}]}`:               "negative time",
		`{"faults":[{"at_ms":1,"kind":"log.bookie-crash","bookie":5}]}`:              "out of range",
		`{"faults":[{"at_ms":1,"kind":"log.ack-loss","rate_pm":2000000}]}`:           "per million",
		`{"faults":[{"at_ms":1,"kind":"net.partition","hosts":["t1"]}]}`:             "needs peers",
		`{"faults":[{"at_ms":1,"kind":"coord.slow"}]}`:                               "extra_ms",
		`{"faults":[{"at_ms":1,"kind":"host.crash","hosts":["t1"],"typo_field":1}]}`: "unknown field",
	}
	for in, want := range cases {
		_, err := Parse([]byte(in), top)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%s): error %v, want it to mention %q", in, err, want)
		}
	}
}

func TestSortIsStableForHandEditedSchedules(t *testing.T) {
	s := Schedule{Faults: []Fault{
		{AtMs: 20, Kind: HostCrash, Hosts: []string{"t1"}},
		{AtMs: 10, Kind: LogAckLoss},
		{AtMs: 10, Kind: CoordSlow, ExtraMs: 5},
	}}
	s.Sort()
	if s.Faults[0].Kind != CoordSlow || s.Faults[1].Kind != LogAckLoss || s.Faults[2].AtMs != 20 {
		t.Fatalf("sort: %v", s.Faults)
	}
	if s.LastEndMs() != 20 {
		t.Fatalf("last end %d", s.LastEndMs())
	}
}

func TestValidateRejectsOverlappingDriftsBeyondRange(t *testing.T) {
	ok := Schedule{Faults: []Fault{
		{AtMs: 0, DurationMs: 100, Kind: ClockDrift, Hosts: []string{"t1"}, RatePM: -600_000},
		{AtMs: 100, DurationMs: 100, Kind: ClockDrift, Hosts: []string{"t1"}, RatePM: -600_000}, // starts as the first ends
		{AtMs: 50, DurationMs: 100, Kind: ClockDrift, Hosts: []string{"t2"}, RatePM: -600_000},  // another host
	}}
	if err := ok.Validate(top); err != nil {
		t.Fatalf("drifts that never add up out of range: %v", err)
	}
	bad := Schedule{Faults: append(ok.Faults, Fault{AtMs: 150, DurationMs: 10, Kind: ClockDrift, Hosts: []string{"t1"}, RatePM: -500_000})}
	if err := bad.Validate(top); err == nil || !strings.Contains(err.Error(), "add up to -1100000") {
		t.Fatalf("overlapping drifts of t1 summing to -1100000 ppm: %v", err)
	}
}

func TestGeneratedSplitBrainsCutATerritoryAndItsClientsFromTheControlPlane(t *testing.T) {
	sp := spec()
	sp.Kinds = []Kind{NetPartition}
	sp.Clients = []string{"c1"}
	sp.Managers = []string{"log"} // the topology has no manager host; any control-plane host will do
	sp.Coord, sp.Log, sp.Blob = "coord", "log", "blob"
	sp.SplitBrainPM, sp.SplitBrainMinMs, sp.SplitBrainMaxMs = 1_000_000, 8_000, 20_000
	s, err := Generate(&rnd{s: 3}, sp, top)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s.Faults {
		if !f.IsSplitBrain("coord", sp.Territories, sp.Clients) {
			t.Errorf("not a split brain: %s", f)
		}
		if f.DurationMs < 8_000 || f.DurationMs > 20_000 {
			t.Errorf("split brain %s lasts %d ms, not 8000..20000", f, f.DurationMs)
		}
	}
	sp.SplitBrainPM = 0
	s, _ = Generate(&rnd{s: 3}, sp, top)
	for _, f := range s.Faults {
		if f.IsSplitBrain("coord", sp.Territories, sp.Clients) && f.DurationMs > sp.MaxDurMs {
			t.Errorf("split brain drawn with odds 0: %s", f)
		}
	}
	sp.SplitBrainPM, sp.Coord = 1, ""
	if _, err := Generate(&rnd{s: 3}, sp, top); err == nil {
		t.Error("split brains without the coordination store's host were accepted")
	}
}
