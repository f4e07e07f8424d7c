package model

import (
	"testing"

	"territory/tools/sansio"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/checker"
	"golang.org/x/tools/go/packages"
)

// TestModelIsSansIO runs the sans-IO analyzer (tools/sansio: no goroutines,
// channels, select, mutable package-level variables, unexplained map
// iteration, imports beyond the pure standard-library list) on every package
// of model/ and expects no diagnostic. make lint runs the same pass.
func TestModelIsSansIO(t *testing.T) {
	if testing.Short() {
		t.Skip("loads and type-checks model/ from source")
	}
	cfg := &packages.Config{Mode: packages.LoadAllSyntax, Tests: false}
	pkgs, err := packages.Load(cfg, "territory/model/...")
	if err != nil {
		t.Fatalf("load model/: %v", err)
	}
	if len(pkgs) == 0 {
		t.Fatal("no packages under territory/model")
	}
	if n := packages.PrintErrors(pkgs); n > 0 {
		t.Fatalf("model/ has %d load errors", n)
	}
	graph, err := checker.Analyze([]*analysis.Analyzer{sansio.Analyzer}, pkgs, nil)
	if err != nil {
		t.Fatalf("analyze: %v", err)
	}
	checked := 0
	for act := range graph.All() {
		if act.Analyzer != sansio.Analyzer {
			continue
		}
		checked++
		if act.Err != nil {
			t.Errorf("%s: %v", act.Package.PkgPath, act.Err)
		}
		for _, d := range act.Diagnostics {
			t.Errorf("%s: %s", act.Package.Fset.Position(d.Pos), d.Message)
		}
	}
	if checked != len(pkgs) {
		t.Fatalf("the analyzer ran on %d of %d packages", checked, len(pkgs))
	}
}
