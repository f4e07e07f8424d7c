package shrink

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"territory/faults"
	"territory/linearizability"
	"territory/scenarios"
	"territory/sim"
	"territory/sim/invariants"
)

// config returns the base topology (4 clients, 60 s) with 16 slow-store
// faults, fault i at (i+1) s with ExtraMs i+1, so tests can name them.
func config(t *testing.T) sim.Config {
	t.Helper()
	cfg := scenarios.Base()
	cfg.Scenario = "synthetic"
	for i := 0; i < 16; i++ {
		cfg.Schedule.Faults = append(cfg.Schedule.Faults, faults.Fault{
			AtMs: int64(i+1) * 1000, DurationMs: 500, Kind: faults.CoordSlow, ExtraMs: int64(i + 1)})
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func has(cfg sim.Config, extra int64) bool {
	return slices.ContainsFunc(cfg.Schedule.Faults, func(f faults.Fault) bool { return f.ExtraMs == extra })
}

// synthetic fails (no-acked-write-lost) iff faults 3 and 11 are present, the
// op budget is unlimited or at least 100, and there are at least 2 clients.
func synthetic(calls *int) Predicate {
	return func(cfg sim.Config) (bool, []string, error) {
		*calls++
		ok := has(cfg, 3) && has(cfg, 11) && (cfg.Workload.MaxOps == 0 || cfg.Workload.MaxOps >= 100) && cfg.Clients >= 2
		if ok {
			return true, []string{invariants.NoAckedWriteLost}, nil
		}
		return false, nil, nil
	}
}

// ops models the op count of a run: 5000, or the op budget.
func ops(cfg sim.Config) int {
	if cfg.Workload.MaxOps > 0 {
		return min(cfg.Workload.MaxOps, 5000)
	}
	return 5000
}

func TestShrinkFindsExactMinimum(t *testing.T) {
	cfg := config(t)
	var calls int
	var trials []Trial
	res, err := Shrink(cfg, synthetic(&calls), Options{Ops: ops, Log: func(tr Trial) { trials = append(trials, tr) }})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Shrunk
	if len(got.Schedule.Faults) != 2 || got.Schedule.Faults[0].ExtraMs != 3 || got.Schedule.Faults[1].ExtraMs != 11 {
		t.Fatalf("faults: %v", got.Schedule.Faults)
	}
	if got.Workload.MaxOps != 100 {
		t.Errorf("max ops %d, want 100", got.Workload.MaxOps)
	}
	// Fault 11 starts at 11 s: the smallest 100 ms step that keeps it is 11.1 s.
	if got.DurationMs != 11_100 {
		t.Errorf("duration %dms, want 11100", got.DurationMs)
	}
	if got.Clients != 2 {
		t.Errorf("clients %d, want 2", got.Clients)
	}
	if len(res.Removed) != 14 || slices.ContainsFunc(res.Removed, func(f faults.Fault) bool { return f.ExtraMs == 3 || f.ExtraMs == 11 }) {
		t.Errorf("removed: %v", res.Removed)
	}
	if res.OpsBefore != 5000 || res.OpsAfter != 100 {
		t.Errorf("ops %d -> %d", res.OpsBefore, res.OpsAfter)
	}
	if !reflect.DeepEqual(res.Signature, []string{invariants.NoAckedWriteLost}) || !reflect.DeepEqual(res.ShrunkSignature, res.Signature) {
		t.Errorf("signatures %v -> %v", res.Signature, res.ShrunkSignature)
	}
	// The original is run once by Shrink and not counted; identical candidates run once.
	if res.Trials != calls-1 || len(trials) != calls || res.Exhausted || res.Trials > 80 {
		t.Errorf("trials %d, predicate calls %d, logged %d, exhausted %v", res.Trials, calls, len(trials), res.Exhausted)
	}
	// The input is left alone.
	if len(cfg.Schedule.Faults) != 16 || cfg.Workload.MaxOps != 0 || cfg.Clients != 4 || cfg.DurationMs != 60_000 {
		t.Errorf("input changed: %d faults, max ops %d, clients %d", len(cfg.Schedule.Faults), cfg.Workload.MaxOps, cfg.Clients)
	}
	var b strings.Builder
	res.Report(&b)
	for _, want := range []string{"faults 16 -> 2 (removed: 14)", "  kept     @3000ms+500ms coord.slow extra=3ms", "ops 5000 -> 100",
		"duration 1m0s -> 11.1s", "clients 4 -> 2", "signature no-acked-write-lost -> no-acked-write-lost"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	t.Logf("%d trials\n%s", res.Trials, b.String())
}

func TestShrinkIsDeterministic(t *testing.T) {
	var a, b []string
	for _, out := range []*[]string{&a, &b} {
		var calls int
		_, err := Shrink(config(t), synthetic(&calls), Options{Ops: ops, Log: func(tr Trial) { *out = append(*out, tr.String()) }})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two shrinks of the same input tried different candidates")
	}
}

// A candidate that fails another check only is a different bug: rejected.
func TestShrinkKeepsTheSameCheck(t *testing.T) {
	pred := func(cfg sim.Config) (bool, []string, error) {
		switch {
		case has(cfg, 3) && has(cfg, 11):
			return true, []string{invariants.NoAckedWriteLost}, nil
		case has(cfg, 3) || len(cfg.Schedule.Faults) == 0:
			return true, []string{invariants.Liveness, CheckLinearizability}, nil
		}
		return false, nil, nil
	}
	res, err := Shrink(config(t), pred, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if fs := res.Shrunk.Schedule.Faults; len(fs) != 2 || fs[0].ExtraMs != 3 || fs[1].ExtraMs != 11 {
		t.Fatalf("faults: %v", fs)
	}
	// Sharing one check is enough.
	orig := []string{CheckLinearizability, invariants.NoAckedWriteLost}
	if !SameCheck(orig, []string{invariants.Liveness, invariants.NoAckedWriteLost}) || SameCheck(orig, []string{invariants.Liveness}) || SameCheck(orig, nil) {
		t.Fatal("SameCheck")
	}
}

// Errors reject a candidate; they do not stop the shrink.
func TestShrinkRejectsErrors(t *testing.T) {
	var calls int
	inner := synthetic(&calls)
	pred := func(cfg sim.Config) (bool, []string, error) {
		if len(cfg.Schedule.Faults) < 16 && has(cfg, 5) {
			return true, []string{invariants.NoAckedWriteLost}, errors.New("cannot judge")
		}
		return inner(cfg)
	}
	res, err := Shrink(config(t), pred, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if fs := res.Shrunk.Schedule.Faults; len(fs) != 2 || has(res.Shrunk, 5) {
		t.Fatalf("faults: %v", fs)
	}
}

func TestShrinkBudget(t *testing.T) {
	var calls int
	res, err := Shrink(config(t), synthetic(&calls), Options{Budget: 5, Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	if res.Trials != 5 || calls != 6 || !res.Exhausted {
		t.Fatalf("trials %d, calls %d, exhausted %v", res.Trials, calls, res.Exhausted)
	}
	if failed, _, _ := synthetic(new(int))(res.Shrunk); !failed {
		t.Fatal("the result of an exhausted shrink must still fail")
	}
	if _, err := Shrink(config(t), synthetic(&calls), Options{Budget: -1}); err == nil {
		t.Fatal("negative budget accepted")
	}
}

func TestShrinkNotFailing(t *testing.T) {
	pass := func(sim.Config) (bool, []string, error) { return false, nil, nil }
	if _, err := Shrink(config(t), pass, Options{}); !errors.Is(err, ErrNotFailing) {
		t.Fatalf("err %v, want ErrNotFailing", err)
	}
	broken := func(sim.Config) (bool, []string, error) { return false, nil, errors.New("boom") }
	if _, err := Shrink(config(t), broken, Options{}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err %v", err)
	}
}

// With a known signature the original is not run again.
func TestShrinkKnownSignature(t *testing.T) {
	var calls int
	res, err := Shrink(config(t), synthetic(&calls), Options{Signature: []string{invariants.NoAckedWriteLost}, Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	if res.Trials != calls || res.Shrunk.Clients != 2 {
		t.Fatalf("trials %d, calls %d, clients %d", res.Trials, calls, res.Shrunk.Clients)
	}
}

func TestCandidates(t *testing.T) {
	cfg := config(t)
	cfg.Schedule.Faults = []faults.Fault{
		{AtMs: 100, Kind: faults.NetPartition, Hosts: []string{"t1"}, Peers: []string{"c4"}},
		{AtMs: 200, Kind: faults.NetPartition, Hosts: []string{"t1"}, Peers: []string{"c1", "c4", "coord"}},
		{AtMs: 300, Kind: faults.HostCrash, Hosts: []string{"c3"}},
		{AtMs: 5000, Kind: faults.CoordSlow, ExtraMs: 1},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c := withClients(cfg, 2)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if fs := c.Schedule.Faults; len(fs) != 2 || !reflect.DeepEqual(fs[0].Peers, []string{"c1", "coord"}) || fs[1].Kind != faults.CoordSlow {
		t.Fatalf("withClients: %v", fs)
	}
	if len(cfg.Schedule.Faults[1].Peers) != 3 {
		t.Fatal("withClients changed its input")
	}
	d := withDuration(cfg, 5000)
	if len(d.Schedule.Faults) != 3 || d.DurationMs != 5000 || d.Validate() != nil {
		t.Fatalf("withDuration: %v", d.Schedule.Faults)
	}
	r, n := diffFaults(cfg.Schedule.Faults, c.Schedule.Faults)
	if len(r) != 2 || r[0].AtMs != 100 || r[1].AtMs != 300 {
		t.Fatalf("removed: %v", r)
	}
	if len(n) != 1 || n[0].From.AtMs != 200 || len(n[0].From.Peers) != 3 || len(n[0].To.Peers) != 2 {
		t.Fatalf("narrowed: %v", n)
	}
	// Duplicated entries count one by one.
	dup := []faults.Fault{cfg.Schedule.Faults[3], cfg.Schedule.Faults[3]}
	if r, n := diffFaults(dup, dup[:1]); len(r) != 1 || len(n) != 0 {
		t.Fatalf("duplicates: %v %v", r, n)
	}
}

func TestSignature(t *testing.T) {
	r := &sim.Result{Linearizable: linearizability.VerdictViolation, Violations: []invariants.Violation{
		{Invariant: invariants.Liveness}, {Invariant: invariants.NoAckedWriteLost}, {Invariant: invariants.Liveness}}}
	if got := Signature(r); !reflect.DeepEqual(got, []string{CheckLinearizability, invariants.Liveness, invariants.NoAckedWriteLost}) {
		t.Fatalf("signature %v", got)
	}
	if got := Signature(&sim.Result{Linearizable: linearizability.VerdictUnknown}); !reflect.DeepEqual(got, []string{CheckLinUnknown}) {
		t.Fatalf("signature %v", got)
	}
	if got := Signature(&sim.Result{Pass: true, Linearizable: linearizability.VerdictOK}); got != nil {
		t.Fatalf("signature of a pass %v", got)
	}
}

// The real predicate on a passing run: nothing to shrink.
func TestRunnerOnAPassingRun(t *testing.T) {
	sc, err := scenarios.Get("basic")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sc.Config(1, 2_000)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRunner(1, 10*time.Second)
	// A failing run here is a bug of the protocol or of the checks (basic has
	// no faults): fail, never skip.
	if run := r.Judge(cfg); run.Failed {
		t.Fatalf("basic seed 1 at 2 s fails, so the passing case is not tested: %s %s", run.Line, run.Err)
	}
	if _, err := Shrink(cfg, r.Predicate, Options{Ops: r.Ops}); !errors.Is(err, ErrNotFailing) {
		t.Fatalf("err %v", err)
	}
	run, ok := r.Lookup(cfg)
	if !ok || run.Failed || run.Ops == 0 || r.Ops(cfg) != run.Ops || !strings.HasPrefix(run.Line, "PASS scenario=basic seed=1 ") {
		t.Fatalf("run %+v", run)
	}
}
