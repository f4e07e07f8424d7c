// Package shrink reduces a failing simulation run to a small reproducer while
// the same check still fails.
//
// # Failure signature
//
// The signature of a run is the sorted set of checks it failed:
//
//   - "linearizability" when porcupine found a violation,
//   - "linearizability-unknown" when the check timed out (the run is not
//     counted as a pass, so a timeout is a failure of its own kind),
//   - the name of every violated invariant ("no-acked-write-lost", ...),
//   - "internal-error" when the simulator returned an error or panicked.
//
// A candidate "still fails the same check" when its signature shares at least
// one check with the signature of the original run. A candidate that fails
// only some other check (a different bug) is rejected, so shrinking never
// wanders from one bug to another.
//
// # Steps
//
// Each step keeps a candidate only if it still fails the same check:
//
//  1. faults: remove them all at once; then delta debugging (ddmin: halves,
//     quarters, ..., single faults, each as a subset and as a complement),
//     which ends with a 1-minimal set (removing any one more fault passes);
//  2. ops: binary search of Workload.MaxOps between 1 and the op count of the
//     current run;
//  3. duration: binary search of DurationMs in steps of DurationStepMs
//     (default 100 ms); faults that would start at or after the new duration
//     are dropped;
//  4. clients: binary search of Clients between 1 and the current count;
//     fault entries naming a removed client lose that host, and an entry that
//     is then invalid is dropped;
//  5. if steps 2-4 changed anything, one more pass that removes the remaining
//     faults one at a time (1-minimality again).
//
// Every candidate passes sim.Config.Validate before it is run; an invalid one
// is skipped without costing a trial. Identical candidates are judged once.
// The number of trial runs (candidates; the original is not counted) is
// bounded by the budget; when it runs out, the smallest failing candidate so
// far is the result. Failures need not be monotonic in ops, duration or
// clients; the searches return a value that was seen failing, not
// necessarily the smallest one.
package shrink

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"territory/faults"
	"territory/linearizability"
	"territory/sim"
)

// Names of the checks in a signature, besides the invariant names.
const (
	CheckLinearizability = "linearizability"
	CheckLinUnknown      = "linearizability-unknown"
	// CheckLogCheck: the log checker (linearizability.LogCheck) found a violation.
	CheckLogCheck      = "logcheck"
	CheckInternalError = "internal-error"
)

// DefaultBudget bounds the number of trial runs.
const DefaultBudget = 300

// DefaultDurationStepMs is the granularity of the duration search.
const DefaultDurationStepMs = 100

// ErrNotFailing is returned when the original configuration does not fail.
var ErrNotFailing = errors.New("the run does not fail: nothing to shrink")

// Signature is the sorted set of checks a run failed; nil when it passed.
func Signature(r *sim.Result) []string {
	var sig []string
	switch r.Linearizable {
	case linearizability.VerdictOK:
	case linearizability.VerdictViolation:
		sig = append(sig, CheckLinearizability)
	default:
		sig = append(sig, CheckLinUnknown)
	}
	if r.LogCheck != "" && r.LogCheck != "ok" {
		sig = append(sig, CheckLogCheck)
	}
	for _, v := range r.Violations {
		sig = append(sig, v.Invariant)
	}
	slices.Sort(sig)
	return slices.Compact(sig)
}

// SameCheck reports whether a candidate's signature shares a check with the original's.
func SameCheck(original, candidate []string) bool {
	for _, c := range candidate {
		if slices.Contains(original, c) {
			return true
		}
	}
	return false
}

// Predicate runs a candidate and says whether it failed, and which checks
// failed. An error means the candidate could not be judged; it is rejected.
type Predicate func(sim.Config) (failed bool, signature []string, err error)

// Trial is one judged candidate, for progress output.
type Trial struct {
	N         int // 1-based trial number
	Step      string
	Faults    int
	MaxOps    int
	Duration  int64
	Clients   int
	Failed    bool
	Signature []string
	Err       error
	Kept      bool // still fails the same check: the new smallest run
}

func (t Trial) String() string {
	verdict := "pass"
	switch {
	case t.Err != nil:
		verdict = "error: " + t.Err.Error()
	case t.Failed:
		verdict = "fail " + strings.Join(t.Signature, ",")
	}
	kept := ""
	if t.Kept {
		kept = " (kept)"
	}
	return fmt.Sprintf("trial %d %-8s faults=%d max_ops=%d duration=%s clients=%d: %s%s",
		t.N, t.Step, t.Faults, t.MaxOps, msString(t.Duration), t.Clients, verdict, kept)
}

// Options tune a shrink.
type Options struct {
	// Budget bounds the candidate runs (0: DefaultBudget); the run of the
	// original, if Shrink makes it, is not counted.
	Budget int
	// Signature is the original run's signature when the caller already ran
	// it; nil: the original is run first (one trial).
	Signature []string
	// Ops returns the number of operations a judged run of cfg issued (0:
	// unknown). It bounds the op search; nil or 0 skips that step unless the
	// configuration already has a Workload.MaxOps.
	Ops func(cfg sim.Config) int
	// DurationStepMs is the granularity of the duration search (0: 100 ms).
	DurationStepMs int64
	// Log, if set, is told about every trial.
	Log func(Trial)
}

// Result is what a shrink found.
type Result struct {
	Original        sim.Config
	Shrunk          sim.Config
	Signature       []string       // of the original run
	ShrunkSignature []string       // of the shrunk run
	Removed         []faults.Fault // entries of the original schedule not in the shrunk one
	Narrowed        []Narrowed     // entries kept with fewer hosts
	OpsBefore       int            // operations of the original run (0: unknown)
	OpsAfter        int            // operations of the shrunk run (0: unknown)
	Trials          int
	Budget          int
	Exhausted       bool // the budget ran out before the last step finished
}

// Shrink reduces cfg while pred still fails the same check.
func Shrink(cfg sim.Config, pred Predicate, opts Options) (*Result, error) {
	if pred == nil {
		return nil, errors.New("shrink: no predicate")
	}
	if opts.Budget == 0 {
		opts.Budget = DefaultBudget
	}
	if opts.Budget < 0 {
		return nil, fmt.Errorf("shrink: budget %d must be positive", opts.Budget)
	}
	if opts.DurationStepMs == 0 {
		opts.DurationStepMs = DefaultDurationStepMs
	}
	if opts.DurationStepMs < 0 {
		return nil, fmt.Errorf("shrink: duration step %dms must be positive", opts.DurationStepMs)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("shrink: %w", err)
	}
	s := &shrinker{pred: pred, opts: opts, cache: map[string]verdict{}, best: clone(cfg)}
	s.orig = slices.Clone(opts.Signature)
	if s.orig == nil {
		failed, sig, err := pred(cfg)
		if err != nil {
			return nil, fmt.Errorf("shrink: original run: %w", err)
		}
		if !failed {
			return nil, ErrNotFailing
		}
		s.orig = slices.Clone(sig)
		s.log(Trial{Step: "original", Failed: true, Signature: sig, Kept: true}, cfg)
	}
	if len(s.orig) == 0 {
		return nil, errors.New("shrink: the original failure has an empty signature")
	}
	s.bestSig = s.orig
	s.cache[key(cfg)] = verdict{ok: true, sig: s.orig}

	res := &Result{Original: clone(cfg), Signature: s.orig, Budget: opts.Budget}
	if opts.Ops != nil {
		res.OpsBefore = opts.Ops(cfg)
	}
	s.faults()
	afterFaults := key(s.best)
	s.ops()
	s.duration()
	s.clients()
	if key(s.best) != afterFaults {
		s.faultsOneByOne()
	}
	res.Shrunk = s.best
	res.ShrunkSignature = s.bestSig
	res.Trials = s.trials
	res.Exhausted = s.exhausted
	if opts.Ops != nil {
		res.OpsAfter = opts.Ops(s.best)
	}
	res.Removed, res.Narrowed = diffFaults(cfg.Schedule.Faults, s.best.Schedule.Faults)
	return res, nil
}

type verdict struct {
	ok  bool // still fails the same check
	sig []string
}

type shrinker struct {
	pred      Predicate
	opts      Options
	orig      []string
	cache     map[string]verdict // by candidate key
	best      sim.Config
	bestSig   []string
	trials    int
	exhausted bool
}

func (s *shrinker) log(t Trial, cfg sim.Config) {
	if s.opts.Log == nil {
		return
	}
	t.N = s.trials
	t.Faults, t.MaxOps, t.Duration, t.Clients = len(cfg.Schedule.Faults), cfg.Workload.MaxOps, cfg.DurationMs, cfg.Clients
	s.opts.Log(t)
}

// try judges a candidate; when it still fails the same check it becomes the best.
func (s *shrinker) try(step string, cand sim.Config) bool {
	if cand.Validate() != nil {
		return false
	}
	k := key(cand)
	if v, seen := s.cache[k]; seen {
		if v.ok {
			s.best, s.bestSig = cand, v.sig
		}
		return v.ok
	}
	if s.trials >= s.opts.Budget {
		s.exhausted = true
		return false
	}
	s.trials++
	failed, sig, err := s.pred(cand)
	ok := err == nil && failed && SameCheck(s.orig, sig)
	s.cache[k] = verdict{ok: ok, sig: slices.Clone(sig)}
	if ok {
		s.best, s.bestSig = cand, slices.Clone(sig)
	}
	s.log(Trial{Step: step, Failed: failed, Signature: sig, Err: err, Kept: ok}, cand)
	return ok
}

// faults runs delta debugging over the fault schedule.
func (s *shrinker) faults() {
	cur := s.best.Schedule.Faults
	if len(cur) == 0 || s.try("faults", withFaults(s.best, nil)) {
		return
	}
	n := 2
	for len(cur) >= 2 {
		chunks := split(cur, n)
		reduced := false
		for _, c := range chunks {
			if s.try("faults", withFaults(s.best, c)) {
				cur, n, reduced = c, 2, true
				break
			}
		}
		if !reduced && n > 2 { // for n == 2 the complements are the subsets
			for i := range chunks {
				comp := complement(chunks, i)
				if s.try("faults", withFaults(s.best, comp)) {
					cur, n, reduced = comp, max(n-1, 2), true
					break
				}
			}
		}
		if !reduced {
			if n >= len(cur) {
				break
			}
			n = min(2*n, len(cur))
		}
	}
}

// faultsOneByOne removes single faults until none can go.
func (s *shrinker) faultsOneByOne() {
	for i := 0; i < len(s.best.Schedule.Faults); {
		cur := s.best.Schedule.Faults
		cand := append(slices.Clone(cur[:i]), cur[i+1:]...)
		if !s.try("faults", withFaults(s.best, cand)) {
			i++
		}
	}
}

// search finds, by bisection, a small value in 1..hi for which try succeeds;
// try(hi) is assumed to succeed.
func search(hi int64, try func(int64) bool) {
	lo := int64(0)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if try(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
}

func (s *shrinker) ops() {
	upper := s.best.Workload.MaxOps
	if s.opts.Ops != nil {
		if n := s.opts.Ops(s.best); n > 0 && (upper == 0 || n < upper) {
			upper = n
		}
	}
	if upper <= 0 {
		return
	}
	if upper != s.best.Workload.MaxOps && !s.try("ops", withMaxOps(s.best, upper)) {
		return
	}
	search(int64(upper), func(v int64) bool { return s.try("ops", withMaxOps(s.best, int(v))) })
}

func (s *shrinker) duration() {
	orig, step := s.best.DurationMs, s.opts.DurationStepMs
	units := (orig + step - 1) / step
	search(units, func(u int64) bool { return s.try("duration", withDuration(s.best, min(u*step, orig))) })
}

func (s *shrinker) clients() {
	search(int64(s.best.Clients), func(v int64) bool { return s.try("clients", withClients(s.best, int(v))) })
}

// ---- candidates ----

// clone copies a configuration deeply enough that candidates never share a
// fault list with it.
func clone(cfg sim.Config) sim.Config {
	cfg.Schedule.Faults = slices.Clone(cfg.Schedule.Faults)
	return cfg
}

func withFaults(cfg sim.Config, fs []faults.Fault) sim.Config {
	cfg.Schedule.Faults = slices.Clone(fs)
	if cfg.Schedule.Faults == nil {
		cfg.Schedule.Faults = []faults.Fault{}
	}
	return cfg
}

func withMaxOps(cfg sim.Config, n int) sim.Config {
	cfg = clone(cfg)
	cfg.Workload.MaxOps = n
	return cfg
}

func withDuration(cfg sim.Config, ms int64) sim.Config {
	cfg.DurationMs = ms
	var kept []faults.Fault
	for _, f := range cfg.Schedule.Faults {
		if f.AtMs < ms {
			kept = append(kept, f)
		}
	}
	return withFaults(cfg, kept)
}

func withClients(cfg sim.Config, n int) sim.Config {
	cfg.Clients = n
	top := cfg.Topology()
	var kept []faults.Fault
	for _, f := range cfg.Schedule.Faults {
		f.Hosts = known(f.Hosts, top.Hosts)
		f.Peers = known(f.Peers, top.Hosts)
		if f.Validate(top) == nil {
			kept = append(kept, f)
		}
	}
	return withFaults(cfg, kept)
}

func known(names, hosts []string) []string {
	if names == nil {
		return nil
	}
	out := []string{}
	for _, n := range names {
		if slices.Contains(hosts, n) {
			out = append(out, n)
		}
	}
	return out
}

func split(fs []faults.Fault, n int) [][]faults.Fault {
	var out [][]faults.Fault
	for i := 0; i < n; i++ {
		lo, hi := i*len(fs)/n, (i+1)*len(fs)/n
		if hi > lo {
			out = append(out, fs[lo:hi])
		}
	}
	return out
}

func complement(chunks [][]faults.Fault, skip int) []faults.Fault {
	var out []faults.Fault
	for i, c := range chunks {
		if i != skip {
			out = append(out, c...)
		}
	}
	return out
}

// Narrowed is a fault entry that the shrunk schedule keeps in a smaller form
// (the clients step removed hosts from it).
type Narrowed struct {
	From, To faults.Fault
}

// diffFaults lists the entries of before that after does not hold (as a
// multiset, so duplicated entries count), in schedule order, and pairs the
// entries that were only narrowed (same start, duration and kind).
func diffFaults(before, after []faults.Fault) (removed []faults.Fault, narrowed []Narrowed) {
	left := map[string]int{}
	for _, f := range after {
		left[faultKey(f)]++
	}
	var gone []faults.Fault
	for _, f := range before {
		k := faultKey(f)
		if left[k] > 0 {
			left[k]--
			continue
		}
		gone = append(gone, f)
	}
	used := make([]bool, len(gone))
	for _, f := range after {
		k := faultKey(f)
		if left[k] == 0 {
			continue // an exact match of an original entry
		}
		left[k]--
		for i, g := range gone {
			if !used[i] && g.AtMs == f.AtMs && g.DurationMs == f.DurationMs && g.Kind == f.Kind {
				used[i] = true
				narrowed = append(narrowed, Narrowed{From: g, To: f})
				break
			}
		}
	}
	for i, g := range gone {
		if !used[i] {
			removed = append(removed, g)
		}
	}
	return removed, narrowed
}

func faultKey(f faults.Fault) string {
	data, _ := json.Marshal(f)
	return string(data)
}

// Key identifies a configuration: two configurations with the same key run
// the same (for the same seed).
func Key(cfg sim.Config) string { return key(cfg) }

func key(cfg sim.Config) string {
	data, err := json.Marshal(cfg)
	if err != nil {
		panic(fmt.Sprintf("shrink: encode config: %v", err)) // plain data: cannot happen
	}
	return string(data)
}

// ---- reporting ----

func msString(ms int64) string { return (time.Duration(ms) * time.Millisecond).String() }

// Report prints what the shrink removed, one line per dimension.
func (r *Result) Report(w io.Writer) {
	before, after := r.Original.Schedule.Faults, r.Shrunk.Schedule.Faults
	narrowed := ""
	if len(r.Narrowed) > 0 {
		narrowed = fmt.Sprintf(", narrowed: %d", len(r.Narrowed))
	}
	fmt.Fprintf(w, "faults %d -> %d (removed: %d%s)\n", len(before), len(after), len(r.Removed), narrowed)
	for _, f := range r.Removed {
		fmt.Fprintf(w, "  removed  %s\n", f)
	}
	for _, n := range r.Narrowed {
		fmt.Fprintf(w, "  narrowed %s\n        to %s\n", n.From, n.To)
	}
	for _, f := range after {
		fmt.Fprintf(w, "  kept     %s\n", f)
	}
	switch {
	case r.OpsBefore > 0 && r.OpsAfter > 0:
		fmt.Fprintf(w, "ops %d -> %d", r.OpsBefore, r.OpsAfter)
	default:
		fmt.Fprintf(w, "ops %s -> %s", maxOps(r.Original.Workload.MaxOps), maxOps(r.Shrunk.Workload.MaxOps))
	}
	if r.Shrunk.Workload.MaxOps != r.Original.Workload.MaxOps {
		fmt.Fprintf(w, " (workload.max_ops=%d)", r.Shrunk.Workload.MaxOps)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "duration %s -> %s\n", msString(r.Original.DurationMs), msString(r.Shrunk.DurationMs))
	fmt.Fprintf(w, "clients %d -> %d\n", r.Original.Clients, r.Shrunk.Clients)
	fmt.Fprintf(w, "signature %s -> %s\n", strings.Join(r.Signature, ","), strings.Join(r.ShrunkSignature, ","))
	exhausted := ""
	if r.Exhausted {
		exhausted = ", budget exhausted: the result may shrink further with a larger --budget"
	}
	fmt.Fprintf(w, "trials %d of budget %d%s\n", r.Trials, r.Budget, exhausted)
}

func maxOps(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}
