package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"territory/faults"
	"territory/reports"
)

// Files of a chaos report directory.
const (
	JSONFile     = "report.json"
	MarkdownFile = "summary.md"
	HistoryFile  = "history.html"
	ReplayFile   = "replay.json"
)

// ReplayVersion is the chaos replay file's format version.
const ReplayVersion = 1

// Replay is a chaos replay file: what a replay re-runs (see ReplayNote).
type Replay struct {
	Version  int             `json:"version"`
	Mode     string          `json:"mode"` // "chaos"
	Note     string          `json:"note"`
	Scenario string          `json:"scenario"`
	Seed     uint64          `json:"seed"`
	Schedule faults.Schedule `json:"schedule"`
}

// ReadReplay reads and checks a chaos replay file; its schedule is checked
// against its scenario when it runs.
func ReadReplay(path string) (*Replay, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read replay: %w", err)
	}
	var rp Replay
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rp); err != nil {
		return nil, fmt.Errorf("replay %s: %w", path, err)
	}
	if rp.Version != ReplayVersion || rp.Mode != "chaos" {
		return nil, fmt.Errorf("replay %s: version %d mode %q, this binary reads chaos replays of version %d (a simulation replay runs with `sim replay`)", path, rp.Version, rp.Mode, ReplayVersion)
	}
	return &rp, nil
}

// Written lists the files WriteReports wrote.
type Written struct{ JSON, Markdown, JUnit, History, Replay string }

// WriteReports writes report.json, summary.md, junit.xml and replay.json
// into dir, and history.html (porcupine's picture, about 300 bytes per
// operation) when the run failed or history is set.
func WriteReports(dir string, r *Result, history bool) (Written, error) {
	w := Written{JSON: filepath.Join(dir, JSONFile), Markdown: filepath.Join(dir, MarkdownFile), JUnit: filepath.Join(dir, reports.JUnitFile),
		History: filepath.Join(dir, HistoryFile), Replay: filepath.Join(dir, ReplayFile)}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return w, err
	}
	write := func(path string, v any) error {
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(path, append(data, '\n'), 0o644)
	}
	if err := write(w.JSON, r); err != nil {
		return w, err
	}
	if err := write(w.Replay, Replay{Version: ReplayVersion, Mode: "chaos", Note: ReplayNote, Scenario: r.Scenario, Seed: r.Seed, Schedule: r.Schedule}); err != nil {
		return w, err
	}
	if err := os.WriteFile(w.Markdown, []byte(Markdown(r)), 0o644); err != nil {
		return w, err
	}
	if err := reports.WriteJUnit(w.JUnit, JUnit(r)); err != nil {
		return w, err
	}
	if r.Error == "" && (!r.Pass || history) {
		if err := r.lin.WriteHTML(w.History); err != nil {
			return w, fmt.Errorf("write %s: %w", w.History, err)
		}
	} else {
		w.History = ""
	}
	return w, nil
}

// JUnit is the run as a JUnit report: one case per check, one per fault.
func JUnit(r *Result) reports.JUnitSuites {
	s := reports.JUnitSuite{Name: fmt.Sprintf("sim chaos %s seed %d", r.Scenario, r.Seed), Time: reports.JUnitSeconds(r.WallMs / 1000),
		Properties: &reports.JUnitProperties{Property: []reports.JUnitProperty{{Name: "replay", Value: ReplayNote},
			{Name: "load_before", Value: r.LoadBefore}, {Name: "load_after", Value: r.LoadAfter}}}}
	cls := "sim.chaos." + r.Scenario
	add := func(name string, failed bool, msg string) {
		c := reports.JUnitCase{Name: name, Classname: cls}
		if failed {
			c.Failure = &reports.JUnitFailure{Message: msg, Type: name, Text: msg}
		}
		s.Cases = append(s.Cases, c)
	}
	if r.Error != "" {
		s.Cases = append(s.Cases, reports.JUnitCase{Name: "run", Classname: cls, Error: &reports.JUnitFailure{Message: r.Error, Text: r.Error}})
	} else {
		add("linearizable", r.Linearizable != "ok", fmt.Sprintf("porcupine: %s on %v", r.Linearizable, r.ViolatingKeys))
		add("logcheck", r.LogCheck != "ok", strings.Join(r.LogViolations, "\n"))
		for _, inv := range []string{"no-acked-write-lost", "state-is-fold-of-log", "degree-policy", "single-writer-epoch", "progress"} {
			var msgs []string
			for _, v := range r.Violations {
				if v.Invariant == inv {
					msgs = append(msgs, v.String())
				}
			}
			add(inv, len(msgs) > 0, strings.Join(msgs, "\n"))
		}
	}
	for i, f := range r.Faults {
		add(fmt.Sprintf("fault %d: %s", i, f.Fault), f.Err != "", f.Err)
	}
	return reports.JUnitSuites{Name: "sim chaos", Suites: []reports.JUnitSuite{s}}
}

// Markdown is the run's human summary.
func Markdown(r *Result) string {
	var b strings.Builder
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "# %s: `sim chaos`, scenario `%s`, seed %d\n\n", verdict, r.Scenario, r.Seed)
	fmt.Fprintf(&b, "Real processes: %d `territoryd run` (one territory each) and a `territoryd manager`, an embedded etcd behind one toxiproxy per process, the Pulsar standalone and the S3 server; %d subgraphs, %d clients.\n\n",
		r.Territories, r.Subgraphs, r.Workload.Clients)
	fmt.Fprintf(&b, "**Replay.** %s\n\n", ReplayNote)
	if r.Error != "" {
		fmt.Fprintf(&b, "**No verdict:** %s\n\n", r.Error)
	}
	fmt.Fprintf(&b, "| | |\n|---|---|\n| linearizable (porcupine) | %s |\n| logcheck (Pulsar topics as the truth) | %s |\n| invariants | %s |\n", r.Linearizable, r.LogCheck, r.Invariants)
	fmt.Fprintf(&b, "| operations | %d (%d with unknown outcome, %d of them final busy/unavailable; %d final reads) |\n| acknowledged writes | %d |\n", r.Ops, r.UnknownOps, r.NotFinalOps, r.FinalReads, r.AckedWrites)
	fmt.Fprintf(&b, "| unknown writes the log resolved / ruled out | %d / %d |\n| log entries read back | %d (%d recoveries' decays); %d raw topic messages scanned for fencing |\n", r.LogResolved, r.LogVanished, r.LogEntries, r.Decays, r.TopicMessages)
	fmt.Fprintf(&b, "| progress | %d windows, at least %d answers per client per window |\n", r.Progress.Windows, r.Progress.MinWindowOps)
	fmt.Fprintf(&b, "| wall | %.1f s: startup %.1f s, workload %.1f s, read-back %.1f s, checks %.1f s |\n| load (1/5/15 min) | before %s, after %s |\n\n",
		r.WallMs/1000, r.StartupMs/1000, r.WorkloadMs/1000, r.ReadBackMs/1000, r.CheckMs/1000, r.LoadBefore, r.LoadAfter)
	if len(r.Faults) > 0 {
		b.WriteString("## Faults, as executed\n\n| fault | applied at | took | healed at | took | recovery |\n|---|---|---|---|---|---|\n")
		for _, f := range r.Faults {
			rec := ""
			if f.RecoveryMs != 0 {
				rec = fmt.Sprintf("%.0f ms", f.RecoveryMs)
			}
			fmt.Fprintf(&b, "| %s | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %s |\n", f.Fault, f.AppliedMs, f.ApplyMs, f.HealedMs, f.HealMs, rec)
		}
		b.WriteString("\n")
	}
	if len(r.Violations) > 0 || len(r.LogViolations) > 0 || len(r.ViolatingKeys) > 0 {
		b.WriteString("## Violations\n\n")
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "- %s\n", v)
		}
		for _, v := range r.LogViolations {
			fmt.Fprintf(&b, "- logcheck: %s\n", v)
		}
		for _, k := range r.ViolatingKeys {
			fmt.Fprintf(&b, "- linearizability: key `%s` (see history.html)\n", k)
		}
	}
	return b.String()
}
