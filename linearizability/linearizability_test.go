package linearizability

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// ---- input/output shorthands: neuron n lives in subgraph n%4 ----

func sg(n uint64) uint32 { return uint32(n % 4) }

func create(n uint64) Input { return Input{Kind: CreateNeuron, Neuron: n, Subgraph: sg(n)} }
func stim(n uint64, d int64) Input {
	return Input{Kind: Stimulate, Neuron: n, Delta: d, Subgraph: sg(n)}
}
func readN(n uint64) Input { return Input{Kind: ReadNeuron, Neuron: n, Subgraph: sg(n)} }
func conn(p, q uint64, w int64) Input {
	return Input{Kind: Connect, Pre: p, Post: q, Weight: w, Subgraph: sg(p), PostSubgraph: sg(q)}
}
func adjust(p, q uint64, d int64) Input {
	return Input{Kind: AdjustWeight, Pre: p, Post: q, Delta: d, Subgraph: sg(p), PostSubgraph: sg(q)}
}
func prune(p, q uint64) Input {
	return Input{Kind: Prune, Pre: p, Post: q, Subgraph: sg(p), PostSubgraph: sg(q)}
}
func readS(p, q uint64) Input {
	return Input{Kind: ReadSynapse, Pre: p, Post: q, Subgraph: sg(p), PostSubgraph: sg(q)}
}
func decayOf(s uint32, hbMs, recMs int64) Input {
	return Input{Kind: Decay, Subgraph: s, HeartbeatMs: hbMs, RecoveryMs: recMs}
}

var (
	ok       = Output{Status: StatusOK}
	notFound = Output{Status: StatusNotFound}
	noNeuron = Output{Status: StatusNotFound, Reason: ReasonNoSuchNeuron} // stimulate of a missing neuron
	already  = Output{Status: StatusAlreadyExists}
	unknown  = Output{Status: StatusUnknown}
	absent   = Output{Status: StatusOK, Exists: false}
)

func rejected(r Reason) Output { return Output{Status: StatusRejected, Reason: r} }
func val(v int64) Output       { return Output{Status: StatusOK, Value: v, Exists: true} } // stimulate/adjust/connect/reads

var testCfg = Config{Policy: Policy{Epoch: 1, MaxOutDegree: 2, MaxInDegree: 2, DecayPerSecondPM: 100_000}}

// history records operations through a Recorder, as the simulator does.
type history struct{ r *Recorder }

func newHistory() *history { return &history{r: NewRecorder()} }

// op records a completed operation [call, ret]; out.Status == StatusUnknown
// makes it open.
func (h *history) op(client int, in Input, call, ret int64, out Output) *history {
	h.r.Return(h.r.Call(client, in, call), out, ret)
	return h
}

// innocent adds correct traffic on n/101 (subgraph 1) so that tests also
// prove that only the guilty subgraph is reported.
func (h *history) innocent() *history {
	return h.op(3, create(101), 0, 5, ok).
		op(3, stim(101, 4), 6, 9, val(4)).
		op(4, readN(101), 7, 12, val(4))
}

func (h *history) check(t *testing.T) Result {
	t.Helper()
	return Check(testCfg, h.r.Operations(), 0)
}

func wantOK(t *testing.T, res Result) {
	t.Helper()
	if res.Verdict != VerdictOK {
		t.Fatalf("want ok, got %v", res)
	}
}

func wantViolation(t *testing.T, res Result, keys ...string) {
	t.Helper()
	if res.Verdict != VerdictViolation || strings.Join(res.ViolatingKeys, ",") != strings.Join(keys, ",") {
		t.Fatalf("want violation on %v, got %v", keys, res)
	}
}

// ---- the sequential specification ----

func TestCorrectConcurrentHistoryIsOK(t *testing.T) {
	h := newHistory().innocent().
		op(0, create(4), 0, 10, ok).
		op(1, create(8), 0, 10, ok).
		op(0, stim(4, 5), 11, 20, val(7)).
		op(1, stim(4, 2), 12, 18, val(2)). // linearized before the +5
		op(2, readN(4), 19, 30, val(7)).
		op(0, conn(4, 8, 70), 31, 40, val(70)).
		op(1, adjust(4, 8, -5), 41, 50, val(65)).
		op(2, readS(4, 8), 45, 55, val(65)).
		op(0, prune(4, 8), 56, 60, ok).
		op(1, readS(4, 8), 61, 62, absent).
		op(2, stim(12, 1), 61, 62, noNeuron).
		op(2, adjust(4, 8, 1), 63, 64, notFound).
		op(2, create(4), 63, 64, already)
	wantOK(t, h.check(t))
}

// Only a connect may be rejected, and only for a reason that holds in the
// state it is linearized in.
func TestRejectionOnlyForConnectForAReasonThatHolds(t *testing.T) {
	base := func() *history {
		return newHistory().innocent().
			op(0, create(4), 0, 1, ok).
			op(0, create(8), 2, 3, ok)
	}
	for _, tc := range []struct {
		name  string
		h     *history
		legal bool
	}{
		{"stimulate rejected", base().op(0, stim(4, 1), 4, 5, rejected(ReasonNoSuchNeuron)), false},
		{"create rejected", base().op(0, create(12), 4, 5, rejected(ReasonNone)), false},
		{"prune rejected", base().op(0, prune(4, 8), 4, 5, rejected(ReasonNone)), false},
		{"read rejected", base().op(0, readN(4), 4, 5, rejected(ReasonNone)), false},
		{"not-found turned into rejected", base().op(0, adjust(4, 8, 1), 4, 5, rejected(ReasonNone)), false},
		{"already-exists turned into rejected", base().op(0, conn(4, 8, 1), 4, 5, val(1)).op(0, conn(4, 8, 1), 6, 7, rejected(ReasonNone)), false},
		{"no such neuron, but both exist", base().op(0, conn(4, 8, 1), 4, 5, rejected(ReasonNoSuchNeuron)), false},
		{"no such neuron, post missing", base().op(0, conn(4, 12, 1), 4, 5, rejected(ReasonNoSuchNeuron)), true},
		{"max out-degree below the limit", base().op(0, conn(4, 8, 1), 4, 5, rejected(ReasonMaxOutDegree)), false},
		{"cross subgraph within one", base().op(0, conn(4, 8, 1), 4, 5, rejected(ReasonCrossSubgraph)), false},
		{"cross subgraph", base().op(0, conn(4, 5, 1), 4, 5, rejected(ReasonCrossSubgraph)), true},
		{"degree rejection relabelled no-such-neuron", base().op(0, create(12), 4, 5, ok).op(0, create(16), 4, 5, ok).
			op(0, conn(4, 8, 1), 6, 7, val(1)).op(0, conn(4, 12, 1), 8, 9, val(1)).
			op(0, conn(4, 16, 1), 10, 11, rejected(ReasonNoSuchNeuron)), false},
		{"max out-degree at the limit", base().op(0, create(12), 4, 5, ok).op(0, create(16), 4, 5, ok).
			op(0, conn(4, 8, 1), 6, 7, val(1)).op(0, conn(4, 12, 1), 8, 9, val(1)).
			op(0, conn(4, 16, 1), 10, 11, rejected(ReasonMaxOutDegree)), true},
		{"max in-degree at the limit", base().op(0, create(12), 4, 5, ok).op(0, create(16), 4, 5, ok).
			op(0, conn(12, 8, 1), 6, 7, val(1)).op(0, conn(16, 8, 1), 8, 9, val(1)).
			op(0, conn(4, 8, 1), 10, 11, rejected(ReasonMaxInDegree)), true},
		// A prune frees a slot: after it the limit no longer holds.
		{"max out-degree after a prune", base().op(0, create(12), 4, 5, ok).op(0, create(16), 4, 5, ok).
			op(0, conn(4, 8, 1), 6, 7, val(1)).op(0, conn(4, 12, 1), 8, 9, val(1)).op(0, prune(4, 8), 10, 11, ok).
			op(0, conn(4, 16, 1), 12, 13, rejected(ReasonMaxOutDegree)), false},
		{"connect after a prune", base().op(0, create(12), 4, 5, ok).op(0, create(16), 4, 5, ok).
			op(0, conn(4, 8, 1), 6, 7, val(1)).op(0, conn(4, 12, 1), 8, 9, val(1)).op(0, prune(4, 8), 10, 11, ok).
			op(0, conn(4, 16, 1), 12, 13, val(1)), true},
		// A rejection is legal where it holds in some linearization: the
		// create of n/12 is concurrent with the connect.
		{"concurrent create", base().op(1, create(12), 4, 9, ok).op(0, conn(4, 12, 1), 5, 6, rejected(ReasonNoSuchNeuron)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.h.check(t)
			if tc.legal {
				wantOK(t, res)
			} else {
				wantViolation(t, res, "sg/0")
			}
		})
	}
}

// A connect whose degrees an earlier rejected connect would have changed:
// a rejection has no effect.
func TestRejectedConnectHasNoEffect(t *testing.T) {
	h := newHistory().
		op(0, create(4), 0, 1, ok).
		op(0, conn(4, 8, 1), 2, 3, rejected(ReasonNoSuchNeuron)).
		op(0, readS(4, 8), 4, 5, val(1))
	wantViolation(t, h.check(t), "sg/0")
}

func TestClamps(t *testing.T) {
	b := DefaultBounds()
	h := newHistory().
		op(0, create(4), 0, 1, ok).
		op(0, stim(4, b.PotentialMax), 2, 3, val(b.PotentialMax)).
		op(0, stim(4, b.PotentialMax), 4, 5, val(b.PotentialMax)).
		op(0, create(8), 6, 7, ok).
		op(0, conn(4, 8, b.WeightMax+5), 8, 9, val(b.WeightMax)).
		op(0, adjust(4, 8, -1<<62), 10, 11, val(b.WeightMin))
	wantOK(t, h.check(t))
}

func TestUnknownOutcomes(t *testing.T) {
	// An unknown stimulate may have happened...
	h := newHistory().op(0, create(4), 0, 1, ok).op(0, stim(4, 3), 2, 3, unknown).op(1, readN(4), 10, 11, val(3))
	wantOK(t, h.check(t))
	// ...or not...
	h = newHistory().op(0, create(4), 0, 1, ok).op(0, stim(4, 3), 2, 3, unknown).op(1, readN(4), 10, 11, val(0))
	wantOK(t, h.check(t))
	// ...but explains nothing else.
	h = newHistory().op(0, create(4), 0, 1, ok).op(0, stim(4, 3), 2, 3, unknown).op(1, readN(4), 10, 11, val(4))
	wantViolation(t, h.check(t), "sg/0")
	// A pending call counts as unknown.
	r := NewRecorder()
	r.Return(r.Call(0, create(4), 0), ok, 1)
	r.Call(0, stim(4, 3), 2)
	r.Return(r.Call(1, readN(4), 10), val(3), 11)
	wantOK(t, Check(testCfg, r.Operations(), 0))
}

// A recovery's decay is one atomic operation over its subgraph, closed at
// its commit, with the factor recomputed from the logged timestamps.
func TestDecayIsAtomicClosedAndRecomputed(t *testing.T) {
	keep := DecayFactorPM(testCfg.Policy.DecayPerSecondPM, 3_000) // 0.9^3
	if keep != 729_000 {
		t.Fatalf("0.9^3 = %d ppm", keep)
	}
	mk := func(read4, read8 int64, readAt int64) *history {
		return newHistory().innocent().
			op(0, create(4), 0, 1, ok).op(0, create(8), 0, 1, ok).
			op(0, stim(4, 1_000_000), 2, 3, val(1_000_000)).op(0, stim(8, 2_000_000), 2, 3, val(2_000_000)).
			op(9, decayOf(0, 7_000, 10_000), 4, 6, ok).
			op(1, readN(4), readAt, readAt+10, val(read4)).
			op(2, readN(8), readAt, readAt+10, val(read8))
	}
	wantOK(t, mk(729_000, 1_458_000, 7).check(t))                  // after the decay
	wantOK(t, mk(1_000_000, 2_000_000, 5).check(t))                // concurrent, before it
	wantOK(t, mk(729_000, 1_458_000, 5).check(t))                  // concurrent, after it
	wantViolation(t, mk(1_000_000, 2_000_000, 7).check(t), "sg/0") // not applied at all
	wantViolation(t, mk(729_000, 2_000_000, 7).check(t), "sg/0")   // applied to one neuron only
	wantViolation(t, mk(900_000, 1_800_000, 7).check(t), "sg/0")   // a wrong factor (0.9^1)
	// Atomic: once a read saw one neuron decayed, a later read cannot see
	// another one undecayed, even while the decay is still in progress.
	atomic := newHistory().
		op(0, create(4), 0, 1, ok).op(0, create(8), 0, 1, ok).
		op(0, stim(4, 1_000_000), 2, 3, val(1_000_000)).op(0, stim(8, 2_000_000), 2, 3, val(2_000_000)).
		op(9, decayOf(0, 7_000, 10_000), 4, 20, ok).
		op(1, readN(4), 5, 6, val(729_000)).
		op(2, readN(8), 7, 8, val(2_000_000))
	wantViolation(t, atomic.check(t), "sg/0")
	// Rounds toward zero.
	if mulDecay(-1001, 500_000) != -500 || mulDecay(1001, 500_000) != 500 {
		t.Fatal("mulDecay must round toward zero")
	}
	if DecayFactorPM(1000, 0) != 1_000_000 || DecayFactorPM(0, 5000) != 1_000_000 || DecayFactorPM(100_000, 1_500) != 900_000*950_000/1_000_000 {
		t.Fatal("decay law")
	}
}

func TestForeignOperationsAreViolations(t *testing.T) {
	ops := []porcupine.Operation{{Input: "x", Output: ok, Call: 0, Return: 1}}
	if res := Check(testCfg, ops, 0); res.Verdict != VerdictViolation {
		t.Fatalf("foreign input: %v", res)
	}
	bad := newHistory().op(0, create(4), 0, 1, Output{Status: StatusBadRequest})
	wantViolation(t, bad.check(t), "sg/0")
}

func TestDescriptions(t *testing.T) {
	for in, want := range map[Input]string{
		create(4):              "create(n4)",
		stim(4, 3):             "stimulate(n4, +3)",
		conn(4, 8, 2):          "connect(n4->n8, w=2)",
		adjust(4, 8, -2):       "adjust(n4->n8, -2)",
		prune(4, 8):            "prune(n4->n8)",
		readS(4, 8):            "read-synapse(n4->n8)",
		decayOf(2, 1000, 4000): "decay(sg2, down 3000ms)",
		{Kind: 99, Neuron: 1}:  "kind(99)(neuron=1, pre=0, post=0)",
	} {
		if got := in.String(); got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
	if got := describe(conn(4, 8, 1), rejected(ReasonMaxOutDegree)); got != "connect(n4->n8, w=1) -> rejected (max-out-degree)" {
		t.Error(got)
	}
	if Key(readN(7)) != "sg/3" || Key(readS(1, 22)) != "sg/1" || Key(Input{}) != "?" {
		t.Error("keys")
	}
}

func TestWriteHTML(t *testing.T) {
	dir := t.TempDir()
	for name, h := range map[string]*history{
		"ok":        newHistory().innocent(),
		"violation": newHistory().innocent().op(0, readN(4), 0, 1, val(3)),
	} {
		path := filepath.Join(dir, name+".html")
		if err := h.check(t).WriteHTML(path); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 || !strings.Contains(string(b), "stimulate(n101, +4) -\\u003e 4") {
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
	if k, n := r.MaxOpsPerKey(); k != "sg/1" || n != 2 || r.Len() != 4 {
		t.Fatalf("MaxOpsPerKey = %q, %d; Len = %d", k, n, r.Len())
	}
	ops := r.Operations()
	if ops[a].Return != 3 || ops[b].Return != Open || ops[b].Output.(Output).Status != StatusUnknown || ops[b].Metadata != b {
		t.Fatalf("ops: %+v", ops)
	}
	// A discarded operation (never sent) is not in the history.
	d := r.Call(0, stim(1, 5), 6)
	r.Discard(d)
	if r.Len() != 4 || len(r.Operations()) != 4 || r.Discarded() != 1 {
		t.Fatalf("discard: Len %d, ops %d", r.Len(), len(r.Operations()))
	}
	for name, misuse := range map[string]func(){
		"double return":        func() { r.Return(a, ok, 5) },
		"unknown op":           func() { r.Return(OpID(99), ok, 5) },
		"return before call":   func() { r.Return(r.Call(0, create(3), 10), ok, 9) },
		"invalid kind":         func() { r.Call(0, Input{}, 0) },
		"invalid status":       func() { r.Return(r.Call(0, create(3), 10), Output{}, 11) },
		"return after discard": func() { r.Return(d, ok, 7) },
		"discard after return": func() { r.Discard(a) },
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

// hopeless adds a subgraph on which porcupine cannot finish: 40 concurrent
// unknown stimulates (2^40 subsets) before a read of an impossible value.
func (h *history) hopeless() *history {
	h.op(0, create(2), 0, 1, ok)
	for i := range 40 {
		h.op(10+i, stim(2, 1<<i), 10, 20, unknown)
	}
	return h.op(1, readN(2), 1000, 1010, val(-1))
}

func TestTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	if res := Check(testCfg, newHistory().hopeless().r.Operations(), timeout); res.Verdict != VerdictUnknown || res.ViolatingKeys != nil {
		t.Fatalf("want unknown, got %v", res)
	}
	// A violation found before the timeout is still reported, and only the
	// subgraphs proven to violate are listed (sg/2 was merely cut short).
	res := Check(testCfg, newHistory().hopeless().op(0, readN(4), 0, 1, val(3)).r.Operations(), timeout)
	wantViolation(t, res, "sg/0")
}
