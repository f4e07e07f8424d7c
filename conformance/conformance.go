// Package conformance holds one suite per port of the protocol core
// (coordination, replicated log, object store): the same operation sequences
// with the same expected results, run against every implementation of the
// port: the simulated one (sim/coordstore, sim/replog, sim/blobstore), the
// dev one (embedded etcd, runtime/locallog, the filesystem bucket) and the
// production one against the real service (etcd, Pulsar, S3) under the
// integration build tag.
//
// A suite talks to an implementation through a small adapter interface per
// port (CoordService, LogService, BlobService). The adapters are blocking:
// an event-driven simulated service implements them by driving its kernel
// until the answer arrives, a production adapter by calling the real client.
// Ambiguous outcomes are part of every adapter: a request whose answer is
// lost (DoLost, Send), after which the case finds out from the service
// itself whether it landed, as the core must.
//
// Each case is a function returning an error (nil: the implementation
// behaved as the port promises), so that a test can run one case against a
// deliberately broken implementation and see it fail (the planted-violation
// tests next to the simulated adapters do). Run turns the cases into
// subtests.
//
// Where an implementation legitimately cannot offer something (the dev log
// is not replicated), it says so with a Lacks entry naming the capability and
// the reason; the case is then reported as skipped with that reason, never
// silently. Where an implementation differs from the others in a way the
// core does not rely on, the case that would see it says so in its comment
// (see the README in the notes, conformance-readme.md).
package conformance

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// Capability names something a case needs beyond the port's basic contract.
type Capability string

const (
	// Replication: the service keeps serving after one storage node of a
	// stream is lost (a bookie), with every committed entry intact.
	Replication Capability = "replication"
	// Restart: the whole service can be stopped and started again by the
	// test, and keeps every committed entry.
	Restart Capability = "restart"
)

// Lacks lists the capabilities an implementation does not offer, each with
// the reason (printed when the case is skipped).
type Lacks map[Capability]string

// Case is one operation sequence of a suite with its expected results.
type Case[S any] struct {
	Name  string
	Needs Capability // "" for the port's basic contract
	// Run drives the service. root is a key or topic prefix unique to this
	// run of the case (services may be shared between cases and reruns).
	Run func(svc S, root string) error
}

// Find returns the case of the given name (tests of planted violations run
// one case at a time).
func Find[S any](cases []Case[S], name string) Case[S] {
	for _, c := range cases {
		if c.Name == name {
			return c
		}
	}
	panic("conformance: no case " + name)
}

// Run runs every case as a subtest, each on a service from newSvc. Cases
// needing a capability listed in lacks are skipped with the reason. A lacks
// entry naming a capability no case uses is an error (a typo would otherwise
// hide a case).
func Run[S any](t *testing.T, cases []Case[S], lacks Lacks, newSvc func(t *testing.T) S) {
	t.Helper()
	if err := checkLacks(cases, lacks); err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if why, ok := lacks[c.Needs]; c.Needs != "" && ok {
				t.Skipf("not offered by this implementation: %s: %s", c.Needs, why)
			}
			root := prefix + c.Name + "/"
			if err := c.Run(newSvc(t), root); err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
		})
	}
}

// checkLacks rejects a lacks entry that names a capability no case needs (a
// typo would hide a case) or gives no reason.
func checkLacks[S any](cases []Case[S], lacks Lacks) error {
	used := map[Capability]bool{}
	for _, c := range cases {
		used[c.Needs] = true
	}
	var bad []string
	for capb, why := range lacks {
		if capb == "" || !used[capb] {
			bad = append(bad, fmt.Sprintf("%q is needed by no case", capb))
		}
		if strings.TrimSpace(why) == "" {
			bad = append(bad, fmt.Sprintf("%q gives no reason", capb))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return errf("conformance: lacks: %s", strings.Join(bad, "; "))
	}
	return nil
}

// uniquePrefix keeps keys and topics of one test process apart from those of
// earlier runs on a persistent service.
var uniquePrefix = func() func() string {
	p := fmt.Sprintf("conf-%d-%d/", os.Getpid(), time.Now().UnixNano())
	return func() string { return p }
}()

// Names lists the case names of a suite, sorted (for the README and tests).
func Names[S any](cases []Case[S]) []string {
	var out []string
	for _, c := range cases {
		out = append(out, c.Name)
	}
	sort.Strings(out)
	return out
}

func errf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// wantSorted checks that got equals want exactly, in order.
func wantKeys(what string, got, want []string) error {
	if !slices.Equal(got, want) {
		return errf("%s: got %q, want %q", what, got, want)
	}
	return nil
}

// Alternate decides, for an adapter's DoLost or Send, which half of an
// ambiguous request is lost: the first call loses the request, the second
// its answer, and so on. (A real timeout leaves either; the cases must be
// right in both, and see both.)
type Alternate struct{ n int }

// AnswerLost reports whether this call loses the answer (the request is
// applied) rather than the request (it never reaches the service).
func (a *Alternate) AnswerLost() bool {
	a.n++
	return a.n%2 == 0
}
