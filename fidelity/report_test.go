package fidelity

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// LongVar runs the long mode: 10,000 sequences per service.
const LongVar = "TERRITORY_FIDELITY_LONG"

// OutVar names the directory the agreement reports go to (default out/fidelity
// at the repository root).
const OutVar = "TERRITORY_FIDELITY_OUT"

// sequences is the number of sequences a test runs: short under -short, ci
// otherwise (at least 500: what CI runs), 10,000 in the long mode.
func sequences(short, ci int) int {
	switch {
	case os.Getenv(LongVar) == "1":
		return 10_000
	case testing.Short():
		return short
	}
	return ci
}

// classCount is one class of operation: how many were compared, how many
// agreed, and how many differed in a way the README lists as a deliberate
// abstraction (documented, never counted as agreeing).
type classCount struct {
	Agree      int `json:"agree"`
	Documented int `json:"documented_difference"`
	Total      int `json:"total"`
}

type tally map[string]*classCount

func (t tally) add(class string, agree, documented bool) {
	c := t[class]
	if c == nil {
		c = &classCount{}
		t[class] = c
	}
	c.Total++
	if agree {
		c.Agree++
	} else if documented {
		c.Documented++
	}
}

func (t tally) merge(o tally) {
	for k, v := range o {
		c := t[k]
		if c == nil {
			c = &classCount{}
			t[k] = c
		}
		c.Agree += v.Agree
		c.Documented += v.Documented
		c.Total += v.Total
	}
}

func fromPairs(m map[string][2]int) tally {
	t := tally{}
	for k, v := range m {
		t[k] = &classCount{Agree: v[0], Total: v[1]}
	}
	return t
}

// fidelityReport is what each test writes to <out>/<service>.json.
type fidelityReport struct {
	Service     string                 `json:"service"`
	What        string                 `json:"what"`
	Sequences   int                    `json:"sequences"`
	Operations  int                    `json:"operations"`
	Agree       int                    `json:"agree"`
	Documented  int                    `json:"documented_difference"`
	Differ      int                    `json:"differ"`
	Rate        float64                `json:"agreement_rate"`
	WallSeconds float64                `json:"wall_seconds"`
	LoadAvg     string                 `json:"load_average"`
	Classes     map[string]*classCount `json:"classes"`
	Differences []string               `json:"differences,omitempty"`
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// report prints the agreement table (per class and in total), writes it as
// JSON under the out directory, and fails the test on every undocumented
// difference.
func report(t *testing.T, service, what string, seqs int, wall time.Duration, tl tally, diffs []string) {
	t.Helper()
	r := fidelityReport{Service: service, What: what, Sequences: seqs, WallSeconds: wall.Seconds(), LoadAvg: loadAvg(), Classes: tl, Differences: diffs}
	var lines []string
	lines = append(lines, fmt.Sprintf("  %-40s %7s %7s %7s %8s", "class", "agree", "documt", "total", "rate"))
	for _, c := range sortedKeys(tl) {
		v := tl[c]
		r.Operations += v.Total
		r.Agree += v.Agree
		r.Documented += v.Documented
		lines = append(lines, fmt.Sprintf("  %-40s %7d %7d %7d %7.2f%%", c, v.Agree, v.Documented, v.Total, pct(v.Agree, v.Total)))
	}
	r.Differ = r.Operations - r.Agree - r.Documented
	r.Rate = float64(r.Agree) / float64(max(r.Operations, 1))
	lines = append(lines, fmt.Sprintf("  %-40s %7d %7d %7d %7.2f%%", "all", r.Agree, r.Documented, r.Operations, pct(r.Agree, r.Operations)))
	t.Logf("%s: %d sequences, %d/%d operations agree (%d documented differences, %d undocumented) in %.1f s, load average %s\n%s",
		what, seqs, r.Agree, r.Operations, r.Documented, r.Differ, r.WallSeconds, r.LoadAvg, strings.Join(lines, "\n"))
	dir := os.Getenv(OutVar)
	if dir == "" {
		dir = filepath.Join("..", "out", "fidelity")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("report: %v", err)
	} else if b, err := json.MarshalIndent(r, "", "  "); err != nil {
		t.Errorf("report: %v", err)
	} else if err := os.WriteFile(filepath.Join(dir, service+".json"), append(b, '\n'), 0o644); err != nil {
		t.Errorf("report: %v", err)
	}
	for _, d := range diffs {
		t.Error(d)
	}
	if r.Differ > 0 && len(diffs) == 0 {
		t.Errorf("%d operations differ and no difference was described", r.Differ)
	}
}

func pct(a, b int) float64 {
	if b == 0 {
		return 100
	}
	return 100 * float64(a) / float64(b)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
