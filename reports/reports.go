// Package reports writes what a run found: report.json (the summary line's
// fields, the fault schedule, every violation), history.html (porcupine's
// picture of the history, on a failure or on request) and a short Markdown
// summary for people and CI pages.
package reports

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"territory/replayfile"
	"territory/sim"
)

// Files written into a report directory.
const (
	JSONFile     = "report.json"
	HistoryFile  = "history.html"
	MarkdownFile = "summary.md"
	ReplayFile   = "replay.json"
)

// Written lists what WriteRun wrote.
type Written struct {
	Dir     string
	JSON    string
	History string
	Replay  string
}

// WriteRun writes the report of one run into dir (created if needed). The
// history picture is written when the run failed or history is true; a replay
// file is written when the run failed.
func WriteRun(dir string, r *sim.Result, history bool) (Written, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Written{}, fmt.Errorf("report dir %s: %w", dir, err)
	}
	w := Written{Dir: dir, JSON: filepath.Join(dir, JSONFile)}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return w, fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(w.JSON, append(data, '\n'), 0o644); err != nil {
		return w, fmt.Errorf("write %s: %w", w.JSON, err)
	}
	if err := os.WriteFile(filepath.Join(dir, MarkdownFile), []byte(Markdown(r)), 0o644); err != nil {
		return w, fmt.Errorf("write summary: %w", err)
	}
	if !r.Pass || history {
		w.History = filepath.Join(dir, HistoryFile)
		if err := r.Linearizability().WriteHTML(w.History); err != nil {
			return w, fmt.Errorf("write %s: %w", w.History, err)
		}
	}
	if !r.Pass {
		w.Replay = filepath.Join(dir, ReplayFile)
		if err := replayfile.WriteResult(w.Replay, r); err != nil {
			return w, err
		}
	}
	return w, nil
}

// Markdown is a short human summary of one run.
func Markdown(r *sim.Result) string {
	var b strings.Builder
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "# %s: scenario `%s`, seed %d\n\n", verdict, r.Scenario, r.Seed)
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| trace | `%s` |\n| linearizable | %s |\n| invariants | %s |\n| logcheck | %s |\n", r.Trace, r.Linearizable, r.Invariants, r.LogCheck)
	fmt.Fprintf(&b, "| operations | %d (%d with unknown outcome) |\n| acknowledged writes | %d |\n", r.Ops, r.UnknownOps, r.AckedWrites)
	fmt.Fprintf(&b, "| kernel events | %d |\n| committed log entries | %d |\n", r.Events, r.LogEntries)
	fmt.Fprintf(&b, "| simulated | %.1f s |\n| wall (sim + check) | %.0f ms + %.0f ms |\n", float64(r.SimMs)/1000, r.WallMs, r.CheckMs)
	fmt.Fprintf(&b, "| faults scheduled | %d |\n", len(r.Config.Schedule.Faults))
	d := r.Durability
	fmt.Fprintf(&b, "| snapshots committed | %d |\n| recoveries | %d from a snapshot, %d from the log alone, %d bad snapshots skipped |\n", d.SnapshotsCommitted, d.LoadedFromSnapshot, d.LoadedFromLog, d.RejectedSnapshots)
	fmt.Fprintf(&b, "| TerritoryRecovered events | %d |\n| blobs corrupted by faults | %d |\n", d.RecoveryEvents, d.BlobsCorrupted)
	fmt.Fprintf(&b, "| recoveries from the local snapshot cache | %d (local-disk faults injected: %d) |\n", d.LoadedFromCache, d.DiskFaults)
	if len(r.RTOMs) > 0 {
		fmt.Fprintf(&b, "| simulated RTO (restart or reassignment to operational) | median %.0f ms, max %.0f ms over %d subgraph recoveries |\n", r.RTOP50Ms, r.RTOMaxMs, len(r.RTOMs))
		fmt.Fprintf(&b, "| outage (primary lost to operational again) | median %.0f ms, max %.0f ms |\n", r.OutageP50Ms, r.OutageMaxMs)
	}
	b.WriteString("\n")
	if len(r.Config.Schedule.Faults) > 0 {
		b.WriteString("## Fault schedule\n\n")
		for _, f := range r.Config.Schedule.Faults {
			fmt.Fprintf(&b, "- %s\n", f)
		}
		b.WriteString("\n")
	}
	if len(r.Violations) > 0 || len(r.ViolatingKeys) > 0 {
		b.WriteString("## Violations\n\n")
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "- %s\n", v)
		}
		for _, k := range r.ViolatingKeys {
			fmt.Fprintf(&b, "- linearizability: key `%s` (see history.html)\n", k)
		}
	}
	return b.String()
}
