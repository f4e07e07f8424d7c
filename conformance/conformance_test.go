package conformance

import (
	"strings"
	"testing"
)

func TestCheckLacks(t *testing.T) {
	cases := LogCases()
	if err := checkLacks(cases, Lacks{Replication: "one disk"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		lacks Lacks
		want  string
	}{
		{Lacks{"replicaton": "typo"}, `"replicaton" is needed by no case`},
		{Lacks{Restart: "  "}, `"restart" gives no reason`},
		{Lacks{"": "the basic contract cannot be lacked"}, `"" is needed by no case`},
	} {
		if err := checkLacks(cases, tc.lacks); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.lacks, err, tc.want)
		}
	}
	// The coordination and blob suites have no optional capability.
	if err := checkLacks(CoordCases(), Lacks{Replication: "x"}); err == nil {
		t.Error("a coordination lacks entry for the log's capability was accepted")
	}
}

func TestCaseNamesUnique(t *testing.T) {
	for suite, names := range map[string][]string{
		"coord": Names(CoordCases()), "log": Names(LogCases()), "blob": Names(BlobCases()),
	} {
		for i := 1; i < len(names); i++ {
			if names[i] == names[i-1] {
				t.Errorf("%s suite: case %s twice", suite, names[i])
			}
		}
	}
}

func TestAlternate(t *testing.T) {
	var a Alternate
	got := []bool{a.AnswerLost(), a.AnswerLost(), a.AnswerLost(), a.AnswerLost()}
	if got[0] || !got[1] || got[2] || !got[3] {
		t.Fatalf("Alternate: %v, want request lost, answer lost, ...", got)
	}
}
