package sim

import (
	"fmt"
	"hash/crc32"
	"reflect"
	"slices"
	"strings"
	"testing"

	"territory/faults"
	"territory/model"
	"territory/sim/netsim"
	"territory/sim/replog"
)

// condition is everything a fault can change in the world, as the executor
// leaves it: the composed fault state, read back from the world.
type condition struct {
	Blocked                                 []string // from>to pairs cut by partitions
	Link                                    netsim.LinkConfig
	Hosts                                   []hostCondition
	CoordExtraUs, BlobExtraUs               int64
	AckLossPM, BlobErrPM, BlobAmbigPM       int64
	DiskTornPM, DiskCorruptPM               int64
	BookiesDown                             []int
	Corruptions, LeasesOfT1, BookieStallEnd int64
}

type hostCondition struct {
	Name           string
	Up, Lost       bool
	Paused         bool
	OffsetUs       int64 // skews and jumps (drift is in DriftPM)
	DriftPM        int64
	HeldByAnyPause bool
}

func (w *World) condition() condition {
	var c condition
	for _, a := range w.hosts[1:] {
		for _, b := range w.hosts[1:] {
			if w.net.Blocked(a.id, b.id) {
				c.Blocked = append(c.Blocked, a.name+">"+b.name)
			}
		}
		hc := hostCondition{Name: a.name, Up: a.up, Lost: a.lost, Paused: a.paused, DriftPM: a.driftPM, HeldByAnyPause: w.pauseHeld(a)}
		if a.driftPM == 0 {
			hc.OffsetUs = a.clockErrUs(w.k.NowUs())
		}
		c.Hosts = append(c.Hosts, hc)
	}
	c.Link = w.net.Default()
	c.CoordExtraUs, c.BlobExtraUs = w.coordExtraUs, w.blobExtraUs
	c.AckLossPM, c.BlobErrPM, c.BlobAmbigPM = w.ackLossPM, w.blobErrPM, w.blobAmbigPM
	c.DiskTornPM, c.DiskCorruptPM = w.diskTornPM, w.diskCorruptPM
	for i := 0; i < w.cfg.Log.Bookies; i++ {
		if bl, ok := w.log.(bookieLog); ok && bl.BookieCrashed(i) { // the topic backend has no bookies
			c.BookiesDown = append(c.BookiesDown, i)
		}
	}
	for _, key := range w.blob.Keys("") {
		data, _ := w.blob.Object(key)
		c.Corruptions += int64(crc32.ChecksumIEEE(data)) // blob.corrupt changes bytes
	}
	for _, kv := range w.coord.PeekPrefix(model.AlivePrefix) {
		if kv.Key == model.AliveKey(w.hostByName("t1").id) {
			c.LeasesOfT1++
		}
	}
	return c
}

func (c condition) String() string {
	type plain condition // no String method: no recursion
	return fmt.Sprintf("%+v", plain(c))
}

func faultTestConfig(sched []faults.Fault) Config {
	return Config{
		Scenario: "faultexec", DurationMs: 8_000, DrainMs: 1_000,
		Territories: 3, Subgraphs: 8, Clients: 2, Policy: model.DefaultPolicy(),
		Net: netsim.LinkConfig{LatencyMinUs: 100, LatencyMaxUs: 1_000}, Log: replog.DefaultConfig(),
		CoordMinUs: 200, CoordMaxUs: 1_000, BlobMinUs: 1_000, BlobMaxUs: 5_000,
		Workload: Workload{Neurons: 16, InFlight: 2, WatchingClients: 1, ThinkMinUs: 10_000, ThinkMaxUs: 30_000,
			Mix: OpMix{Create: 10, Stimulate: 25, ReadNeuron: 20, Connect: 12, Adjust: 12, Prune: 6, ReadSynapse: 15}},
		Schedule:   faults.Schedule{Faults: sched},
		LivenessMs: 8_000, CheckEvery: 5_000, MaxSteps: 50_000_000,
	}
}

// conditionsAt runs a schedule and reads the condition at each time (ms),
// just before anything else scheduled for that instant.
func conditionsAt(t *testing.T, sched []faults.Fault, atMs []int64) []condition {
	t.Helper()
	cfg := faultTestConfig(slices.Clone(sched))
	cfg.Policy.SnapshotEvery = 5
	w, err := NewWorld(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]condition, len(atMs))
	for i, ms := range atMs {
		w.k.At(ms*1000, func() { out[i] = w.condition() })
	}
	if _, err := w.Run(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Each kind that lasts: A runs 1000..3000 ms, B 2000..4000 ms (overlapping),
// and C 1500..2500 ms nested in A. Its start must change the condition, the
// end of A must leave exactly the condition B alone makes, the end of C must
// leave exactly A's, and after the last end the condition is the one before.
func TestEveryLastingFaultComposesAndItsEndRestoresTheCondition(t *testing.T) {
	hosts := func(h ...string) []string { return h }
	lasting := map[faults.Kind][3]faults.Fault{
		faults.NetPartition: {
			{Hosts: hosts("t1"), Peers: hosts("coord", "c1")},
			{Hosts: hosts("t1"), Peers: hosts("coord", "m1")}, // shares t1<>coord with A
			{Hosts: hosts("t2"), Peers: hosts("log")},
		},
		faults.NetPartitionOneWay: {
			{Hosts: hosts("t1"), Peers: hosts("c1")},
			{Hosts: hosts("t1"), Peers: hosts("c1", "c2")},
			{Hosts: hosts("c2"), Peers: hosts("t3")},
		},
		faults.CoordUnreachable: {{Hosts: hosts("t1")}, {Hosts: hosts("t1", "t2")}, {Hosts: hosts("t3")}},
		faults.NetDegrade: {
			{DropPM: 100_000, SpikePM: 10_000},
			{DropPM: 200_000, DuplicatePM: 50_000},
			{ReorderPM: 300_000},
		},
		faults.HostCrash:  {{Hosts: hosts("t1")}, {Hosts: hosts("t1")}, {Hosts: hosts("t2")}},
		faults.HostPause:  {{Hosts: hosts("t1")}, {Hosts: hosts("t1", "t2")}, {Hosts: hosts("t1")}},
		faults.ClockSkew:  {{Hosts: hosts("t1"), ExtraMs: 700}, {Hosts: hosts("t1"), ExtraMs: -300}, {Hosts: hosts("m1"), ExtraMs: 50}},
		faults.ClockDrift: {{Hosts: hosts("t1"), RatePM: 10_000}, {Hosts: hosts("t1"), RatePM: -4_000}, {Hosts: hosts("t1"), RatePM: 500}},
		faults.CoordSlow:  {{ExtraMs: 30}, {ExtraMs: 50}, {ExtraMs: 7}},
		faults.BlobSlow:   {{ExtraMs: 30}, {ExtraMs: 50}, {ExtraMs: 7}},
		faults.LogAckLoss: {{RatePM: 100_000}, {RatePM: 300_000}, {RatePM: 1_000_000}},
		faults.BlobErrors: {{RatePM: 100_000}, {RatePM: 300_000}, {RatePM: 50_000}},
		faults.DiskTornWrite: {
			{RatePM: 100_000}, {RatePM: 300_000}, {RatePM: 50_000},
		},
		faults.DiskCorruptRead:  {{RatePM: 100_000}, {RatePM: 300_000}, {RatePM: 50_000}},
		faults.BlobAmbiguousPut: {{RatePM: 100_000}, {RatePM: 300_000}, {RatePM: 50_000}},
		faults.LogBookieCrash:   {{Bookie: 1}, {Bookie: 1}, {Bookie: 2}},
	}
	at := func(f faults.Fault, k faults.Kind, startMs, endMs int64) faults.Fault {
		f.Kind, f.AtMs, f.DurationMs = k, startMs, endMs-startMs
		return f
	}
	times := []int64{500, 1200, 1700, 2700, 3500, 4500}
	for kind, fs := range lasting {
		t.Run(string(kind), func(t *testing.T) {
			a, b, c := at(fs[0], kind, 1000, 3000), at(fs[1], kind, 2000, 4000), at(fs[2], kind, 1500, 2500)
			none := conditionsAt(t, nil, times)
			onlyA := conditionsAt(t, []faults.Fault{a}, times)
			onlyB := conditionsAt(t, []faults.Fault{b}, times)
			ab := conditionsAt(t, []faults.Fault{a, b}, times)
			ac := conditionsAt(t, []faults.Fault{a, c}, times)
			for _, cs := range [][]condition{none, onlyA, onlyB, ab, ac} {
				for i := range cs {
					// What the run did with the faults (a lease regranted, a
					// blob corrupted) differs between runs; the fault state
					// the executor composes must not.
					cs[i].LeasesOfT1, cs[i].Corruptions = 0, 0
					for j := range cs[i].Hosts {
						if kind == faults.ClockDrift {
							// A drift's end restores the rate; the error the clock
							// gathered while it ran stays, as on a real clock.
							cs[i].Hosts[j].OffsetUs = 0
						}
					}
				}
			}
			eq := func(what string, got, want condition) {
				t.Helper()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s:\n got %s\nwant %s", what, got, want)
				}
			}
			eq("before any fault", ab[0], none[0])
			if reflect.DeepEqual(onlyA[1], none[1]) {
				t.Errorf("the start of %s changed nothing: %s", a, onlyA[1])
			}
			eq("A alone running, in the overlapping schedule", ab[1], onlyA[1])
			eq("after A ended while B runs: exactly B's condition", ab[4], onlyB[4])
			eq("after both ended", ab[5], none[5])
			eq("after C (nested in A) ended: exactly A's condition", ac[3], onlyA[3])
			eq("after A and C ended", ac[4], none[4])
			if !slices.Contains([]faults.Kind{faults.NetPartitionOneWay, faults.HostCrash, faults.HostPause, faults.LogBookieCrash, faults.CoordUnreachable}, kind) {
				// Where the overlap is visible, both faults show in it.
				if reflect.DeepEqual(ab[3], onlyA[3]) || reflect.DeepEqual(ab[3], onlyB[3]) {
					t.Errorf("while A and B overlap the condition is one of theirs alone: %s", ab[3])
				}
			}
		})
	}
	for _, k := range faults.Kinds() {
		if _, ok := lasting[k]; !ok && !slices.Contains(instantKinds, k) {
			t.Errorf("fault kind %s is tested neither as lasting nor as instantaneous", k)
		}
	}
}

// instantKinds act at their start and never undo: their end leaves the
// condition as it was just before it.
var instantKinds = []faults.Kind{faults.HostLoss, faults.ClockJump, faults.CoordSessionExpiry, faults.BlobCorrupt, faults.LogBookieStall}

func TestInstantaneousFaultsActAtTheirStartOnly(t *testing.T) {
	cases := map[faults.Kind]faults.Fault{
		faults.HostLoss:           {Hosts: []string{"t1"}},
		faults.ClockJump:          {Hosts: []string{"t1"}, ExtraMs: 900},
		faults.CoordSessionExpiry: {Hosts: []string{"t1"}},
		faults.BlobCorrupt:        {},
		faults.LogBookieStall:     {Bookie: 1},
	}
	for _, kind := range instantKinds {
		t.Run(string(kind), func(t *testing.T) {
			f := cases[kind]
			f.Kind, f.AtMs, f.DurationMs = kind, 3000, 1000
			if kind == faults.LogBookieStall {
				testStallsCompose(t)
				return
			}
			// Just before and just after the start, and around the end.
			times := []int64{2999, 3001, 3999, 4001}
			none := conditionsAt(t, nil, times)
			with := conditionsAt(t, []faults.Fault{f}, times)
			if !reflect.DeepEqual(with[0], none[0]) {
				t.Errorf("before its start: %s vs %s", with[0], none[0])
			}
			if reflect.DeepEqual(with[1], none[1]) {
				t.Errorf("the start of %s changed nothing: %s", f, with[1])
			}
			if kind == faults.HostLoss || kind == faults.ClockJump || kind == faults.BlobCorrupt {
				if !reflect.DeepEqual(with[3].Hosts, with[2].Hosts) || with[3].Corruptions != with[2].Corruptions {
					t.Errorf("the end of %s undid it:\n%s\n%s", f, with[2], with[3])
				}
			}
		})
	}
}

// testStallsCompose stalls every bookie 3000..5000 ms, and again
// 3000..4000 ms: nothing commits until the longer stall ends (the shorter
// one's end does not shorten it), then commits resume.
func testStallsCompose(t *testing.T) {
	var sched []faults.Fault
	for b := range replog.DefaultConfig().Bookies {
		sched = append(sched,
			faults.Fault{Kind: faults.LogBookieStall, AtMs: 3000, DurationMs: 2000, Bookie: b},
			faults.Fault{Kind: faults.LogBookieStall, AtMs: 3000, DurationMs: 1000, Bookie: b})
	}
	cfg := faultTestConfig(sched)
	w, err := NewWorld(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	times := []int64{2000, 2900, 3100, 4900, 5600}
	entries := make([]int, len(times))
	for i, ms := range times {
		w.k.At(ms*1000, func() {
			for _, s := range w.log.Streams() {
				entries[i] += len(w.log.Committed(s))
			}
		})
	}
	if _, err := w.Run(); err != nil {
		t.Fatal(err)
	}
	if entries[1] <= entries[0] || entries[3] != entries[2] || entries[4] <= entries[3] {
		t.Fatalf("committed entries at %v ms: %v; want growth before the stalls, none during, growth after the longer ends", times, entries)
	}
}

// A pause holds the process it froze: a crash in between ends the hold, and
// the restarted process is not frozen by the pause that outlived its
// predecessor.
func TestPauseHoldsOnlyTheIncarnationItFroze(t *testing.T) {
	sched := []faults.Fault{
		{Kind: faults.HostPause, AtMs: 1000, DurationMs: 4000, Hosts: []string{"t1"}},
		{Kind: faults.HostCrash, AtMs: 2000, DurationMs: 1000, Hosts: []string{"t1"}},
	}
	c := conditionsAt(t, sched, []int64{1500, 2500, 3500, 5500})
	t1 := func(c condition) hostCondition { return c.Hosts[0] }
	if h := t1(c[0]); !h.Paused || !h.Up {
		t.Fatalf("paused: %+v", h)
	}
	if h := t1(c[1]); h.Up || h.Paused {
		t.Fatalf("crashed: %+v", h)
	}
	if h := t1(c[2]); !h.Up || h.Paused || h.HeldByAnyPause {
		t.Fatalf("restarted while the pause still runs: the new process must run: %+v", h)
	}
	if h := t1(c[3]); !h.Up || h.Paused {
		t.Fatalf("after both: %+v", h)
	}
}

func TestCombinedOddsStayWithinAMillion(t *testing.T) {
	cases := []struct{ in []int64 }{{nil}, {[]int64{0}}, {[]int64{1_000_000, 500_000}}, {[]int64{500_000, 500_000}}, {[]int64{999_999, 999_999, 999_999}}}
	want := []int64{0, 0, 1_000_000, 750_000, 1_000_000}
	for i, c := range cases {
		if got := combinePM(c.in...); got != want[i] {
			t.Errorf("combinePM(%v) = %d, want %d", c.in, got, want[i])
		}
	}
}

// An unknown kind that slips past validation must stop the run, not be
// skipped silently.
func TestUnknownFaultKindPanics(t *testing.T) {
	w, err := NewWorld(faultTestConfig(nil), 1)
	if err != nil {
		t.Fatal(err)
	}
	w.cfg.Schedule.Faults = []faults.Fault{{Kind: "net.teleport"}}
	for name, fn := range map[string]func(){"start": func() { w.startFault(0) }, "end": func() { w.endFault(0) }} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "net.teleport") {
					t.Errorf("%s of an unknown kind: recovered %v, want a panic naming it", name, r)
				}
			}()
			fn()
		}()
	}
}
