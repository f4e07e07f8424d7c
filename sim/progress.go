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

// wasDown: the host was not running at some point of [from, to).
func (c *progressChecker) wasDown(h model.HostID, fromUs, toUs int64) bool {
	for _, s := range c.down[h] {
		if s.fromUs < toUs && (s.toUs == 0 || s.toUs > fromUs) {
			return true
		}
	}
	return false
}

func (c *progressChecker) Final(v *View) []invariants.Violation {
	cfg := v.Config()
	var out []invariants.Violation
	violate := func(format string, args ...any) {
		out = append(out, invariants.Violation{Invariant: Progress, AtUs: v.NowUs(), Detail: fmt.Sprintf(format, args...)})
	}
	if len(cfg.Schedule.Faults) == 0 && !cfg.Migration.faulty() && c.unknown > 0 {
		violate("%d operation(s) of %d ended with an unknown outcome in a run without faults", c.unknown, c.called)
	}
	over := func(n int, limitPM int64) bool { return int64(n)*1_000_000 > limitPM*int64(c.called) }
	for _, b := range []struct {
		what    string
		n       int
		limitPM int64
	}{
		{"unknown outcomes", c.unknown, c.lim.MaxUnknownPM},
		{"final busy answers", c.stats.FinalBusy, c.lim.MaxBusyPM},
		{"final unavailable answers", c.stats.FinalUnavailable, c.lim.MaxUnavailablePM},
		{"busy replies", c.stats.BusyReplies, c.lim.MaxBusyRepliesPM},
		{"unavailable replies", c.stats.UnavailableReplies, c.lim.MaxUnavailRepliesPM},
	} {
		if over(b.n, b.limitPM) {
			violate("%d %s for %d operations: more than the scenario's bound of %d per million", b.n, b.what, c.called, b.limitPM)
		}
	}
	startUs, endUs, winUs := cfg.HealedMs()*1000, cfg.IssueEndMs()*1000, c.lim.WindowMs*1000
	c.stats.MinWindowOps = -1
	for _, cl := range v.Clients() {
		times := c.answers[cl]
		i, failed, first := 0, 0, ""
		for from := startUs; from+winUs <= endUs; from += winUs {
			for i < len(times) && times[i] < from {
				i++
			}
			if c.wasDown(cl, from, from+winUs) {
				continue // a client that is not running issues nothing
			}
			n := 0
			for j := i; j < len(times) && times[j] < from+winUs; j++ {
				n++
			}
			c.stats.Windows++
			if c.stats.MinWindowOps < 0 || n < c.stats.MinWindowOps {
				c.stats.MinWindowOps = n
			}
			if n < c.lim.MinOps {
				if failed == 0 {
					first = fmt.Sprintf("%d in %.1fs..%.1fs", n, float64(from)/1e6, float64(from+winUs)/1e6)
				}
				failed++
			}
		}
		if failed > 0 {
			violate("client %s completed fewer than %d operations with a final answer in %d window(s) of %dms after the faults healed (first: %s)",
				v.HostName(cl), c.lim.MinOps, failed, c.lim.WindowMs, first)
		}
		if c.wasDown(cl, endUs-winUs, endUs) {
			continue
		}
		last := int64(0)
		if len(times) > 0 {
			last = times[len(times)-1]
		}
		age := max(0, endUs-last) / 1000
		c.stats.LastAnswerAgeMs = max(c.stats.LastAnswerAgeMs, age)
		if age > c.lim.WindowMs {
			violate("client %s: its last final answer is %dms old when the workload stops (bound %dms)", v.HostName(cl), age, c.lim.WindowMs)
		}
	}
	c.stats.MinWindowOps = max(c.stats.MinWindowOps, 0)
	return out
}

func (c *progressChecker) Report(o *Outcome) { o.Progress = c.stats }
