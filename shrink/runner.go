package shrink

import (
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"territory/replayfile"
	"territory/sim"
)

// Run is what one simulated candidate found, kept by Runner.
type Run struct {
	Failed    bool
	Signature []string
	Ops       int
	Trace     string
	Line      string // the run's summary line (sim.Result.Line, or a FAIL line with the error)
	Err       string // the simulator's error or panic, when it had one
}

// Runner is the real predicate: it runs candidates with sim.Run for one seed
// and remembers, per configuration, the op count, trace and summary line, so
// that the caller can bound the op search and write the shrunk replay.
//
// An error or a panic of the simulator is a failure with the signature
// "internal-error" (a run that crashes the simulator is a bug to shrink too).
type Runner struct {
	Seed       uint64
	LinTimeout time.Duration
	runs       map[string]Run
}

// NewRunner returns a runner for a seed.
func NewRunner(seed uint64, linTimeout time.Duration) *Runner {
	return &Runner{Seed: seed, LinTimeout: linTimeout, runs: map[string]Run{}}
}

// Predicate runs cfg (once per distinct configuration) and judges it.
func (r *Runner) Predicate(cfg sim.Config) (bool, []string, error) {
	run := r.Judge(cfg)
	return run.Failed, run.Signature, nil
}

// Judge runs cfg, or returns what its earlier run found.
func (r *Runner) Judge(cfg sim.Config) Run {
	k := key(cfg)
	if run, ok := r.runs[k]; ok {
		return run
	}
	run := r.run(cfg)
	r.runs[k] = run
	return run
}

func (r *Runner) run(cfg sim.Config) (run Run) {
	defer func() {
		if p := recover(); p != nil {
			run = r.internal(cfg, fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
		}
	}()
	res, err := sim.Run(cfg, r.Seed, r.LinTimeout)
	if err != nil {
		return r.internal(cfg, err)
	}
	return Run{Failed: !res.Pass, Signature: Signature(res), Ops: res.Ops, Trace: res.Trace, Line: res.Line()}
}

func (r *Runner) internal(cfg sim.Config, err error) Run {
	first, _, _ := strings.Cut(err.Error(), "\n")
	return Run{Failed: true, Signature: []string{CheckInternalError}, Err: err.Error(),
		Line: fmt.Sprintf("FAIL scenario=%s seed=%d error=%q", cfg.Scenario, r.Seed, first)}
}

// Ops is the op count of cfg's run (0 if it has not run).
func (r *Runner) Ops(cfg sim.Config) int { return r.runs[key(cfg)].Ops }

// Lookup returns what cfg's run found, if it ran.
func (r *Runner) Lookup(cfg sim.Config) (Run, bool) {
	run, ok := r.runs[key(cfg)]
	return run, ok
}

// WriteReplay writes a replay file for cfg on this runner's seed, with the
// trace of its run when it ran.
func (r *Runner) WriteReplay(path string, cfg sim.Config) error {
	res := &sim.Result{Scenario: cfg.Scenario, Seed: r.Seed, Config: cfg, Trace: r.runs[key(cfg)].Trace}
	return replayfile.WriteResult(path, res)
}
