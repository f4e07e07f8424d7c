package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func runSim(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), exitCode(err)
}

var summaryLine = regexp.MustCompile(`^(PASS|FAIL) scenario=\S+ seed=\d+ trace=[0-9a-f]{16} linearizable=(ok|violation|unknown) invariants=\S+ logcheck=\S+ ops=\d+ events=\d+ sim=\S+s wall=\S+s$`)

func TestRunWritesAReportAndEndsWithTheSummaryLine(t *testing.T) {
	dir := t.TempDir()
	out, code := runSim(t, "run", "--scenario", "basic", "--seed", "3", "--duration", "3s", "--report", dir, "--history")
	if code != exitPass {
		t.Fatalf("exit %d: %s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !summaryLine.MatchString(last) {
		t.Fatalf("last line is not the summary: %q", last)
	}
	for _, f := range []string{"report.json", "summary.md", "history.html"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s missing or empty: %v", f, err)
		}
	}
	md, code := runSim(t, "report", dir)
	if code != exitPass || !strings.Contains(md, "PASS: scenario `basic`, seed 3") {
		t.Fatalf("report: %d %s", code, md)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--seed", "1"},
		{"run", "--scenario", "nope", "--seed", "1"},
		{"run", "--scenario", "basic"},
		{"run", "--scenario", "basic", "--seed", "1", "--duration", "10ms"},
		{"replay", filepath.Join(t.TempDir(), "missing.json")},
		{"report", t.TempDir()},
		{"frobnicate"},
	} {
		if _, code := runSim(t, args...); code != exitUsage {
			t.Errorf("sim %v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func TestListNamesEveryScenario(t *testing.T) {
	out, code := runSim(t, "list")
	if code != exitPass {
		t.Fatal(out)
	}
	for _, name := range []string{"basic", "network", "services", "crash-recovery", "host-loss", "snapshot-gc", "pause-fencing", "clock-skew", "chaos"} {
		if !regexp.MustCompile(`(?m)^` + name + `\s`).MatchString(out) {
			t.Errorf("list misses %s:\n%s", name, out)
		}
	}
}

var benchBlock = regexp.MustCompile(`scenario=basic seeds=1 sim=\d+s events=\d+\n  simulation: \d+x real time, \d+\.\d{3}M events/s \(wall \S+s\)\n  with checking: \d+x real time \(linearizability check \S+s\)\n  memory: \d+ MB allocated \(\d+ B/event\), heap high-water \d+ MB\n`)

func TestBenchReportsSpeedAndMemory(t *testing.T) {
	out, code := runSim(t, "bench", "--scenario", "basic", "--seeds", "1", "--duration", "2s")
	if code != exitPass || !benchBlock.MatchString(out) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if _, code := runSim(t, "bench", "--scenario", "nope"); code != exitUsage {
		t.Fatalf("an unknown scenario: exit %d", code)
	}
}
