package linearizability

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// ---- input/output shorthands ----

func create(n uint64) Input             { return Input{Kind: CreateNeuron, Neuron: n} }
func stim(n uint64, d int64) Input      { return Input{Kind: Stimulate, Neuron: n, Delta: d} }
func readN(n uint64) Input              { return Input{Kind: ReadNeuron, Neuron: n} }
func conn(p, q uint64, w int64) Input   { return Input{Kind: Connect, Pre: p, Post: q, Weight: w} }
func adjust(p, q uint64, d int64) Input { return Input{Kind: AdjustWeight, Pre: p, Post: q, Delta: d} }
func prune(p, q uint64) Input           { return Input{Kind: Prune, Pre: p, Post: q} }
func readS(p, q uint64) Input           { return Input{Kind: ReadSynapse, Pre: p, Post: q} }

var (
	ok       = Output{Status: StatusOK}
	notFound = Output{Status: StatusNotFound}
	already  = Output{Status: StatusAlreadyExists}
	rejected = Output{Status: StatusRejected}
	unknown  = Output{Status: StatusUnknown}
	absent   = Output{Status: StatusOK, Exists: false}
)

func val(v int64) Output  { return Output{Status: StatusOK, Value: v} }               // stimulate/adjust
func seen(v int64) Output { return Output{Status: StatusOK, Value: v, Exists: true} } // reads

// history records operations through a Recorder, as the simulator does.
type history struct{ r *Recorder }

func newHistory() *history { return &history{r: NewRecorder()} }

// op records a completed operation [call, ret]; out.Status == StatusUnknown
// makes it open.
func (h *history) op(client int, in Input, call, ret int64, out Output) *history {
	h.r.Return(h.r.Call(client, in, call), out, ret)
	return h
}

// innocent adds correct traffic on n/100 so that tests also prove that only
// the guilty key is reported.
func (h *history) innocent() *history {
	return h.op(3, create(100), 0, 5, ok).
		op(3, stim(100, 4), 6, 9, val(4)).
		op(4, readN(100), 7, 12, seen(4))
}

func (h *history) check(t *testing.T) Result {
	t.Helper()
	return Check(h.r.Operations(), 0)
}

func wantOK(t *testing.T, res Result) {
	t.Helper()
	if res.Verdict != VerdictOK || len(res.ViolatingKeys) != 0 {
		t.Fatalf("want ok, got %v", res)
	}
}

func wantViolation(t *testing.T, res Result, keys ...string) {
	t.Helper()
	if res.Verdict != VerdictViolation || !reflect.DeepEqual(res.ViolatingKeys, keys) {
		t.Fatalf("want violation on %v, got %v", keys, res)
	}
}

// ---- correct histories ----

func TestCorrectConcurrentHistoryIsOK(t *testing.T) {
	h := newHistory().
		// n/1: two overlapping stimulates; a read overlapping both sees the
		// intermediate value; the client-2 stimulate, inside client 1's
		// interval, linearizes after it.
		op(0, create(1), 0, 10, ok).
		op(1, stim(1, 5), 20, 40, val(5)).
		op(2, stim(1, 3), 25, 35, val(8)).
		op(0, readN(1), 30, 50, seen(5)).
		op(1, readN(1), 60, 70, seen(8)).
		op(2, create(1), 61, 65, already).
		// s/1/2: a read racing the connect sees it absent; adjust; prune;
		// reconnect with a weight above the bound, which is clamped.
		op(0, conn(1, 2, 7), 100, 110, ok).
		op(2, readS(1, 2), 101, 103, absent).
		op(1, adjust(1, 2, -2), 105, 120, val(5)).
		op(0, readS(1, 2), 121, 122, seen(5)).
		op(2, prune(1, 2), 130, 140, ok).
		op(0, adjust(1, 2, 1), 141, 142, notFound).
		op(0, readS(1, 2), 150, 160, absent).
		op(1, conn(1, 2, 1<<31), 170, 180, ok).
		op(1, readS(1, 2), 181, 182, seen(1<<30)).
		op(2, prune(1, 2), 183, 184, ok).
		op(2, prune(1, 2), 185, 186, notFound).
		// n/9 never created.
		op(3, readN(9), 0, 1, absent).
		op(3, stim(9, 1), 2, 3, notFound)
	res := h.check(t)
	wantOK(t, res)
	if res.Ops != 19 || res.Keys != 3 || res.MaxOpsPerKey != 11 || res.MaxOpsKey != "s/1/2" {
		t.Fatalf("stats: %v", res)
	}
}

func TestGeneratedHistoriesAreOK(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		cfg := benchConfig(seed)
		cfg.ops = 3000
		res := Check(generate(cfg), 0)
		wantOK(t, res)
		if res.Ops != 3000 || res.Keys < 90 || res.Keys > 100 {
			t.Fatalf("seed %d: unexpected shape %v", seed, res)
		}
	}
}

// ---- tampered histories ----

func TestTamperedHistoriesAreCaught(t *testing.T) {
	cases := []struct {
		name string
		key  string
		h    *history
	}{
		{"read of a value never written", "n/1", newHistory().
			op(0, create(1), 0, 10, ok).
			op(0, stim(1, 5), 20, 30, val(5)).
			op(1, readN(1), 40, 50, seen(6))},
		{"stimulate returning a stale sum", "n/1", newHistory().
			op(0, create(1), 0, 10, ok).
			op(0, stim(1, 5), 20, 30, val(5)).
			op(1, stim(1, 3), 40, 50, val(3))},
		{"stale read after a completed stimulate", "n/1", newHistory().
			op(0, create(1), 0, 10, ok).
			op(0, stim(1, 5), 20, 30, val(5)).
			op(1, readN(1), 40, 50, seen(0))},
		{"lost create", "n/1", newHistory().
			op(0, create(1), 0, 10, ok).
			op(1, readN(1), 20, 30, absent)},
		{"created twice", "n/1", newHistory().
			op(0, create(1), 0, 10, ok).
			op(1, create(1), 20, 30, ok)},
		{"stimulate of a missing neuron", "n/1", newHistory().
			op(0, stim(1, 3), 0, 10, val(3))},
		{"two concurrent connects both OK", "s/1/2", newHistory().
			op(0, conn(1, 2, 5), 0, 10, ok).
			op(1, conn(1, 2, 6), 5, 15, ok)},
		{"adjust after prune", "s/1/2", newHistory().
			op(0, conn(1, 2, 5), 0, 10, ok).
			op(0, prune(1, 2), 20, 30, ok).
			op(1, adjust(1, 2, 1), 40, 50, val(6))},
		{"weight not clamped", "s/1/2", newHistory().
			op(0, conn(1, 2, 1<<31), 0, 10, ok).
			op(1, readS(1, 2), 20, 30, seen(1<<31))},
		{"read says absent with a value", "s/1/2", newHistory().
			op(1, readS(1, 2), 20, 30, Output{Status: StatusOK, Value: 3})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantViolation(t, c.h.innocent().check(t), c.key)
		})
	}
}

// tamperFirst replaces the output of the first operation accepted by pick.
func tamperFirst(t *testing.T, ops []porcupine.Operation, pick func(Input, Output) bool, out func(Output) Output) string {
	t.Helper()
	for i, op := range ops {
		if pick(op.Input.(Input), op.Output.(Output)) {
			ops[i].Output = out(op.Output.(Output))
			return Key(op.Input.(Input))
		}
	}
	t.Fatal("nothing to tamper with")
	return ""
}

func TestTamperedGeneratedHistoryIsCaught(t *testing.T) {
	const impossible = 1<<35 + 7 // deltas are ±100: never reached
	ops := generate(benchConfig(42))
	k1 := tamperFirst(t, ops, func(in Input, out Output) bool {
		return in.Kind == ReadNeuron && out.Exists
	}, func(o Output) Output { o.Value = impossible; return o })
	k2 := tamperFirst(t, ops, func(in Input, out Output) bool {
		return in.Kind == AdjustWeight && out.Status == StatusOK
	}, func(o Output) Output { o.Value = impossible; return o })
	want := []string{k1, k2}
	if k2 < k1 {
		want = []string{k2, k1}
	}
	res := Check(ops, 0)
	wantViolation(t, res, want...)

	// Same verdict and keys on a rerun, and with a (generous) timeout.
	again := Check(ops, time.Minute)
	if !reflect.DeepEqual(exported(res), exported(again)) {
		t.Fatalf("not deterministic:\n%v\n%v", res, again)
	}
}

func exported(r Result) Result {
	r.info, r.model = porcupine.LinearizationInfo{}, porcupine.Model{}
	return r
}

// ---- unknown outcomes ----

func TestUnknownStimulate(t *testing.T) {
	base := func() *history {
		return newHistory().innocent().
			op(0, create(1), 0, 10, ok).
			op(0, stim(1, 5), 20, 30, unknown) // client timed out
	}
	t.Run("took effect", func(t *testing.T) {
		wantOK(t, base().op(1, readN(1), 100, 110, seen(5)).op(1, readN(1), 120, 130, seen(5)).check(t))
	})
	t.Run("did not take effect", func(t *testing.T) {
		wantOK(t, base().op(1, readN(1), 100, 110, seen(0)).op(1, readN(1), 120, 130, seen(0)).check(t))
	})
	t.Run("took effect late", func(t *testing.T) {
		wantOK(t, base().op(1, readN(1), 100, 110, seen(0)).op(1, readN(1), 120, 130, seen(5)).check(t))
	})
	t.Run("later stimulate includes it", func(t *testing.T) {
		wantOK(t, base().op(1, stim(1, 3), 100, 110, val(8)).check(t))
	})
	t.Run("cannot be undone", func(t *testing.T) {
		wantViolation(t, base().op(1, readN(1), 100, 110, seen(5)).op(1, readN(1), 120, 130, seen(0)).check(t), "n/1")
	})
	t.Run("cannot explain an impossible value", func(t *testing.T) {
		wantViolation(t, base().op(1, readN(1), 100, 110, seen(7)).check(t), "n/1")
	})
	t.Run("cannot take effect twice", func(t *testing.T) {
		wantViolation(t, base().op(1, readN(1), 100, 110, seen(10)).check(t), "n/1")
	})
	t.Run("cannot take effect before its call", func(t *testing.T) {
		wantViolation(t, newHistory().innocent().
			op(0, create(1), 0, 10, ok).
			op(1, readN(1), 20, 30, seen(5)).
			op(0, stim(1, 5), 40, 50, unknown).check(t), "n/1")
	})
}

func TestUnknownConnectAndCreate(t *testing.T) {
	// An unknown connect followed by a successful one: it "did not happen"
	// (or failed with AlreadyExists after it).
	wantOK(t, newHistory().
		op(0, conn(1, 2, 5), 0, 10, unknown).
		op(1, conn(1, 2, 6), 20, 30, ok).
		op(1, readS(1, 2), 40, 50, seen(6)).check(t))
	// ... or it did, and created the synapse with its weight.
	wantOK(t, newHistory().
		op(0, conn(1, 2, 5), 0, 10, unknown).
		op(1, conn(1, 2, 6), 20, 30, already).
		op(1, readS(1, 2), 40, 50, seen(5)).check(t))
	// An unknown create explains a later successful stimulate.
	wantOK(t, newHistory().
		op(0, create(1), 0, 10, unknown).
		op(1, stim(1, 3), 20, 30, val(3)).check(t))
	// But not a weight nobody wrote.
	wantViolation(t, newHistory().
		op(0, conn(1, 2, 5), 0, 10, unknown).
		op(1, readS(1, 2), 40, 50, seen(6)).check(t), "s/1/2")
}

func TestPendingCallCountsAsUnknown(t *testing.T) {
	for _, after := range []Output{seen(5), seen(0)} {
		r := NewRecorder()
		r.Return(r.Call(0, create(1), 0), ok, 10)
		pending := r.Call(0, stim(1, 5), 20) // never returns
		r.Return(r.Call(1, readN(1), 100), after, 110)
		ops := r.Operations()
		if ops[pending].Return != Open || ops[pending].Output.(Output).Status != StatusUnknown {
			t.Fatalf("pending op not open: %+v", ops[pending])
		}
		wantOK(t, Check(ops, 0))
	}
}

// ---- rejections ----

func TestRejectionAllowedForWritesInAnyState(t *testing.T) {
	wantOK(t, newHistory().
		op(0, conn(1, 2, 5), 0, 10, rejected). // absent
		op(0, readS(1, 2), 11, 12, absent).
		op(0, adjust(1, 2, 1), 13, 14, rejected).
		op(0, prune(1, 2), 15, 16, rejected).
		op(0, conn(1, 2, 5), 20, 30, ok).
		op(1, conn(1, 2, 9), 40, 50, rejected). // present
		op(1, adjust(1, 2, 1), 51, 52, rejected).
		op(1, prune(1, 2), 53, 54, rejected).
		op(1, readS(1, 2), 60, 70, seen(5)).
		op(2, create(1), 0, 1, rejected).
		op(2, stim(1, 1), 2, 3, rejected).
		op(2, create(1), 4, 5, ok).
		op(2, create(1), 6, 7, rejected).
		op(2, stim(1, 1), 8, 9, rejected).
		op(2, readN(1), 10, 11, seen(0)).check(t))
}

func TestRejectedConnectHasNoEffect(t *testing.T) {
	wantViolation(t, newHistory().innocent().
		op(0, conn(1, 2, 5), 0, 10, rejected).
		op(1, readS(1, 2), 20, 30, seen(5)).check(t), "s/1/2")
}

func TestReadsAreNeverRejected(t *testing.T) {
	for _, in := range []Input{readN(1), readS(1, 2)} {
		wantViolation(t, newHistory().innocent().op(0, in, 0, 10, rejected).check(t), Key(in))
		wantViolation(t, newHistory().innocent().op(0, in, 0, 10, notFound).check(t), Key(in))
	}
}

// ---- bounds ----

func TestBounds(t *testing.T) {
	small := Bounds{PotentialMin: -10, PotentialMax: 10, WeightMin: -5, WeightMax: 5}
	h := newHistory().
		op(0, create(1), 0, 1, ok).
		op(0, stim(1, 100), 2, 3, val(10)).
		op(0, stim(1, -100), 4, 5, val(-10)).
		op(1, conn(1, 2, 9), 0, 1, ok).
		op(1, adjust(1, 2, -20), 2, 3, val(-5))
	wantOK(t, CheckBounds(small, h.r.Operations(), 0))
	wantViolation(t, Check(h.r.Operations(), 0), "n/1", "s/1/2")

	// Saturating addition: no wrap-around at the int64 edge.
	wide := Bounds{PotentialMin: math.MinInt64, PotentialMax: math.MaxInt64, WeightMin: -1, WeightMax: 1}
	wantOK(t, CheckBounds(wide, newHistory().
		op(0, create(1), 0, 1, ok).
		op(0, stim(1, math.MaxInt64), 2, 3, val(math.MaxInt64)).
		op(0, stim(1, math.MaxInt64), 4, 5, val(math.MaxInt64)).r.Operations(), 0))

	defer func() {
		if recover() == nil {
			t.Fatal("inverted bounds accepted")
		}
	}()
	Model(Bounds{PotentialMin: 1, PotentialMax: 0, WeightMin: 0, WeightMax: 1})
}

// ---- porcupine plumbing ----

func TestEventHistories(t *testing.T) {
	m := Model(Bounds{})
	ev := func(client, id int, kind porcupine.EventKind, v any) porcupine.Event {
		return porcupine.Event{ClientId: client, Kind: kind, Value: v, Id: id}
	}
	good := []porcupine.Event{
		ev(0, 0, porcupine.CallEvent, create(1)),
		ev(1, 1, porcupine.CallEvent, conn(1, 2, 3)),
		ev(0, 0, porcupine.ReturnEvent, ok),
		ev(1, 1, porcupine.ReturnEvent, ok),
		ev(0, 2, porcupine.CallEvent, stim(1, 2)),
		ev(1, 3, porcupine.CallEvent, readS(1, 2)),
		ev(0, 2, porcupine.ReturnEvent, val(2)),
		ev(1, 3, porcupine.ReturnEvent, seen(3)),
	}
	if !porcupine.CheckEvents(m, good) {
		t.Fatal("good event history rejected")
	}
	bad := append([]porcupine.Event(nil), good...)
	bad[7] = ev(1, 3, porcupine.ReturnEvent, seen(4))
	if porcupine.CheckEvents(m, bad) {
		t.Fatal("bad event history accepted")
	}
}

func TestForeignOperationsAreViolations(t *testing.T) {
	ops := []porcupine.Operation{{Input: "put x", Output: "ok", Call: 0, Return: 1}}
	wantViolation(t, Check(ops, 0), "?")
}

func TestDescriptions(t *testing.T) {
	m := Model(Bounds{})
	for _, c := range []struct {
		in   Input
		out  Output
		want string
	}{
		{stim(7, 3), val(12), "stimulate(n7, +3) -> 12"},
		{stim(7, -3), notFound, "stimulate(n7, -3) -> not-found"},
		{create(7), already, "create(n7) -> already-exists"},
		{readN(7), absent, "read(n7) -> absent"},
		{readN(7), seen(4), "read(n7) -> 4"},
		{conn(1, 2, 5), ok, "connect(n1->n2, w=5) -> ok"},
		{adjust(1, 2, -1), val(4), "adjust(n1->n2, -1) -> 4"},
		{prune(1, 2), rejected, "prune(n1->n2) -> rejected"},
		{readS(1, 2), unknown, "read-synapse(n1->n2) -> unknown"},
	} {
		if got := m.DescribeOperation(c.in, c.out); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
	if got := m.DescribeState(state{exists: true, value: 3}); got != "value 3" {
		t.Errorf("state: %q", got)
	}
	if got := m.DescribeState(m.Init()); got != "absent" {
		t.Errorf("init state: %q", got)
	}
	if Key(readN(7)) != "n/7" || Key(readS(1, 22)) != "s/1/22" || Key(Input{}) != "?" {
		t.Error("keys")
	}
}

func TestWriteHTML(t *testing.T) {
	dir := t.TempDir()
	for name, h := range map[string]*history{
		"ok":        newHistory().innocent(),
		"violation": newHistory().innocent().op(0, readN(1), 0, 1, seen(3)),
	} {
		path := filepath.Join(dir, name+".html")
		if err := h.check(t).WriteHTML(path); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// json.Marshal escapes '>' in the embedded data.
		if len(b) == 0 || !strings.Contains(string(b), "stimulate(n100, +4) -\\u003e 4") {
			t.Fatalf("%s: HTML (%d bytes) lacks the operation description", name, len(b))
		}
	}
	if err := (Result{}).WriteHTML(filepath.Join(dir, "zero.html")); err == nil {
		t.Fatal("zero Result wrote HTML")
	}
}

// ---- recorder ----

func TestRecorder(t *testing.T) {
	r := NewRecorder()
	if k, n := r.MaxOpsPerKey(); k != "" || n != 0 || r.Len() != 0 {
		t.Fatal("empty recorder")
	}
	a := r.Call(0, create(2), 0)
	b := r.Call(1, create(1), 0)
	r.Call(1, readN(2), 5) // pending
	r.Call(2, readN(1), 5) // pending
	r.Return(a, ok, 3)
	r.Return(b, unknown, 4)
	if k, n := r.MaxOpsPerKey(); k != "n/1" || n != 2 || r.Len() != 4 {
		t.Fatalf("MaxOpsPerKey = %q, %d; Len = %d", k, n, r.Len())
	}
	ops := r.Operations()
	if ops[a].Return != 3 || ops[b].Return != Open || ops[b].Output.(Output).Status != StatusUnknown || ops[b].Metadata != b {
		t.Fatalf("ops: %+v", ops)
	}
	ops[a].Return = 99
	if r.Operations()[a].Return != 3 {
		t.Fatal("Operations does not return a copy")
	}

	for name, misuse := range map[string]func(){
		"double return":      func() { r.Return(a, ok, 5) },
		"unknown op":         func() { r.Return(OpID(99), ok, 5) },
		"return before call": func() { r.Return(r.Call(0, create(3), 10), ok, 9) },
		"invalid kind":       func() { r.Call(0, Input{}, 0) },
		"invalid status":     func() { r.Return(r.Call(0, create(3), 10), Output{}, 11) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			misuse()
		}()
	}
}

// ---- benchmark ----

func BenchmarkCheck10kOps100Keys(b *testing.B) {
	ops := generate(benchConfig(7))
	if res := Check(ops, 0); res.Verdict != VerdictOK || res.Keys != 100 {
		b.Fatalf("generated history: %v", res)
	}
	for b.Loop() {
		if res := Check(ops, 0); res.Verdict != VerdictOK {
			b.Fatal(res)
		}
	}
}

// hopeless adds a key on which porcupine cannot finish: 40 concurrent
// unknown stimulates (2^40 subsets) before a read of an impossible value.
func (h *history) hopeless() *history {
	h.op(0, create(2), 0, 1, ok)
	for i := range 40 {
		h.op(10+i, stim(2, 1<<i), 10, 20, unknown)
	}
	return h.op(1, readN(2), 1000, 1010, seen(-1))
}

func TestTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	if res := Check(newHistory().hopeless().r.Operations(), timeout); res.Verdict != VerdictUnknown || res.ViolatingKeys != nil {
		t.Fatalf("want unknown, got %v", res)
	}
	// A violation found before the timeout is still reported, and only the
	// keys proven to violate are listed (n/2 was merely cut short).
	res := Check(newHistory().hopeless().op(0, readN(1), 0, 1, seen(3)).r.Operations(), timeout)
	wantViolation(t, res, "n/1")
}

func TestDecay(t *testing.T) {
	const n = 5
	mk := func(readValue int64) []porcupine.Operation {
		r := NewRecorder()
		c := r.Call(1, Input{Kind: CreateNeuron, Neuron: n}, 0)
		r.Return(c, Output{Status: StatusOK}, 1)
		s := r.Call(1, Input{Kind: Stimulate, Neuron: n, Delta: 1000}, 2)
		r.Return(s, Output{Status: StatusOK, Value: 1000}, 3)
		d := r.Call(2, Input{Kind: Decay, Neuron: n, Delta: 500_000}, 4)
		r.Return(d, Output{Status: StatusOK}, Open)
		rd := r.Call(1, Input{Kind: ReadNeuron, Neuron: n}, 5)
		r.Return(rd, Output{Status: StatusOK, Exists: true, Value: readValue}, 6)
		return r.Operations()
	}
	if res := Check(mk(500), 0); res.Verdict != VerdictOK {
		t.Fatalf("a read after the decay took effect: %v", res)
	}
	if res := Check(mk(1000), 0); res.Verdict != VerdictOK {
		t.Fatalf("an open decay may take effect after the read: %v", res)
	}
	if res := Check(mk(700), 0); res.Verdict != VerdictViolation {
		t.Fatalf("a value no decay explains must be caught: %v", res)
	}
	if decay(-1001, 500_000) != -500 {
		t.Fatalf("decay must round toward zero: %d", decay(-1001, 500_000))
	}
}
