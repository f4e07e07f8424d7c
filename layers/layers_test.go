package layers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "territory"

// layer is a set of packages (by path inside the module: "sim" is the package
// sim, "sim/..." is sim and everything under it) and the layers it may import.
type layer struct {
	name     string
	packages []string
	imports  []string // other layers; a layer may always import itself
}

var layers = []layer{
	{"core", []string{"model/...", "proto/...", "faults/...", "linearizability/..."}, nil},
	{"simulator", []string{"sim/..."}, []string{"core"}},
	{"connectome", []string{"connectome/..."}, []string{"core"}},
	{"scenarios", []string{"scenarios/..."}, []string{"connectome", "simulator", "core"}},
	{"replayfile", []string{"replayfile/..."}, []string{"simulator", "core"}},
	{"reports", []string{"reports/..."}, []string{"replayfile", "simulator", "core"}},
	{"shrink", []string{"shrink/..."}, []string{"replayfile", "simulator", "core"}},
	{"swarm", []string{"swarm/..."}, []string{"shrink", "reports", "scenarios", "replayfile", "simulator", "core"}},
	{"runtime", []string{"runtime/..."}, []string{"core"}},
	// sim chaos: real clusters under real faults, checked by the simulator's
	// checks; also the harness of the end-to-end tests.
	{"chaos", []string{"chaos/..."}, []string{"reports", "simulator", "runtime", "core"}},
	{"commands", []string{"cmd/..."}, []string{"chaos", "swarm", "shrink", "reports", "replayfile", "scenarios", "connectome", "simulator", "runtime", "core"}},
	{"conformance", []string{"conformance/..."}, []string{"core"}},
	// Differential fidelity tests (test files only): each simulated service
	// against its real counterpart.
	{"fidelity", []string{"fidelity/..."}, []string{"simulator", "runtime", "conformance", "core"}},
	{"tools", []string{"tools/..."}, nil},
	{"layers", []string{"layers"}, nil},
}

// Standard-library packages the simulator may not import directly: it does no
// file I/O and opens no connection (its world is simulated; files are written
// by replayfile, reports and the commands above it).
var simulatorForbidden = []string{"os", "os/...", "io/fs", "io/ioutil", "path/filepath", "net", "net/...", "syscall"}

func matches(pattern, path string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

func layerOf(path string) (layer, bool) {
	for _, l := range layers {
		for _, p := range l.packages {
			if matches(p, path) {
				return l, true
			}
		}
	}
	return layer{}, false
}

type pkg struct {
	ImportPath string
	Imports    []string
}

// check returns every breach of the layers among pkgs.
func check(pkgs []pkg) []string {
	var bad []string
	for _, p := range pkgs {
		rel, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok {
			bad = append(bad, fmt.Sprintf("%s: not inside module %s", p.ImportPath, module))
			continue
		}
		from, ok := layerOf(rel)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s: in no layer; add it to the table in layers/layers_test.go and to DESIGN.md section 7", rel))
			continue
		}
		for _, imp := range p.Imports {
			irel, internal := strings.CutPrefix(imp, module+"/")
			if !internal {
				if from.name == "simulator" && slices.ContainsFunc(simulatorForbidden, func(f string) bool { return matches(f, imp) }) {
					bad = append(bad, fmt.Sprintf("%s imports %s: the simulator does no file I/O and no networking", rel, imp))
				}
				continue
			}
			to, ok := layerOf(irel)
			if !ok {
				continue // reported as a package in no layer
			}
			if to.name != from.name && !slices.Contains(from.imports, to.name) {
				bad = append(bad, fmt.Sprintf("%s (%s) imports %s (%s): %s may import only %v", rel, from.name, irel, to.name, from.name, from.imports))
			}
		}
	}
	return bad
}

// TestNoUpwardImport lists every package of the module with go list and fails
// on any import that the layers do not allow.
func TestNoUpwardImport(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages: %v", len(pkgs), pkgs)
	}
	for _, b := range check(pkgs) {
		t.Error(b)
	}
}

// TestCheckCatchesUpwardImports plants breaches: each must be reported, and a
// legal graph must not be.
func TestCheckCatchesUpwardImports(t *testing.T) {
	legal := []pkg{
		{"territory/model", []string{"fmt"}},
		{"territory/sim", []string{"territory/model", "territory/sim/kernel", "territory/faults", "time"}},
		{"territory/sim/kernel", []string{"hash/fnv"}},
		{"territory/swarm", []string{"territory/scenarios", "territory/reports", "territory/shrink", "os"}},
		{"territory/cmd/sim", []string{"territory/swarm", "territory/sim"}},
		{"territory/runtime/driver", []string{"territory/model", "territory/runtime/blob", "os"}},
	}
	if bad := check(legal); len(bad) > 0 {
		t.Fatalf("a legal graph is reported: %v", bad)
	}
	for _, c := range []struct {
		p    pkg
		want string
	}{
		{pkg{"territory/sim/swarm", []string{"territory/scenarios"}}, "sim/swarm (simulator) imports scenarios (scenarios)"},
		{pkg{"territory/sim", []string{"territory/reports"}}, "sim (simulator) imports reports"},
		{pkg{"territory/sim", []string{"territory/cmd/sim"}}, "imports cmd/sim"},
		{pkg{"territory/reports", []string{"territory/swarm"}}, "reports (reports) imports swarm"},
		{pkg{"territory/model", []string{"territory/sim/kernel"}}, "model (core) imports sim/kernel"},
		{pkg{"territory/runtime/driver", []string{"territory/sim/replog"}}, "runtime/driver (runtime) imports sim/replog"},
		{pkg{"territory/scenarios", []string{"territory/shrink"}}, "scenarios (scenarios) imports shrink"},
		{pkg{"territory/sim", []string{"os"}}, "sim imports os"},
		{pkg{"territory/sim/replog", []string{"path/filepath"}}, "sim/replog imports path/filepath"},
		{pkg{"territory/sim/netsim", []string{"net/http"}}, "sim/netsim imports net/http"},
		{pkg{"territory/newthing", nil}, "newthing: in no layer"},
	} {
		bad := check([]pkg{c.p})
		if len(bad) != 1 || !strings.Contains(bad[0], c.want) {
			t.Errorf("%v: reported %q, want one breach containing %q", c.p, bad, c.want)
		}
	}
}
