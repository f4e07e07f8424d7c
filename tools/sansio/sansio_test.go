package sansio_test

import (
	"testing"

	"territory/tools/sansio"

	"golang.org/x/tools/go/analysis/analysistest"
)

// TestViolations: every rule, each with planted violations (// want) and
// allowed look-alikes beside them; test files are not checked.
func TestViolations(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), sansio.Analyzer, "territory/model/bad", "territory/model/helper")
}

// TestCleanCore: a package using every allowed import gets no diagnostic.
func TestCleanCore(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), sansio.Analyzer, "territory/model/good")
}
