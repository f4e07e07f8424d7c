package linearizability

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func genCheckCfg(c genConfig) Config { return Config{Policy: c.policy} }

// both runs porcupine and the log checker on the same history.
func both(t testing.TB, c genConfig, h genHistory) (Result, LogResult) {
	t.Helper()
	return Check(genCheckCfg(c), h.ops, 0), LogCheck(Bounds{}, h.ops, h.logs)
}

func TestGeneratedHistoriesPassBoth(t *testing.T) {
	resolved, vanished := 0, 0
	for seed := uint64(1); seed <= 6; seed++ {
		c := benchConfig(seed, 4000)
		c.unknownRate, c.decayRate = 0.03, 0.01
		h := generate(c)
		p, l := both(t, c, h)
		if p.Verdict != VerdictOK || l.Verdict != VerdictOK {
			t.Fatalf("seed %d: porcupine %v; log %v", seed, p, l)
		}
		resolved += l.Resolved
		vanished += l.Vanished
	}
	if resolved == 0 || vanished == 0 {
		t.Fatalf("the generator made no unknown writes to resolve (%d resolved, %d vanished)", resolved, vanished)
	}
}

// tamper returns a copy of the history with f applied to the first
// operation for which f returns true.
func tamper(h genHistory, f func(i int, op *porcupine.Operation) bool) (genHistory, bool) {
	ops := slices.Clone(h.ops)
	for i := range ops {
		if f(i, &ops[i]) {
			return genHistory{ops: ops, logs: h.logs}, true
		}
	}
	return h, false
}

func in(op *porcupine.Operation) Input   { return op.Input.(Input) }
func out(op *porcupine.Operation) Output { return op.Output.(Output) }

// The tampered histories of issue 7 fail both checkers.
func TestTamperedHistoriesFailBoth(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		c := benchConfig(seed, 3000)
		h := generate(c)
		tampers := map[string]func() (genHistory, bool){
			"flip an answer": func() (genHistory, bool) {
				return tamper(h, func(_ int, op *porcupine.Operation) bool {
					if in(op).Kind != Stimulate || out(op).Status != StatusOK {
						return false
					}
					o := out(op)
					o.Value++
					op.Output = o
					return true
				})
			},
			"reject a stimulate": func() (genHistory, bool) {
				return tamper(h, func(_ int, op *porcupine.Operation) bool {
					if in(op).Kind != Stimulate || out(op).Status != StatusOK {
						return false
					}
					op.Output = Output{Status: StatusRejected}
					return true
				})
			},
			"not-found turned into rejected": func() (genHistory, bool) {
				return tamper(h, func(_ int, op *porcupine.Operation) bool {
					if out(op).Status != StatusNotFound {
						return false
					}
					op.Output = Output{Status: StatusRejected}
					return true
				})
			},
			"degree rejection relabelled no-such-neuron": func() (genHistory, bool) {
				return tamper(h, func(_ int, op *porcupine.Operation) bool {
					if r := out(op).Reason; out(op).Status != StatusRejected || (r != ReasonMaxInDegree && r != ReasonMaxOutDegree) {
						return false
					}
					op.Output = Output{Status: StatusRejected, Reason: ReasonNoSuchNeuron}
					return true
				})
			},
			"reorder returns": func() (genHistory, bool) {
				// Move the first of two acknowledged stimulates of one neuron,
				// in log order, to after the second returned.
				lsnOf := map[UUID]uint64{}
				for _, l := range h.logs {
					for _, e := range l.Entries {
						lsnOf[e.ID] = e.LSN
					}
				}
				var firstIdx = map[uint64]int{}
				ops := slices.Clone(h.ops)
				for i := range ops {
					if in(&ops[i]).Kind != Stimulate || out(&ops[i]).Status != StatusOK {
						continue
					}
					n := in(&ops[i]).Neuron
					j, seen := firstIdx[n]
					if !seen {
						firstIdx[n] = i
						continue
					}
					a, b := &ops[j], &ops[i]
					if lsnOf[in(a).ID] > lsnOf[in(b).ID] {
						a, b = b, a
					}
					if out(a).Value == out(b).Value {
						continue
					}
					a.Call, a.Return = b.Return+1, b.Return+2
					return genHistory{ops: ops, logs: h.logs}, true
				}
				return h, false
			},
			"stale read": func() (genHistory, bool) {
				// A read answered with a neuron's value from before a
				// stimulate that returned before the read was called.
				last := map[uint64]*porcupine.Operation{}
				ops := slices.Clone(h.ops)
				for i := range ops {
					op := &ops[i]
					switch in(op).Kind {
					case Stimulate:
						if out(op).Status == StatusOK {
							last[in(op).Neuron] = op
						}
					case ReadNeuron:
						w := last[in(op).Neuron]
						if w == nil || w.Return >= op.Call || out(op).Status != StatusOK {
							continue
						}
						old := out(w).Value - in(w).Delta
						if old == out(op).Value || in(w).Delta == 0 {
							continue
						}
						op.Output = Output{Status: StatusOK, Value: old, Exists: true}
						return genHistory{ops: ops, logs: h.logs}, true
					}
				}
				return h, false
			},
			"acknowledged write dropped from the log": func() (genHistory, bool) {
				lc := c
				lc.loseWrite = 5
				return generate(lc), true
			},
		}
		names := make([]string, 0, len(tampers))
		for name := range tampers {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			th, ok := tampers[name]()
			if !ok {
				t.Fatalf("seed %d %s: no operation to tamper with", seed, name)
			}
			p, l := both(t, c, th)
			if p.Verdict != VerdictViolation || l.Verdict != VerdictViolation {
				t.Errorf("seed %d %s: porcupine %s, log checker %s", seed, name, p.Verdict, l)
				continue
			}
			t.Logf("seed %d %-45s porcupine %s %v; log checker %v", seed, name, p.Verdict, p.ViolatingKeys, l.Checks())
		}
	}
}

// ---- what only the log checker sees ----

func logOf(sub uint32, ops ...Input) SubgraphLog {
	l := SubgraphLog{Subgraph: sub, Entries: []Entry{{LSN: 1, Kind: EntryAdoptPolicy, Policy: testCfg.Policy}}}
	for _, op := range ops {
		k := EntryWrite
		if op.Kind == Decay {
			k = EntryDecay
		}
		n := uint64(len(l.Entries) + 1)
		l.Entries = append(l.Entries, Entry{LSN: n, CommitUs: int64(n) * 10, Kind: k, ID: op.ID, Op: op})
	}
	return l
}

func withID(in Input, lo uint64) Input { in.ID = UUID{Hi: 7, Lo: lo}; return in }

func wantLog(t *testing.T, res LogResult, checks ...string) {
	t.Helper()
	if got := res.Checks(); fmt.Sprint(got) != fmt.Sprint(checks) {
		t.Fatalf("want %v, got %v", checks, res)
	}
}

func TestLogCheckFindings(t *testing.T) {
	c4, c8, s4 := withID(create(4), 1), withID(create(8), 2), withID(stim(4, 3), 3)
	base := func() *history {
		return newHistory().op(0, c4, 15, 25, ok).op(0, c8, 25, 35, ok).op(0, s4, 35, 45, val(3))
	}
	good := logOf(0, c4, c8, s4)
	wantLog(t, LogCheck(Bounds{}, base().r.Operations(), []SubgraphLog{good}))

	// An unknown write is resolved from the log both ways.
	s4b := withID(stim(4, 5), 4)
	ops := base().op(1, s4b, 45, 46, unknown).op(1, withID(readN(4), 5), 60, 70, val(8)).r.Operations()
	res := LogCheck(Bounds{}, ops, []SubgraphLog{logOf(0, c4, c8, s4, s4b)})
	if res.Verdict != VerdictOK || res.Resolved != 1 {
		t.Fatalf("resolved: %v", res)
	}
	wantLog(t, LogCheck(Bounds{}, ops, []SubgraphLog{good}), CheckLogRead) // not in the log: the read cannot see it
	ops = base().op(1, s4b, 45, 46, unknown).op(1, withID(readN(4), 5), 60, 70, val(3)).r.Operations()
	if res := LogCheck(Bounds{}, ops, []SubgraphLog{good}); res.Verdict != VerdictOK || res.Vanished != 1 {
		t.Fatalf("vanished: %v", res)
	}

	dup := good
	dup.Entries = append(slices.Clone(good.Entries), Entry{LSN: 5, CommitUs: 50, Kind: EntryWrite, ID: s4.ID, Op: s4})
	wantLog(t, LogCheck(Bounds{}, base().r.Operations(), []SubgraphLog{dup}), CheckLogOnce)

	orphan := logOf(0, c4, c8, s4, withID(stim(8, 1), 9))
	wantLog(t, LogCheck(Bounds{}, base().r.Operations(), []SubgraphLog{orphan}), CheckLogOrphan)

	other := logOf(0, c4, c8, withID(stim(4, 4), 3)) // a different delta under s4's uuid
	wantLog(t, LogCheck(Bounds{}, base().r.Operations(), []SubgraphLog{other}), CheckLogMatch)

	gap := logOf(0, c4, c8, s4)
	gap.Entries = slices.Clone(gap.Entries)
	gap.Entries[2].LSN = 7
	wantLog(t, LogCheck(Bounds{}, base().r.Operations(), []SubgraphLog{gap}), CheckLogGap)

	lost := logOf(0, c4, c8)
	wantLog(t, LogCheck(Bounds{}, base().r.Operations(), []SubgraphLog{lost}), CheckLogLost)

	// Two stimulates of different neurons commute: porcupine may swap them,
	// the log may not contradict real time.
	s8 := withID(stim(8, 1), 6)
	h := base().op(1, s8, 46, 47, val(1))
	swapped := logOf(0, c4, c8, s8, s4)
	if p := Check(testCfg, h.r.Operations(), 0); p.Verdict != VerdictOK {
		t.Fatalf("porcupine: %v", p)
	}
	wantLog(t, LogCheck(Bounds{}, h.r.Operations(), []SubgraphLog{swapped}), CheckLogOrder)

	// A read may only see what was committed before it returned: s4 commits
	// at 40, so a read returning at 38 with its value saw an uncommitted
	// write (linearizable, since s4 is concurrent, but not durable).
	early := newHistory().op(0, c4, 15, 25, ok).op(0, c8, 25, 35, ok).op(0, s4, 35, 45, val(3)).
		op(1, withID(readN(4), 7), 36, 38, val(3))
	if p := Check(testCfg, early.r.Operations(), 0); p.Verdict != VerdictOK {
		t.Fatalf("porcupine: %v", p)
	}
	wantLog(t, LogCheck(Bounds{}, early.r.Operations(), []SubgraphLog{good}), CheckLogRead)

	wantLog(t, LogCheck(Bounds{}, []porcupine.Operation{{Input: "x", Output: ok}}, nil), CheckLogInput)
}

// The decay factor is recomputed from the logged timestamps at the policy
// the log adopted, not taken from the store.
func TestLogCheckDecay(t *testing.T) {
	c4, s4 := withID(create(4), 1), withID(stim(4, 1_000_000), 2)
	d := decayOf(0, 7_000, 10_000)
	d.ID = UUID{Hi: 9, Lo: 1}
	mk := func(read int64) []porcupine.Operation {
		return newHistory().op(0, c4, 15, 25, ok).op(0, s4, 25, 35, val(1_000_000)).
			op(9, d, 35, 45, ok).op(1, withID(readN(4), 3), 50, 60, val(read)).r.Operations()
	}
	l := []SubgraphLog{logOf(0, c4, s4, d)}
	wantLog(t, LogCheck(Bounds{}, mk(729_000), l))
	wantLog(t, LogCheck(Bounds{}, mk(1_000_000), l), CheckLogRead)
	wantLog(t, LogCheck(Bounds{}, mk(900_000), l), CheckLogRead)
}

// ---- figures ----

// benchOps is the history size of the comparison: 20k operations, 16
// subgraphs, about 1250 operations per subgraph.
const benchOps = 20_000

func BenchmarkPorcupine(b *testing.B) {
	c := benchConfig(7, benchOps)
	h := generate(c)
	for b.Loop() {
		if res := Check(genCheckCfg(c), h.ops, 0); res.Verdict != VerdictOK {
			b.Fatal(res)
		}
	}
	b.ReportMetric(float64(len(h.ops))*float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkLogCheck(b *testing.B) {
	c := benchConfig(7, benchOps)
	h := generate(c)
	for b.Loop() {
		if res := LogCheck(Bounds{}, h.ops, h.logs); res.Verdict != VerdictOK {
			b.Fatal(res)
		}
	}
	b.ReportMetric(float64(len(h.ops))*float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// TestLogCheckMillionOps: one million operations (256 subgraphs of 3
// neurons, about 3900 operations each) in under 60 s on one core (run it with
// GOMAXPROCS=1), never unknown; then porcupine on the same history, for the
// ratio. Set TERRITORY_LIN_MILLION=1 to run it.
func TestLogCheckMillionOps(t *testing.T) {
	env := os.Getenv("TERRITORY_LIN_MILLION")
	if env == "" {
		t.Skip("set TERRITORY_LIN_MILLION=1 to check one million operations")
	}
	n := 1_000_000
	if v, err := strconv.Atoi(env); err == nil && v > 1 {
		n = v // another size, for the scaling of the ratio
	}
	c := benchConfig(11, n)
	c.subgraphs, c.neurons = 256, 768
	h := generate(c)
	start := time.Now()
	res := LogCheck(Bounds{}, h.ops, h.logs)
	took := time.Since(start)
	t.Logf("%d ops, %d entries: %v in %v (%.0f ops/s)", len(h.ops), res.Entries, res.Verdict, took, float64(len(h.ops))/took.Seconds())
	if res.Verdict != VerdictOK || took > 60*time.Second {
		t.Fatalf("%v in %v", res, took)
	}
	// Porcupine gets 120 s: past it, its verdict is unknown (which is why
	// the log checker exists).
	start = time.Now()
	p := Check(genCheckCfg(c), h.ops, 120*time.Second)
	ptook := time.Since(start)
	t.Logf("porcupine on the same history: %v in %v (%.0f ops/s); log checker %.1fx faster", p.Verdict, ptook, float64(len(h.ops))/ptook.Seconds(), ptook.Seconds()/took.Seconds())
	if p.Verdict == VerdictViolation {
		t.Fatalf("porcupine: %v", p)
	}
}
