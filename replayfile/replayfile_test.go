package replayfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"territory/replayfile"
	"territory/scenarios"
	"territory/sim"
)

// TestReplayFileReproducesTheRun writes a replay file and runs it again.
func TestReplayFileReproducesTheRun(t *testing.T) {
	sc, err := scenarios.Get("network")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sc.Config(7, 15_000)
	if err != nil {
		t.Fatal(err)
	}
	a, err := sim.Run(cfg, 7, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "replay.json")
	if err := replayfile.WriteResult(path, a); err != nil {
		t.Fatal(err)
	}
	rp, err := replayfile.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sim.Run(rp.Config, rp.Seed, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if a.Trace != b.Trace || rp.Trace != a.Trace || rp.Scenario != "network" || rp.Seed != 7 {
		t.Fatalf("replay trace %s, original %s, file %s (%s seed %d)", b.Trace, a.Trace, rp.Trace, rp.Scenario, rp.Seed)
	}
}

// TestReadRejectsBadFiles: unknown fields, another version, an invalid
// configuration and a missing file are errors naming the file.
func TestReadRejectsBadFiles(t *testing.T) {
	sc, err := scenarios.Get("basic")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sc.Config(1, 2_000)
	if err != nil {
		t.Fatal(err)
	}
	good, err := replayfile.File{Version: replayfile.Version, Scenario: "basic", Seed: 1, Config: cfg}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replayfile.Decode(good); err != nil {
		t.Fatalf("a good file is rejected: %v", err)
	}
	bad := map[string]string{
		"unknown field": strings.Replace(string(good), `"version": 1`, `"version": 1, "frobnicate": true`, 1),
		"version":       strings.Replace(string(good), `"version": 1`, `"version": 2`, 1),
		"not json":      "{",
	}
	broken := cfg
	broken.DurationMs = -1
	data, err := replayfile.File{Version: replayfile.Version, Scenario: "basic", Seed: 1, Config: broken}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	bad["invalid config"] = string(data)
	dir := t.TempDir()
	for name, text := range bad {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := replayfile.Read(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: Read = %v, want an error naming %s", name, err, path)
		}
	}
	if _, err := replayfile.Read(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("a missing file is read")
	}
}
