// Package swarm runs many seeds of many scenarios in parallel and reports
// them in (scenario, seed) order, whatever order they finish in: swarm.json
// (per-scenario counts, failing seeds, wall time, seeds per minute), junit.xml
// (one test suite per scenario, one test case per seed) and a replay file for
// every failing seed.
//
// A range of seeds splits into shards with no coordinator: shard i of n keeps
// the seeds with (seed - from) mod n = i - 1.
package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"territory/linearizability"
	"territory/replayfile"
	"territory/reports"
	"territory/scenarios"
	"territory/shrink"
	"territory/sim"
)

// Files written into the output directory.
const (
	JSONFile  = "swarm.json"
	JUnitFile = reports.JUnitFile
	ReplayDir = "replays"
)

// MaxViolations bounds the invariant violations kept per failing seed in
// swarm.json and junit.xml (the replay shows them all).
const MaxViolations = 20

// MaxSeeds bounds one swarm (every scenario's seeds of this shard together).
const MaxSeeds = 1_000_000

// Shard is shard I of N (1-based); the zero value is the whole range.
type Shard struct{ I, N int }

func (s Shard) norm() Shard {
	if s.N == 0 {
		return Shard{1, 1}
	}
	return s
}

func (s Shard) String() string { s = s.norm(); return fmt.Sprintf("%d/%d", s.I, s.N) }

// Validate reports a shard that names no part of a range.
func (s Shard) Validate() error {
	if s == (Shard{}) {
		return nil
	}
	if s.N < 1 || s.I < 1 || s.I > s.N {
		return fmt.Errorf("shard %d/%d: want i/n with 1 <= i <= n", s.I, s.N)
	}
	return nil
}

// ParseShard reads "i/n".
func ParseShard(v string) (Shard, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(v), "/")
	if !ok {
		return Shard{}, fmt.Errorf("--shard %q: want i/n, e.g. 2/8", v)
	}
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("--shard %q: want i/n with whole numbers, e.g. 2/8", v)
	}
	s := Shard{i, n}
	if err := s.Validate(); err != nil {
		return Shard{}, fmt.Errorf("--shard %q: i must be in 1..n and n at least 1", v)
	}
	return s, nil
}

// Range is the inclusive seed range From..To.
type Range struct{ From, To uint64 }

func (r Range) String() string { return fmt.Sprintf("%d..%d", r.From, r.To) }

// ParseSeeds reads "A..B" (inclusive) or a single seed "A".
func ParseSeeds(v string) (Range, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return Range{}, errors.New("--seeds is required: A..B, e.g. 1..1000")
	}
	a, b, isRange := strings.Cut(v, "..")
	if !isRange {
		b = a
	}
	from, err := strconv.ParseUint(strings.TrimSpace(a), 10, 64)
	if err != nil {
		return Range{}, fmt.Errorf("--seeds %q: %q is not a seed (want A..B with whole numbers, e.g. 1..1000)", v, a)
	}
	to, err := strconv.ParseUint(strings.TrimSpace(b), 10, 64)
	if err != nil {
		return Range{}, fmt.Errorf("--seeds %q: %q is not a seed (want A..B with whole numbers, e.g. 1..1000)", v, b)
	}
	if to < from {
		return Range{}, fmt.Errorf("--seeds %q: the range is empty (%d > %d)", v, from, to)
	}
	return Range{from, to}, nil
}

// Count is how many seeds of the range the shard keeps (saturating at
// math.MaxUint64 for the whole 64-bit range).
func (s Shard) Count(r Range) uint64 {
	s = s.norm()
	off := uint64(s.I - 1)
	span := r.To - r.From
	if span < off {
		return 0
	}
	n := (span-off)/uint64(s.N) + 1
	if n == 0 {
		return math.MaxUint64
	}
	return n
}

// Seeds calls yield with every seed of the range the shard keeps, in order,
// until yield returns false.
func (s Shard) Seeds(r Range, yield func(uint64) bool) {
	s = s.norm()
	off := uint64(s.I - 1)
	if r.To-r.From < off {
		return
	}
	for seed := r.From + off; ; seed += uint64(s.N) {
		if !yield(seed) || r.To-seed < uint64(s.N) {
			return
		}
	}
}

// Keeps reports whether the shard keeps seed (of a range starting at from).
func (s Shard) Keeps(from, seed uint64) bool {
	s = s.norm()
	return seed >= from && (seed-from)%uint64(s.N) == uint64(s.I-1)
}

// ParseScenarios reads "all", a name, or a comma-separated list of names.
func ParseScenarios(v string) ([]scenarios.Scenario, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, errors.New("--scenario is required: a name, a comma-separated list, or all (see `sim list`)")
	}
	if v == "all" {
		return scenarios.All(), nil
	}
	var out []scenarios.Scenario
	seen := map[string]bool{}
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if seen[name] {
			continue
		}
		seen[name] = true
		sc, err := scenarios.Get(name)
		if err != nil {
			return nil, fmt.Errorf("--scenario: %w", err)
		}
		out = append(out, sc)
	}
	return out, nil
}

// Options describe one swarm.
type Options struct {
	Scenarios  []scenarios.Scenario
	Seeds      Range
	Shard      Shard
	Jobs       int           // worker goroutines (0: runtime.NumCPU())
	DurationMs int64         // workload duration override (0: each scenario's own)
	LinTimeout time.Duration // bound on each linearizability check
	OutDir     string

	// OnResult, if set, is called with every seed's result in (scenario,
	// seed) order, from one goroutine, as soon as every earlier seed is done.
	OnResult func(SeedResult)
	// OnProgress, if set, is called after every seed (in completion order)
	// with the seeds done, the total, and the failures so far, from one goroutine.
	OnProgress func(done, total, failed int)

	run func(sim.Config, uint64, time.Duration) (*sim.Result, error) // tests: instead of sim.Run
}

// Validate reports options that cannot run.
func (o *Options) Validate() error {
	switch {
	case len(o.Scenarios) == 0:
		return errors.New("swarm: no scenario")
	case o.Seeds.To < o.Seeds.From:
		return fmt.Errorf("swarm: empty seed range %s", o.Seeds)
	case o.Jobs < 0:
		return fmt.Errorf("swarm: --jobs %d must be at least 1", o.Jobs)
	case o.DurationMs < 0 || (o.DurationMs > 0 && o.DurationMs < 1000):
		return fmt.Errorf("swarm: --duration %s must be at least 1s", time.Duration(o.DurationMs)*time.Millisecond)
	case o.LinTimeout <= 0:
		return fmt.Errorf("swarm: --lin-timeout %s must be positive", o.LinTimeout)
	case o.OutDir == "":
		return errors.New("swarm: --out must name a directory")
	}
	if err := o.Shard.Validate(); err != nil {
		return fmt.Errorf("swarm: %w", err)
	}
	per := o.Shard.Count(o.Seeds)
	if per > MaxSeeds || per*uint64(len(o.Scenarios)) > MaxSeeds {
		return fmt.Errorf("swarm: %d scenario(s) x %d seed(s) is more than %d runs: split the range with --shard or smaller ranges",
			len(o.Scenarios), per, MaxSeeds)
	}
	return nil
}

// SeedResult is one seed's outcome, kept small: a swarm holds one per seed.
type SeedResult struct {
	Scenario   string   `json:"scenario"`
	Seed       uint64   `json:"seed"`
	Pass       bool     `json:"pass"`
	Line       string   `json:"line"`                 // the run's summary line; for an internal error, a FAIL line with the error
	Signature  []string `json:"signature,omitempty"`  // the checks that failed (see package shrink)
	Violations []string `json:"violations,omitempty"` // every violation, one line each
	Error      string   `json:"error,omitempty"`      // the simulator's error or panic (with its stack)
	Replay     string   `json:"replay,omitempty"`     // the replay file of a failing seed
	WallS      float64  `json:"wall_s"`

	start, end time.Time
	index      int // slot in (scenario, seed) order
}

// ScenarioSummary is one scenario of swarm.json.
type ScenarioSummary struct {
	Scenario string `json:"scenario"`
	SeedsRun int    `json:"seeds_run"`
	Passed   int    `json:"passed"`
	Failed   int    `json:"failed"`
	// Failing lists the failing seeds in seed order.
	Failing []SeedResult `json:"failing"`
	// WallS is the span from this scenario's first seed starting to its
	// last one finishing (scenarios run mostly one after another, in order).
	WallS float64 `json:"wall_s"`
	// RunS is the sum of the seeds' own wall times (compute, over all workers).
	RunS           float64 `json:"run_s"`
	SeedsPerMinute float64 `json:"seeds_per_minute"` // SeedsRun / WallS
}

// Totals sums a swarm.
type Totals struct {
	SeedsRun       int     `json:"seeds_run"`
	Passed         int     `json:"passed"`
	Failed         int     `json:"failed"`
	WallS          float64 `json:"wall_s"` // the whole swarm, start to end
	RunS           float64 `json:"run_s"`
	SeedsPerMinute float64 `json:"seeds_per_minute"`
}

// Summary is swarm.json.
type Summary struct {
	Version      int               `json:"version"`
	Pass         bool              `json:"pass"`     // every seed ran and passed
	Complete     bool              `json:"complete"` // false when the swarm was interrupted
	Seeds        string            `json:"seeds"`
	Shard        string            `json:"shard"`
	Jobs         int               `json:"jobs"`
	DurationMs   int64             `json:"duration_ms"` // 0: each scenario's own
	LinTimeoutMs int64             `json:"lin_timeout_ms"`
	Scenarios    []ScenarioSummary `json:"scenarios"`
	Totals       Totals            `json:"totals"`

	// Where the files went (not in swarm.json).
	JSONPath  string `json:"-"`
	JUnitPath string `json:"-"`
}

// SummaryVersion is the swarm.json format version.
const SummaryVersion = 1

// Failing lists every failing seed, in (scenario, seed) order.
func (s *Summary) Failing() []SeedResult {
	var out []SeedResult
	for _, sc := range s.Scenarios {
		out = append(out, sc.Failing...)
	}
	return out
}

// Line is the last line a swarm prints. An interrupted swarm does not pass.
func (s *Summary) Line() string {
	verdict := "PASS"
	if !s.Pass {
		verdict = "FAIL"
	}
	names := make([]string, len(s.Scenarios))
	for i, sc := range s.Scenarios {
		names[i] = sc.Scenario
	}
	line := fmt.Sprintf("SWARM %s scenarios=%s seeds=%d failed=%d wall=%.2fs",
		verdict, strings.Join(names, ","), s.Totals.SeedsRun, s.Totals.Failed, s.Totals.WallS)
	if !s.Complete {
		line += " interrupted"
	}
	return line
}

type job struct {
	index int
	sc    scenarios.Scenario
	seed  uint64
}

// Run runs the swarm, writes swarm.json, junit.xml and the replay files of
// failing seeds into o.OutDir, and returns the summary. A failing seed is not
// an error: Summary.Pass says. When ctx is cancelled no new seed starts; the
// seeds already running finish, the files are written for the seeds done
// (Complete false), and the context's error is returned with the summary.
func Run(ctx context.Context, o Options) (*Summary, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	jobs := o.Jobs
	if jobs == 0 {
		jobs = runtime.NumCPU()
	}
	if err := os.MkdirAll(filepath.Join(o.OutDir, ReplayDir), 0o755); err != nil {
		return nil, fmt.Errorf("swarm: output directory: %w", err)
	}
	total := 0
	for _, sc := range o.Scenarios {
		total += o.seedsOf(sc)
	}
	jobs = max(1, min(jobs, total))

	start := time.Now()
	todo := make(chan job)
	done := make(chan SeedResult)
	go func() {
		defer close(todo)
		i := 0
		for _, sc := range o.Scenarios {
			stop := false
			left := o.seedsOf(sc)
			o.Shard.Seeds(o.Seeds, func(seed uint64) bool {
				if left == 0 {
					return false // the scenario's seed cap
				}
				left--
				select {
				case todo <- job{i, sc, seed}:
					i++
					return true
				case <-ctx.Done():
					stop = true
					return false
				}
			})
			if stop {
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range todo {
				r := runSeed(j.sc, j.seed, o)
				r.index = j.index
				done <- r
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	// Collect: results go into their slot; OnResult sees them in order.
	results := make([]SeedResult, total)
	have := make([]bool, total)
	next, finished, failed := 0, 0, 0
	for r := range done {
		results[r.index], have[r.index] = r, true
		finished++
		if !r.Pass {
			failed++
		}
		if o.OnProgress != nil {
			o.OnProgress(finished, total, failed)
		}
		for next < total && have[next] {
			if o.OnResult != nil {
				o.OnResult(results[next])
			}
			if results[next].Pass {
				results[next].Line = "" // a pass needs no more than its slot in junit.xml
			}
			next++
		}
	}
	wall := time.Since(start)
	sum := summarize(o, results[:next], jobs, wall)
	sum.Complete = next == total
	sum.Pass = sum.Pass && sum.Complete
	if err := write(o, sum, results[:next], wall); err != nil {
		return sum, err
	}
	if !sum.Complete {
		err := ctx.Err()
		if err == nil {
			err = errors.New("swarm stopped early")
		}
		return sum, fmt.Errorf("swarm interrupted after %d of %d seeds (files cover those): %w", next, total, err)
	}
	return sum, nil
}

// seedsOf is how many seeds of sc the swarm runs: those the shard keeps of
// the range, at most the scenario's MaxSeeds (the first ones).
func (o *Options) seedsOf(sc scenarios.Scenario) int {
	n := o.Shard.Count(o.Seeds)
	if sc.MaxSeeds > 0 && n > uint64(sc.MaxSeeds) {
		n = uint64(sc.MaxSeeds)
	}
	return int(n)
}

// runSeed runs one seed; an error or a panic of the simulator is a failure of
// that seed, never dropped.
func runSeed(sc scenarios.Scenario, seed uint64, o Options) (out SeedResult) {
	r := &out
	r.Scenario, r.Seed, r.start = sc.Name, seed, time.Now()
	var cfg *sim.Config
	defer func() {
		if p := recover(); p != nil {
			internal(r, cfg, o, fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
		}
		r.end = time.Now()
		r.WallS = round(r.end.Sub(r.start).Seconds(), 4)
	}()
	c, err := sc.Config(seed, o.DurationMs)
	if err != nil {
		internal(r, nil, o, err)
		return out
	}
	cfg = &c
	run := sim.Run
	if o.run != nil {
		run = o.run
	}
	res, err := run(c, seed, o.LinTimeout)
	if err != nil {
		internal(r, cfg, o, err)
		return out
	}
	r.Pass, r.Line = res.Pass, res.Line()
	if res.Pass {
		return out
	}
	r.Signature = shrink.Signature(res)
	for i, v := range res.Violations {
		if i == MaxViolations {
			r.Violations = append(r.Violations, fmt.Sprintf("... and %d more violation(s): sim replay shows them all", len(res.Violations)-i))
			break
		}
		r.Violations = append(r.Violations, v.String())
	}
	for _, k := range res.ViolatingKeys {
		r.Violations = append(r.Violations, "linearizability on key "+k)
	}
	for _, v := range res.LogViolations {
		r.Violations = append(r.Violations, "logcheck: "+v)
	}
	if res.Linearizable != linearizability.VerdictOK && len(res.ViolatingKeys) == 0 {
		r.Violations = append(r.Violations, "linearizability: "+string(res.Linearizable))
	}
	path := replayPath(o.OutDir, sc.Name, seed)
	if err := replayfile.WriteResult(path, res); err != nil {
		r.Violations = append(r.Violations, "replay not written: "+err.Error())
	} else {
		r.Replay = path
	}
	return out
}

func internal(r *SeedResult, cfg *sim.Config, o Options, err error) {
	first, _, _ := strings.Cut(err.Error(), "\n")
	r.Pass = false
	r.Error = err.Error()
	r.Signature = []string{shrink.CheckInternalError}
	r.Line = fmt.Sprintf("FAIL scenario=%s seed=%d error=%q", r.Scenario, r.Seed, first)
	if cfg == nil {
		return // no configuration to replay
	}
	path := replayPath(o.OutDir, r.Scenario, r.Seed)
	res := &sim.Result{Scenario: r.Scenario, Seed: r.Seed, Config: *cfg}
	if werr := replayfile.WriteResult(path, res); werr != nil {
		r.Error += "\nreplay not written: " + werr.Error()
	} else {
		r.Replay = path
	}
}

func replayPath(dir, scenario string, seed uint64) string {
	return filepath.Join(dir, ReplayDir, fmt.Sprintf("%s-%d.json", scenario, seed))
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func perMinute(n int, s float64) float64 {
	if s <= 0 {
		return 0
	}
	return round(float64(n)/s*60, 1)
}

func summarize(o Options, results []SeedResult, jobs int, wall time.Duration) *Summary {
	sum := &Summary{Version: SummaryVersion, Pass: true, Seeds: o.Seeds.String(), Shard: o.Shard.String(), Jobs: jobs,
		DurationMs: o.DurationMs, LinTimeoutMs: o.LinTimeout.Milliseconds()}
	for _, sc := range o.Scenarios {
		s := ScenarioSummary{Scenario: sc.Name, Failing: []SeedResult{}}
		var first, last time.Time
		for _, r := range results {
			if r.Scenario != sc.Name {
				continue
			}
			s.SeedsRun++
			s.RunS += r.WallS
			if first.IsZero() || r.start.Before(first) {
				first = r.start
			}
			if r.end.After(last) {
				last = r.end
			}
			if r.Pass {
				s.Passed++
			} else {
				s.Failed++
				s.Failing = append(s.Failing, r)
			}
		}
		if s.SeedsRun > 0 {
			s.WallS = last.Sub(first).Seconds()
		}
		s.SeedsPerMinute = perMinute(s.SeedsRun, s.WallS)
		s.WallS, s.RunS = round(s.WallS, 3), round(s.RunS, 3)
		sum.Scenarios = append(sum.Scenarios, s)
		sum.Totals.SeedsRun += s.SeedsRun
		sum.Totals.Passed += s.Passed
		sum.Totals.Failed += s.Failed
		sum.Totals.RunS += s.RunS
	}
	sum.Totals.WallS = round(wall.Seconds(), 3)
	sum.Totals.RunS = round(sum.Totals.RunS, 3)
	sum.Totals.SeedsPerMinute = perMinute(sum.Totals.SeedsRun, wall.Seconds())
	sum.Pass = sum.Totals.Failed == 0
	return sum
}

func write(o Options, sum *Summary, results []SeedResult, wall time.Duration) error {
	sum.JSONPath = filepath.Join(o.OutDir, JSONFile)
	sum.JUnitPath = filepath.Join(o.OutDir, JUnitFile)
	data, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return fmt.Errorf("swarm: encode summary: %w", err)
	}
	if err := os.WriteFile(sum.JSONPath, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("swarm: write %s: %w", sum.JSONPath, err)
	}
	return reports.WriteJUnit(sum.JUnitPath, junit(o, sum, results, wall))
}

func junit(o Options, sum *Summary, results []SeedResult, wall time.Duration) reports.JUnitSuites {
	out := reports.JUnitSuites{Name: "sim swarm", Time: reports.JUnitSeconds(wall.Seconds())}
	for _, sc := range sum.Scenarios {
		suite := reports.JUnitSuite{Name: sc.Scenario, Time: reports.JUnitSeconds(sc.WallS),
			Properties: &reports.JUnitProperties{Property: []reports.JUnitProperty{
				{Name: "seeds", Value: sum.Seeds}, {Name: "shard", Value: sum.Shard},
				{Name: "duration_ms", Value: strconv.FormatInt(sum.DurationMs, 10)},
			}}}
		for _, r := range results {
			if r.Scenario != sc.Scenario {
				continue
			}
			c := reports.JUnitCase{Name: fmt.Sprintf("seed=%d", r.Seed), Classname: "sim.swarm." + r.Scenario,
				Time: reports.JUnitSeconds(r.WallS)}
			if r.Replay != "" {
				c.SystemOut = "reproduce: sim replay " + r.Replay
			}
			switch {
			case r.Error != "":
				c.Error = &reports.JUnitFailure{Message: r.Line, Type: shrink.CheckInternalError, Text: r.Error}
			case !r.Pass:
				c.Failure = &reports.JUnitFailure{Message: r.Line, Type: strings.Join(r.Signature, ","),
					Text: strings.Join(append(slices.Clone(r.Violations), r.Line), "\n")}
			}
			suite.Cases = append(suite.Cases, c)
		}
		out.Suites = append(out.Suites, suite)
	}
	return out
}
