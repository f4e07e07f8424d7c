package netsim

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"territory/model"
	"territory/sim/kernel"
)

func newNet(seed uint64, def LinkConfig) (*kernel.Kernel, *Network) {
	k := kernel.New(seed, 0)
	return k, New(k, k.Stream("net"), def)
}

func run(t *testing.T, k *kernel.Kernel) {
	t.Helper()
	// A horizon far beyond any delay; Run leaves the clock there.
	if err := k.Run(k.NowUs() + 1_000_000_000); err != nil {
		t.Fatal(err)
	}
}

func TestLatencyBounds(t *testing.T) {
	k, n := newNet(1, LinkConfig{LatencyMinUs: 100, LatencyMaxUs: 500})
	lo, hi := int64(1<<62), int64(-1)
	const sends = 20_000
	got := 0
	for i := range sends {
		sent := int64(i)
		k.At(sent, func() {
			n.Send(1, 2, func() {
				d := k.NowUs() - sent
				lo, hi = min(lo, d), max(hi, d)
				got++
			})
		})
	}
	run(t, k)
	if got != sends {
		t.Fatalf("delivered %d of %d on a lossless link", got, sends)
	}
	if lo < 100 || hi > 500 {
		t.Fatalf("latency out of bounds: [%d, %d]", lo, hi)
	}
	if lo > 102 || hi < 498 {
		t.Fatalf("latency does not cover its range: [%d, %d]", lo, hi)
	}
	if s := n.Stats(); s != (Stats{Sent: sends, Delivered: sends}) {
		t.Fatalf("stats %+v", s)
	}
}

func TestFixedLatencyIsFIFO(t *testing.T) {
	k, n := newNet(1, LinkConfig{LatencyMinUs: 300, LatencyMaxUs: 300})
	var order []int
	var last int64
	for i := range 100 {
		k.At(int64(i/3), func() {
			n.Send(1, 2, func() { order = append(order, i); last = k.NowUs() })
		})
	}
	run(t, k)
	if !slices.IsSorted(order) || len(order) != 100 {
		t.Fatalf("order %v", order)
	}
	if last != 33+300 {
		t.Fatalf("last delivery at %d", last)
	}
}

func TestPartitions(t *testing.T) {
	k, n := newNet(1, LinkConfig{LatencyMinUs: 10, LatencyMaxUs: 10})
	got := map[string]int{}
	send := func(from, to model.HostID) {
		n.Send(from, to, func() { got[fmt.Sprintf("%d>%d", from, to)]++ })
	}
	all := []model.HostID{1, 2, 3, 4}
	sendAll := func() {
		for _, f := range all {
			for _, t := range all {
				if f != t {
					send(f, t)
				}
			}
		}
	}
	n.Partition([]model.HostID{1, 2}, []model.HostID{3})
	n.PartitionOneWay([]model.HostID{4}, []model.HostID{1})
	sendAll()
	run(t, k)
	want := map[string]int{
		"1>2": 1, "2>1": 1, "1>4": 1, "2>4": 1, "4>2": 1,
		"3>4": 1, "4>3": 1,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("delivered %v\nwant %v", got, want)
	}
	for _, c := range []struct {
		from, to model.HostID
		want     bool
	}{{1, 3, true}, {3, 1, true}, {2, 3, true}, {3, 2, true}, {4, 1, true}, {1, 4, false}, {1, 2, false}, {3, 4, false}} {
		if n.Blocked(c.from, c.to) != c.want {
			t.Errorf("Blocked(%d,%d) = %v", c.from, c.to, !c.want)
		}
	}
	if s := n.Stats(); s != (Stats{Sent: 12, Delivered: 7, Blocked: 5}) {
		t.Fatalf("stats %+v", s)
	}

	// A message in flight when the partition starts is still delivered.
	clear(got)
	n.Heal()
	send(1, 3)
	n.Partition([]model.HostID{1}, []model.HostID{3})
	send(1, 3)
	run(t, k)
	if got["1>3"] != 1 {
		t.Fatalf("in-flight message: delivered %d, want 1", got["1>3"])
	}

	// Heal lets everything through; Isolate cuts one host from the rest.
	clear(got)
	n.Heal()
	if n.Blocked(1, 3) || n.Blocked(4, 1) {
		t.Fatal("heal left a partition")
	}
	n.Isolate(2, all)
	sendAll()
	run(t, k)
	if len(got) != 6 || got["1>2"]+got["2>1"]+got["2>3"]+got["3>2"] != 0 {
		t.Fatalf("isolate: %v", got)
	}
	if n.Blocked(2, 2) {
		t.Fatal("a host is never partitioned from itself")
	}
}

func TestLinkOverrideIsDirectional(t *testing.T) {
	k, n := newNet(1, LinkConfig{LatencyMinUs: 10, LatencyMaxUs: 10})
	n.SetLink(1, 2, LinkConfig{LatencyMinUs: 700, LatencyMaxUs: 700})
	var at12, at21 int64
	n.Send(1, 2, func() { at12 = k.NowUs() })
	n.Send(2, 1, func() { at21 = k.NowUs() })
	run(t, k)
	if at12 != 700 || at21 != 10 {
		t.Fatalf("1>2 at %d (want 700), 2>1 at %d (want 10)", at12, at21)
	}
	if n.Link(1, 2).LatencyMinUs != 700 || n.Link(2, 1).LatencyMinUs != 10 {
		t.Fatal("Link reports the wrong config")
	}
	n.SetLink(1, 2, LinkConfig{DropPM: 1_000_000})
	n.Send(1, 2, func() { t.Fatal("a message crossed a 100% lossy link") })
	run(t, k)
	n.Heal()
	start := k.NowUs()
	n.Send(1, 2, func() { at12 = k.NowUs() - start })
	run(t, k)
	if at12 != 10 {
		t.Fatalf("after heal 1>2 took %d, want the default 10", at12)
	}
	n.SetDefault(LinkConfig{LatencyMinUs: 50, LatencyMaxUs: 50})
	n.SetLink(1, 2, LinkConfig{LatencyMinUs: 1, LatencyMaxUs: 1})
	n.ClearLink(1, 2)
	start = k.NowUs()
	n.Send(1, 2, func() { at12 = k.NowUs() - start })
	run(t, k)
	if at12 != 50 || n.Default().LatencyMaxUs != 50 {
		t.Fatalf("new default: took %d", at12)
	}
}

func TestDropAndDuplicateRates(t *testing.T) {
	k, n := newNet(99, LinkConfig{LatencyMinUs: 1, LatencyMaxUs: 1000, DropPM: 100_000, DuplicatePM: 50_000})
	const sends = 100_000
	delivered := 0
	for range sends {
		n.Send(1, 2, func() { delivered++ })
	}
	run(t, k)
	s := n.Stats()
	// 10% of 100k dropped (σ≈95), 5% of the 90k survivors duplicated (σ≈65).
	if s.Dropped < 9_500 || s.Dropped > 10_500 {
		t.Fatalf("dropped %d, want ~10000", s.Dropped)
	}
	if s.Duplicated < 4_100 || s.Duplicated > 4_900 {
		t.Fatalf("duplicated %d, want ~4500", s.Duplicated)
	}
	if s.Sent != sends || s.Blocked != 0 || s.Delivered != int64(delivered) || s.Delivered != sends-s.Dropped+s.Duplicated {
		t.Fatalf("stats do not add up: %+v delivered %d", s, delivered)
	}
}

func TestReorderOvertakes(t *testing.T) {
	cfg := LinkConfig{LatencyMinUs: 100, LatencyMaxUs: 100, ReorderPM: 100_000}
	k, n := newNet(5, cfg)
	var order []int
	maxDelay := int64(0)
	for i := range 10_000 {
		sent := int64(i)
		k.At(sent, func() {
			n.Send(1, 2, func() {
				order = append(order, i)
				maxDelay = max(maxDelay, k.NowUs()-sent)
			})
		})
	}
	run(t, k)
	if len(order) != 10_000 {
		t.Fatalf("delivered %d", len(order))
	}
	overtaken := 0
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			overtaken++
		}
	}
	// ~1000 messages are delayed by up to 1000 µs: each is overtaken.
	if overtaken < 800 || overtaken > 1_100 {
		t.Fatalf("%d inversions, want ~1000", overtaken)
	}
	if maxDelay > 100+10*100 || maxDelay < 1_000 {
		t.Fatalf("max delay %d, want in [1000, 1100]", maxDelay)
	}
}

func TestSpikeAddsFixedDelay(t *testing.T) {
	k, n := newNet(5, LinkConfig{LatencyMinUs: 40, LatencyMaxUs: 40, SpikePM: 1_000_000, SpikeUs: 5_000})
	var at int64
	n.Send(1, 2, func() { at = k.NowUs() })
	run(t, k)
	if at != 5_040 {
		t.Fatalf("spiked delivery at %d, want 5040", at)
	}
}

func trace(seed uint64) []string {
	k := kernel.New(seed, 0)
	n := New(k, k.Stream("net"), LinkConfig{LatencyMinUs: 50, LatencyMaxUs: 900, DropPM: 50_000, DuplicatePM: 50_000, ReorderPM: 50_000, SpikePM: 10_000, SpikeUs: 20_000})
	var out []string
	for i := range 2_000 {
		from, to := model.HostID(i%5), model.HostID((i+1)%5)
		k.At(int64(i*7), func() {
			n.Send(from, to, func() { out = append(out, fmt.Sprintf("%d:%d>%d#%d", k.NowUs(), from, to, i)) })
		})
		if i == 1000 {
			k.At(int64(i*7), func() { n.Partition([]model.HostID{0}, []model.HostID{1}) })
		}
	}
	_ = k.Run(1 << 62)
	out = append(out, fmt.Sprintf("%+v", n.Stats()))
	return out
}

func TestDeterminism(t *testing.T) {
	a, b := trace(11), trace(11)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different delivery traces")
	}
	if reflect.DeepEqual(a, trace(12)) {
		t.Fatal("different seeds, identical traces")
	}
	if len(a) < 1_500 {
		t.Fatalf("only %d deliveries", len(a))
	}
}

func TestInvalidConfigPanics(t *testing.T) {
	bad := []LinkConfig{
		{LatencyMinUs: 5, LatencyMaxUs: 4},
		{LatencyMinUs: -1},
		{DropPM: 1_000_001},
		{ReorderPM: -1},
		{SpikeUs: -1},
	}
	for _, c := range bad {
		if c.Validate() == nil {
			t.Errorf("%+v validated", c)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SetDefault(%+v) did not panic", c)
				}
			}()
			_, n := newNet(1, LinkConfig{})
			n.SetDefault(c)
		}()
	}
}

func TestSendDoesNotAllocate(t *testing.T) {
	k, n := newNet(1, LinkConfig{LatencyMinUs: 1, LatencyMaxUs: 10, DuplicatePM: 100_000})
	n.SetLink(1, 2, LinkConfig{LatencyMinUs: 1, LatencyMaxUs: 10})
	n.PartitionOneWay([]model.HostID{3}, []model.HostID{1})
	deliver := func() {}
	for range 1000 { // warm the pool and the kernel queue
		n.Send(1, 2, deliver)
		n.Send(2, 1, deliver)
	}
	run(t, k)
	allocs := testing.AllocsPerRun(1000, func() {
		n.Send(1, 2, deliver)
		n.Send(2, 1, deliver)
		n.Send(3, 1, deliver)
		_ = k.Run(k.NowUs() + 20)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per send", allocs)
	}
}

func BenchmarkSend(b *testing.B) {
	k, n := newNet(1, LinkConfig{LatencyMinUs: 100, LatencyMaxUs: 1000, DropPM: 1000, DuplicatePM: 1000})
	deliver := func() {}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		n.Send(model.HostID(i&7), model.HostID((i+1)&7), deliver)
		if i&1023 == 1023 {
			_ = k.Run(k.NowUs() + 1000)
		}
	}
	_ = k.Run(1 << 62)
}
