package kernel

import "testing"

func TestEventsRunInTimeThenSequenceOrder(t *testing.T) {
	k := New(1, 0)
	var got []int
	k.At(20, func() { got = append(got, 3) })
	k.At(10, func() { got = append(got, 1) })
	k.At(10, func() { got = append(got, 2) })
	k.At(30, func() {
		got = append(got, 4)
		k.After(0, func() { got = append(got, 5) })
	})
	if err := k.Run(100); err != nil {
		t.Fatal(err)
	}
	want := []int{1, 2, 3, 4, 5}
	if len(got) != len(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v want %v", got, want)
		}
	}
	if k.NowUs() != 100 {
		t.Fatalf("clock should advance to the horizon, got %d", k.NowUs())
	}
}

func TestRunStopsAtHorizonAndKeepsLaterEvents(t *testing.T) {
	k := New(1, 0)
	ran := false
	k.At(50, func() { ran = true })
	if err := k.Run(40); err != nil {
		t.Fatal(err)
	}
	if ran || k.Pending() != 1 {
		t.Fatalf("event after the horizon ran=%v pending=%d", ran, k.Pending())
	}
	if err := k.Run(60); err != nil || !ran {
		t.Fatalf("event not run after extending the horizon: %v", err)
	}
}

func TestStepBoundReportsLivelock(t *testing.T) {
	k := New(1, 100)
	var loop func()
	loop = func() { k.After(0, loop) }
	k.After(0, loop)
	if err := k.Run(10); err == nil {
		t.Fatal("a self-rescheduling event must hit the step bound")
	}
}

func TestSchedulingInThePastPanics(t *testing.T) {
	k := New(1, 0)
	k.At(10, func() {})
	_ = k.Run(10)
	defer func() {
		if recover() == nil {
			t.Fatal("expected a panic")
		}
	}()
	k.At(5, func() {})
}

func TestStreamsAreIndependentAndReproducible(t *testing.T) {
	a1 := New(7, 0).Stream("network")
	a2 := New(7, 0).Stream("network")
	b := New(7, 0).Stream("disk")
	c := New(8, 0).Stream("network")
	same, diffB, diffC := true, false, false
	for i := 0; i < 100; i++ {
		x, y := a1.Uint64(), a2.Uint64()
		if x != y {
			same = false
		}
		if x != b.Uint64() {
			diffB = true
		}
		if x != c.Uint64() {
			diffC = true
		}
	}
	if !same || !diffB || !diffC {
		t.Fatalf("same=%v diffStream=%v diffSeed=%v", same, diffB, diffC)
	}
}

func TestChanceIsRoughlyCalibrated(t *testing.T) {
	r := NewRand(3)
	hits := 0
	for i := 0; i < 100_000; i++ {
		if r.Chance(250_000) {
			hits++
		}
	}
	if hits < 24_000 || hits > 26_000 {
		t.Fatalf("25%% chance gave %d/100000", hits)
	}
}

func BenchmarkKernelEvents(b *testing.B) {
	k := New(1, 0)
	r := NewRand(1)
	n := 0
	var tick func()
	tick = func() {
		n++
		if n < b.N {
			k.After(r.Int63n(1000), tick)
		}
	}
	for i := 0; i < 64; i++ {
		k.After(r.Int63n(1000), tick)
	}
	b.ResetTimer()
	if err := k.Run(1 << 62); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(k.Steps())/b.Elapsed().Seconds(), "events/s")
}
