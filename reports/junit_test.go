package reports

import (
	"bytes"
	"encoding/xml"
	"path/filepath"
	"strings"
	"testing"
)

func sampleJUnit() JUnitSuites {
	return JUnitSuites{
		Name: "sim swarm",
		Time: JUnitSeconds(1.5),
		Suites: []JUnitSuite{
			{
				Name: "basic", Time: JUnitSeconds(0.25),
				Properties: &JUnitProperties{Property: []JUnitProperty{{Name: "seeds", Value: "1..3"}}},
				Cases: []JUnitCase{
					{Name: "seed=1", Classname: "sim.swarm.basic", Time: JUnitSeconds(0.01)},
					{Name: "seed=2", Classname: "sim.swarm.basic", Time: JUnitSeconds(0.02),
						Failure: &JUnitFailure{Message: "FAIL scenario=basic seed=2", Type: "linearizability",
							Text: "no-acked-write-lost at 1.000s: lost <write> & \"quoted\"\x00\x1b[31m"},
						SystemOut: "reproduce: sim replay out/swarm/replays/basic-2.json"},
					{Name: "seed=3", Classname: "sim.swarm.basic", Skipped: &JUnitSkipped{Message: "not run"}},
				},
			},
			{
				Name: "network",
				Cases: []JUnitCase{
					{Name: "seed=1", Classname: "sim.swarm.network",
						Error: &JUnitFailure{Message: "panic: boom", Type: "internal-error", Text: "panic: boom\ngoroutine 1"}},
				},
			},
			{Name: "empty"},
		},
	}
}

func TestJUnitRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), JUnitFile)
	if err := WriteJUnit(path, sampleJUnit()); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJUnit(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Tests != 4 || got.Failures != 1 || got.Errors != 1 || got.Name != "sim swarm" || got.Time != "1.500" {
		t.Fatalf("root counters: %+v", got)
	}
	if len(got.Suites) != 3 {
		t.Fatalf("suites: %d", len(got.Suites))
	}
	b := got.Suites[0]
	if b.Name != "basic" || b.Tests != 3 || b.Failures != 1 || b.Errors != 0 || b.Skipped != 1 || b.Time != "0.250" {
		t.Fatalf("suite basic: %+v", b)
	}
	if b.Properties == nil || len(b.Properties.Property) != 1 || b.Properties.Property[0] != (JUnitProperty{Name: "seeds", Value: "1..3"}) {
		t.Fatalf("properties: %+v", b.Properties)
	}
	if b.Cases[0].Failure != nil || b.Cases[0].Error != nil || b.Cases[0].Name != "seed=1" {
		t.Fatalf("case 1: %+v", b.Cases[0])
	}
	f := b.Cases[1].Failure
	if f == nil || f.Type != "linearizability" || f.Message != "FAIL scenario=basic seed=2" {
		t.Fatalf("case 2 failure: %+v", f)
	}
	// Markup is escaped and comes back; characters XML cannot carry are replaced.
	if !strings.Contains(f.Text, `lost <write> & "quoted"`) || strings.ContainsAny(f.Text, "\x00\x1b") {
		t.Fatalf("case 2 text: %q", f.Text)
	}
	if b.Cases[1].SystemOut != "reproduce: sim replay out/swarm/replays/basic-2.json" {
		t.Fatalf("system-out: %q", b.Cases[1].SystemOut)
	}
	if b.Cases[2].Skipped == nil || b.Cases[2].Skipped.Message != "not run" {
		t.Fatalf("case 3: %+v", b.Cases[2])
	}
	n := got.Suites[1]
	if n.Errors != 1 || n.Failures != 0 || n.Cases[0].Error == nil || n.Cases[0].Error.Type != "internal-error" {
		t.Fatalf("suite network: %+v", n)
	}
	if e := got.Suites[2]; e.Tests != 0 || len(e.Cases) != 0 {
		t.Fatalf("suite empty: %+v", e)
	}
}

func TestJUnitShape(t *testing.T) {
	var b bytes.Buffer
	if err := EncodeJUnit(&b, sampleJUnit()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.HasPrefix(out, xml.Header+"<testsuites ") {
		t.Fatalf("header/root: %.80q", out)
	}
	for _, want := range []string{
		`<testsuite name="basic" tests="3" failures="1" errors="0" skipped="1" time="0.250">`,
		`<testcase name="seed=1" classname="sim.swarm.basic" time="0.010"></testcase>`,
		`<failure message="FAIL scenario=basic seed=2" type="linearizability">`,
		`<error message="panic: boom" type="internal-error">`,
		`<testsuite name="empty" tests="0" failures="0" errors="0" skipped="0"></testsuite>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	// Every element is well formed: a strict decoder walks the whole document.
	dec := xml.NewDecoder(strings.NewReader(out))
	dec.Strict = true
	for {
		if _, err := dec.Token(); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("not well formed: %v", err)
		}
	}
}
