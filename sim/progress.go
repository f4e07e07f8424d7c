package sim

import (
	"fmt"

	"territory/model"
	"territory/sim/invariants"
)

// Progress is the liveness mode of the checks, as in TigerBeetle's VOPR: a
// store that answers nothing, answers late, or answers only "busy" or
// "unavailable" fails it in every scenario. See ProgressBounds for what it
// promises; it does not judge which answers are right (linearizability does).
const Progress = "progress"

// ProgressStats are the run's answers that are not progress, for report.json.
type ProgressStats struct {
	FinalBusy          int   `json:"final_busy"`             // operations that ended busy (the client refused them)
	FinalUnavailable   int   `json:"final_unavailable"`      // operations that ended unavailable
	BusyReplies        int   `json:"busy_replies"`           // busy replies clients saw and retried
	UnavailableReplies int   `json:"unavailable_replies"`    // unavailable replies clients saw and retried
	Windows            int   `json:"windows"`                // progress windows judged after the faults healed
	MinWindowOps       int   `json:"min_window_ops"`         // the fewest final answers one client had in one window
	LastAnswerAgeMs    int64 `json:"last_answer_max_age_ms"` // the oldest last final answer of a client when the workload stopped
}

type progressChecker struct {
	lim     ProgressBounds
	called  int
	unknown int
	stats   ProgressStats
	answers map[model.HostID][]int64 // virtual times of final answers from the store
	down    map[model.HostID][]span  // when a client was not running
}

type span struct{ fromUs, toUs int64 } // toUs 0: still open

func newProgressChecker(v *View) Checker {
	return &progressChecker{lim: v.Config().ProgressLimits(), answers: map[model.HostID][]int64{}, down: map[model.HostID][]span{}}
}

func (*progressChecker) Name() string { return Progress }

func (c *progressChecker) Observe(v *View, e BusEvent) {
	switch e := e.(type) {
	case OpCalled:
		c.called++
	case OpReturned:
		d := e.Done
		switch {
		case d.Unknown:
			c.unknown++
		case d.Result.Status == model.StatusBusy:
			c.stats.FinalBusy++
		case d.Result.Status == model.StatusUnavailable:
			c.stats.FinalUnavailable++
		default:
			if _, sent := toLinOutput(d); sent {
				c.answers[e.Client] = append(c.answers[e.Client], v.NowUs())
			}
		}
	case ReplySeen:
		switch e.Reply.Result.Status {
		case model.StatusBusy:
			c.stats.BusyReplies++
		case model.StatusUnavailable:
			c.stats.UnavailableReplies++
		}
	case HostChanged:
		spans := c.down[e.Host]
		open := len(spans) > 0 && spans[len(spans)-1].toUs == 0
		switch e.Change {
		case HostCrashed, HostLost, HostPaused:
			if !open {
				c.down[e.Host] = append(spans, span{fromUs: v.NowUs()})
			}
		case HostBooted, HostResumed:
			if open {
				spans[len(spans)-1].toUs = v.NowUs()
			}
		}
	}
}

func (c *progressChecker) Final(v *View) []invariants.Violation {
	cfg := v.Config()
	r := ProgressRecord{Limits: c.lim, Faulty: len(cfg.Schedule.Faults) > 0 || cfg.Migration.faulty(), Called: c.called, Unknown: c.unknown, Stats: c.stats,
		Answers: map[string][]int64{}, Down: map[string][]Span{},
		StartUs: cfg.HealedMs() * 1000, EndUs: cfg.IssueEndMs() * 1000, NowUs: v.NowUs()}
	for _, cl := range v.Clients() {
		name := v.HostName(cl)
		r.Clients = append(r.Clients, name)
		r.Answers[name] = c.answers[cl]
		for _, s := range c.down[cl] {
			r.Down[name] = append(r.Down[name], Span{FromUs: s.fromUs, ToUs: s.toUs})
		}
	}
	var out []invariants.Violation
	c.stats, out = CheckProgress(r)
	return out
}

// ProgressRecord is what the progress check judges: the simulator's clients
// as its bus saw them, or the real clients of a chaos run (cmd/sim chaos).
type ProgressRecord struct {
	Limits          ProgressBounds
	Faulty          bool // the run had a fault schedule
	Called, Unknown int  // operations issued, and those that ended with an unknown outcome
	// Stats holds the busy and unavailable counts; CheckProgress fills in
	// the window figures.
	Stats   ProgressStats
	Clients []string
	Answers map[string][]int64 // per client, the times of its final answers from the store, ascending
	Down    map[string][]Span  // per client, when it was not running
	// StartUs is when progress is due (the last fault healed plus the
	// bound), EndUs when the workload stopped issuing, NowUs the time of the
	// verdict.
	StartUs, EndUs, NowUs int64
}

// Span is a stretch of time; ToUs 0: still open.
type Span struct{ FromUs, ToUs int64 }

// wasDown: the client was not running at some point of [from, to).
func wasDown(spans []Span, fromUs, toUs int64) bool {
	for _, s := range spans {
		if s.FromUs < toUs && (s.ToUs == 0 || s.ToUs > fromUs) {
			return true
		}
	}
	return false
}

// CheckProgress judges a run's progress (see ProgressBounds) and returns its
// figures and violations.
func CheckProgress(r ProgressRecord) (ProgressStats, []invariants.Violation) {
	stats, lim := r.Stats, r.Limits
	var out []invariants.Violation
	violate := func(format string, args ...any) {
		out = append(out, invariants.Violation{Invariant: Progress, AtUs: r.NowUs, Detail: fmt.Sprintf(format, args...)})
	}
	if !r.Faulty && r.Unknown > 0 {
		violate("%d operation(s) of %d ended with an unknown outcome in a run without faults", r.Unknown, r.Called)
	}
	over := func(n int, limitPM int64) bool { return int64(n)*1_000_000 > limitPM*int64(r.Called) }
	for _, b := range []struct {
		what    string
		n       int
		limitPM int64
	}{
		{"unknown outcomes", r.Unknown, lim.MaxUnknownPM},
		{"final busy answers", stats.FinalBusy, lim.MaxBusyPM},
		{"final unavailable answers", stats.FinalUnavailable, lim.MaxUnavailablePM},
		{"busy replies", stats.BusyReplies, lim.MaxBusyRepliesPM},
		{"unavailable replies", stats.UnavailableReplies, lim.MaxUnavailRepliesPM},
	} {
		if over(b.n, b.limitPM) {
			violate("%d %s for %d operations: more than the scenario's bound of %d per million", b.n, b.what, r.Called, b.limitPM)
		}
	}
	startUs, endUs, winUs := r.StartUs, r.EndUs, lim.WindowMs*1000
	stats.Windows, stats.MinWindowOps, stats.LastAnswerAgeMs = 0, -1, 0
	for _, cl := range r.Clients {
		times, down := r.Answers[cl], r.Down[cl]
		i, failed, first := 0, 0, ""
		for from := startUs; from+winUs <= endUs; from += winUs {
			for i < len(times) && times[i] < from {
				i++
			}
			if wasDown(down, from, from+winUs) {
				continue // a client that is not running issues nothing
			}
			n := 0
			for j := i; j < len(times) && times[j] < from+winUs; j++ {
				n++
			}
			stats.Windows++
			if stats.MinWindowOps < 0 || n < stats.MinWindowOps {
				stats.MinWindowOps = n
			}
			if n < lim.MinOps {
				if failed == 0 {
					first = fmt.Sprintf("%d in %.1fs..%.1fs", n, float64(from)/1e6, float64(from+winUs)/1e6)
				}
				failed++
			}
		}
		if failed > 0 {
			violate("client %s completed fewer than %d operations with a final answer in %d window(s) of %dms after the faults healed (first: %s)",
				cl, lim.MinOps, failed, lim.WindowMs, first)
		}
		if wasDown(down, endUs-winUs, endUs) {
			continue
		}
		last := int64(0)
		if len(times) > 0 {
			last = times[len(times)-1]
		}
		age := max(0, endUs-last) / 1000
		stats.LastAnswerAgeMs = max(stats.LastAnswerAgeMs, age)
		if age > lim.WindowMs {
			violate("client %s: its last final answer is %dms old when the workload stops (bound %dms)", cl, age, lim.WindowMs)
		}
	}
	stats.MinWindowOps = max(stats.MinWindowOps, 0)
	return stats, out
}

func (c *progressChecker) Report(o *Outcome) { o.Progress = c.stats }

// wasDown: host h was not running at some point of [from, to).
func (c *progressChecker) wasDown(h model.HostID, fromUs, toUs int64) bool {
	spans := make([]Span, len(c.down[h]))
	for i, s := range c.down[h] {
		spans[i] = Span{FromUs: s.fromUs, ToUs: s.toUs}
	}
	return wasDown(spans, fromUs, toUs)
}
