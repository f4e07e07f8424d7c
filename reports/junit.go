package reports

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
)

// JUnitFile is the name sim swarm gives its JUnit report.
const JUnitFile = "junit.xml"

// JUnitSuites is a JUnit XML report: the <testsuites> root that CI systems
// (GitHub Actions test reporters, GitLab, Jenkins) read. The counters of the
// root and of each suite are computed from the test cases when the report is
// written, so a caller only fills in names, cases and times.
type JUnitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr,omitempty"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr,omitempty"` // seconds, decimal
	Suites   []JUnitSuite `xml:"testsuite"`
}

// JUnitSuite is one <testsuite>.
type JUnitSuite struct {
	Name       string           `xml:"name,attr"`
	Tests      int              `xml:"tests,attr"`
	Failures   int              `xml:"failures,attr"`
	Errors     int              `xml:"errors,attr"`
	Skipped    int              `xml:"skipped,attr"`
	Time       string           `xml:"time,attr,omitempty"`
	Properties *JUnitProperties `xml:"properties,omitempty"`
	Cases      []JUnitCase      `xml:"testcase"`
}

// JUnitProperties is the <properties> element of a suite.
type JUnitProperties struct {
	Property []JUnitProperty `xml:"property"`
}

// JUnitProperty is a name/value pair of a suite.
type JUnitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// JUnitCase is one <testcase>. At most one of Failure (the test ran and found
// a bug), Error (the test could not run to its verdict) and Skipped is set.
type JUnitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr,omitempty"`
	Failure   *JUnitFailure `xml:"failure,omitempty"`
	Error     *JUnitFailure `xml:"error,omitempty"`
	Skipped   *JUnitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

// JUnitFailure is the body of a <failure> or <error>: a one-line message, a
// type, and the full text.
type JUnitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// JUnitSkipped marks a skipped case.
type JUnitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

// JUnitSeconds formats a duration in seconds as JUnit's time attribute.
func JUnitSeconds(s float64) string { return fmt.Sprintf("%.3f", s) }

// count fills in the counters of every suite and of the root.
func (r *JUnitSuites) count() {
	r.Tests, r.Failures, r.Errors = 0, 0, 0
	for i := range r.Suites {
		s := &r.Suites[i]
		s.Tests, s.Failures, s.Errors, s.Skipped = len(s.Cases), 0, 0, 0
		for _, c := range s.Cases {
			switch {
			case c.Error != nil:
				s.Errors++
			case c.Failure != nil:
				s.Failures++
			case c.Skipped != nil:
				s.Skipped++
			}
		}
		r.Tests += s.Tests
		r.Failures += s.Failures
		r.Errors += s.Errors
	}
}

// EncodeJUnit writes the report as indented XML with its header. Text that is
// not valid XML (control characters in an error message) is replaced by
// encoding/xml, so the output always parses.
func EncodeJUnit(w io.Writer, r JUnitSuites) error {
	r.count()
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode junit: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encode junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteJUnit writes the report to path.
func WriteJUnit(path string, r JUnitSuites) error {
	var b bytes.Buffer
	if err := EncodeJUnit(&b, r); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadJUnit parses a JUnit report written by WriteJUnit (or any report with
// a <testsuites> root).
func ReadJUnit(path string) (JUnitSuites, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return JUnitSuites{}, fmt.Errorf("read junit: %w", err)
	}
	var r JUnitSuites
	if err := xml.Unmarshal(data, &r); err != nil {
		return JUnitSuites{}, fmt.Errorf("parse junit %s: %w", path, err)
	}
	return r, nil
}
