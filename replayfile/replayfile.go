// Package replayfile reads and writes replay files: the seed and the whole
// configuration of a run, fault schedule included, so that a run (or a
// hand-edited or shrunk schedule) replays exactly as written.
//
// It lives above sim/ so that the simulation package does no file I/O.
package replayfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"territory/sim"
)

// Version is the replay file format version this binary reads and writes.
const Version = 1

// File is one replay file.
type File struct {
	Version  int        `json:"version"`
	Scenario string     `json:"scenario"`
	Seed     uint64     `json:"seed"`
	Trace    string     `json:"trace,omitempty"` // the trace of the recorded run, to confirm the replay
	Config   sim.Config `json:"config"`
}

// Of is the replay file of a run.
func Of(r *sim.Result) File {
	return File{Version: Version, Scenario: r.Scenario, Seed: r.Seed, Trace: r.Trace, Config: r.Config}
}

// Encode is the file's bytes: indented JSON ending in a newline.
func (f File) Encode() ([]byte, error) {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode replay: %w", err)
	}
	return append(data, '\n'), nil
}

// Decode parses and validates a replay file's bytes: unknown fields, another
// version and an invalid configuration are errors.
func Decode(data []byte) (*File, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if f.Version != Version {
		return nil, fmt.Errorf("version %d, this binary reads %d", f.Version, Version)
	}
	if err := f.Config.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Write writes f to path.
func Write(path string, f File) error {
	data, err := f.Encode()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write replay %s: %w", path, err)
	}
	return nil
}

// WriteResult writes the replay file of a run to path.
func WriteResult(path string, r *sim.Result) error { return Write(path, Of(r)) }

// Read reads and validates the replay file at path.
func Read(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read replay: %w", err)
	}
	f, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", path, err)
	}
	return f, nil
}
