// Package loadgen is the load generator behind `territoryd bench`: N
// concurrent workers issue a seeded mix of client operations through a
// client (a daemon.Client, or anything with its Do), for a duration or an
// operation count, and report throughput, outcomes by kind and latency
// histograms (HdrHistogram) per operation.
package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"territory/model"
)

// Doer runs one client operation and waits for its final answer
// (daemon.Client and driver.Client are Doers); Run is told which of its
// errors are unknown outcomes.
type Doer interface {
	Do(ctx context.Context, req model.Request) (model.Request, model.Result, error)
}

// Mix weighs the operations.
type Mix map[model.OpKind]int

// DefaultMix is a write-heavy mix with every operation.
func DefaultMix() Mix {
	return Mix{model.OpCreateNeuron: 5, model.OpStimulate: 35, model.OpReadNeuron: 25, model.OpConnect: 10,
		model.OpAdjustWeight: 10, model.OpPrune: 5, model.OpReadSynapse: 10}
}

// ParseMix reads "stimulate=35,read-neuron=25,..." (operation names as
// model.OpKind prints them).
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("mix %q: want op=weight, got %q", s, part)
		}
		var op model.OpKind
		for k := model.OpCreateNeuron; k.Valid(); k++ {
			if k.String() == name {
				op = k
			}
		}
		if op == 0 {
			return nil, fmt.Errorf("mix %q: unknown operation %q", s, name)
		}
		var n int
		if _, err := fmt.Sscanf(w, "%d", &n); err != nil || n < 0 || n > 1_000_000 {
			return nil, fmt.Errorf("mix %q: weight of %s must be an integer 0..1000000, got %q", s, name, w)
		}
		m[op] = n
	}
	return m, m.validate()
}

func (m Mix) validate() error {
	total := 0
	for _, w := range m {
		total += w
	}
	if total == 0 {
		return fmt.Errorf("mix: every weight is zero")
	}
	return nil
}

// Config is one load run.
type Config struct {
	Workers   int           // concurrent operations
	Duration  time.Duration // stop issuing after this long (0: until Ops)
	Ops       int64         // stop after this many operations (0: until Duration)
	Neurons   int           // neuron ids 1..Neurons, created before the run
	Mix       Mix
	Seed      uint64
	OpTimeout time.Duration
	// Progress, if set, is told every finished operation (a progress bar).
	Progress func()
}

func (c *Config) validate() error {
	switch {
	case c.Workers <= 0 || c.Workers > 4096:
		return fmt.Errorf("bench: workers must be 1..4096, got %d", c.Workers)
	case c.Duration <= 0 && c.Ops <= 0:
		return fmt.Errorf("bench: give a duration or an operation count")
	case c.Duration < 0 || c.Ops < 0:
		return fmt.Errorf("bench: negative duration or count")
	case c.Neurons <= 0 || c.Neurons > 10_000_000:
		return fmt.Errorf("bench: neurons must be 1..10000000, got %d", c.Neurons)
	case c.OpTimeout <= 0:
		return fmt.Errorf("bench: the operation timeout must be positive")
	}
	return c.Mix.validate()
}

// OpStats are one operation's figures.
type OpStats struct {
	Count    int64            `json:"count"`
	Outcomes map[string]int64 `json:"outcomes"` // ok, not-found, rejected (REASON), unknown, error
	P50Ms    float64          `json:"p50_ms"`
	P90Ms    float64          `json:"p90_ms"`
	P99Ms    float64          `json:"p99_ms"`
	MaxMs    float64          `json:"max_ms"`
	hist     *hdrhistogram.Histogram
}

// Report is the outcome of a run.
type Report struct {
	Workers      int                 `json:"workers"`
	WallSeconds  float64             `json:"wall_seconds"`
	Ops          int64               `json:"ops"`
	OpsPerSecond float64             `json:"ops_per_second"`
	Errors       int64               `json:"errors"`    // transport or client errors (not final answers)
	Unknown      int64               `json:"unknown"`   // no final answer before the deadline
	ByOp         map[string]*OpStats `json:"by_op"`     // by operation name
	All          *OpStats            `json:"all"`       // every operation
	SetupOps     int                 `json:"setup_ops"` // neurons created (or found) before the run
}

func newStats() *OpStats {
	// 1 µs .. 60 s, 3 significant figures.
	return &OpStats{Outcomes: map[string]int64{}, hist: hdrhistogram.New(1, 60_000_000, 3)}
}

func (s *OpStats) add(o *OpStats) {
	s.Count += o.Count
	for k, v := range o.Outcomes {
		s.Outcomes[k] += v
	}
	s.hist.Merge(o.hist)
}

func (s *OpStats) finish() {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	s.P50Ms, s.P90Ms, s.P99Ms = ms(s.hist.ValueAtQuantile(50)), ms(s.hist.ValueAtQuantile(90)), ms(s.hist.ValueAtQuantile(99))
	s.MaxMs = ms(s.hist.Max())
}

// outcome names a final answer or an error for the report.
func outcome(r model.Result, err error, unknown func(error) bool) string {
	switch {
	case err != nil && unknown(err):
		return "unknown"
	case err != nil:
		return "error"
	case r.Reason != model.ReasonNone:
		return r.Status.String() + " (" + r.Reason.String() + ")"
	}
	return r.Status.String()
}

// Run creates the neurons, then runs the load, and reports. unknown says
// which errors of the Doer are unknown outcomes.
func Run(ctx context.Context, cfg Config, d Doer, unknown func(error) bool) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rep := &Report{Workers: cfg.Workers, ByOp: map[string]*OpStats{}, All: newStats()}
	if err := setup(ctx, cfg, d, rep); err != nil {
		return rep, err
	}
	ops := make([]model.OpKind, 0, len(cfg.Mix))
	for op := range cfg.Mix {
		ops = append(ops, op)
	}
	slices.Sort(ops) // the draw depends on the seed only
	var issued atomic.Int64
	runCtx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	per := make([]map[model.OpKind]*OpStats, cfg.Workers)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		per[w] = map[model.OpKind]*OpStats{}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(w)+1))
			for runCtx.Err() == nil {
				if cfg.Ops > 0 && issued.Add(1) > cfg.Ops {
					return
				}
				req := draw(rng, &cfg, ops)
				octx, cancel := context.WithTimeout(ctx, cfg.OpTimeout)
				t0 := time.Now()
				_, r, err := d.Do(octx, req)
				lat := time.Since(t0)
				cancel()
				st := per[w][req.Op]
				if st == nil {
					st = newStats()
					per[w][req.Op] = st
				}
				st.Count++
				st.Outcomes[outcome(r, err, unknown)]++
				_ = st.hist.RecordValue(max(1, lat.Microseconds()))
				if cfg.Progress != nil {
					cfg.Progress()
				}
			}
		}(w)
	}
	wg.Wait()
	rep.WallSeconds = time.Since(start).Seconds()
	for _, m := range per {
		for op, st := range m {
			all := rep.ByOp[op.String()]
			if all == nil {
				all = newStats()
				rep.ByOp[op.String()] = all
			}
			all.add(st)
			rep.All.add(st)
		}
	}
	for _, st := range rep.ByOp {
		st.finish()
	}
	rep.All.finish()
	rep.Ops = rep.All.Count
	rep.Errors, rep.Unknown = rep.All.Outcomes["error"], rep.All.Outcomes["unknown"]
	if rep.WallSeconds > 0 {
		rep.OpsPerSecond = float64(rep.Ops) / rep.WallSeconds
	}
	return rep, nil
}

// setup creates neurons 1..Neurons (already-exists counts as done).
func setup(ctx context.Context, cfg Config, d Doer, rep *Report) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := atomic.Int64{}
	for range min(cfg.Workers, 64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(cfg.Neurons) || ctx.Err() != nil {
					return
				}
				octx, cancel := context.WithTimeout(ctx, cfg.OpTimeout)
				_, r, err := d.Do(octx, model.Request{Op: model.OpCreateNeuron, Neuron: model.NeuronID(n)})
				cancel()
				mu.Lock()
				if err == nil && (r.Status == model.StatusOK || r.Status == model.StatusAlreadyExists) {
					rep.SetupOps++
				} else if firstErr == nil {
					firstErr = fmt.Errorf("bench setup: create neuron %d: %s %v", n, r.Status, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func draw(rng *rand.Rand, cfg *Config, ops []model.OpKind) model.Request {
	total := 0
	for _, op := range ops {
		total += cfg.Mix[op]
	}
	pick := rng.IntN(total)
	var op model.OpKind
	for _, o := range ops {
		if pick < cfg.Mix[o] {
			op = o
			break
		}
		pick -= cfg.Mix[o]
	}
	n := func() model.NeuronID { return model.NeuronID(1 + rng.IntN(cfg.Neurons)) }
	req := model.Request{Op: op}
	switch op {
	case model.OpCreateNeuron, model.OpReadNeuron:
		req.Neuron = n()
	case model.OpStimulate:
		req.Neuron, req.Value = n(), int64(rng.IntN(9)-4)*model.FixedOne/4
	default:
		req.Pre, req.Post = n(), n()
		req.Value = int64(1+rng.IntN(16)) * model.FixedOne / 8
	}
	return req
}

// Summary renders the report for a terminal.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d ops in %.1fs by %d workers: %.0f ops/s; %d unknown, %d errors\n", r.Ops, r.WallSeconds, r.Workers, r.OpsPerSecond, r.Unknown, r.Errors)
	names := make([]string, 0, len(r.ByOp))
	for n := range r.ByOp {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(&b, "%-14s %8s %9s %9s %9s %9s  outcomes\n", "op", "count", "p50 ms", "p90 ms", "p99 ms", "max ms")
	row := func(name string, s *OpStats) {
		outs := make([]string, 0, len(s.Outcomes))
		for k, v := range s.Outcomes {
			outs = append(outs, fmt.Sprintf("%s=%d", k, v))
		}
		sort.Strings(outs)
		fmt.Fprintf(&b, "%-14s %8d %9.2f %9.2f %9.2f %9.2f  %s\n", name, s.Count, s.P50Ms, s.P90Ms, s.P99Ms, s.MaxMs, strings.Join(outs, " "))
	}
	for _, n := range names {
		row(n, r.ByOp[n])
	}
	row("all", r.All)
	return b.String()
}
