package servicetest

import (
	"testing"
)

// fakeTB records how a test ended. Skip and Fatal stop a real test with
// runtime.Goexit; here they panic with a marker that run recovers.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

type ended struct{}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped = true
	f.msg = args[0].(string)
	panic(ended{})
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = true
	f.msg = format
	panic(ended{})
}

func run(fn func(t testing.TB)) (f *fakeTB, finished bool) {
	f = &fakeTB{}
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(ended); !ok {
				panic(p)
			}
		}
	}()
	fn(f)
	return f, true
}

func TestAbsentServiceSkipsOrFails(t *testing.T) {
	t.Setenv("TERRITORY_TEST_SERVICE", "")
	t.Setenv(RequireVar, "")
	f, finished := run(func(tb testing.TB) { Env(tb, "TERRITORY_TEST_SERVICE", "start it") })
	if finished || !f.skipped || f.failed || f.msg != "TERRITORY_TEST_SERVICE is not set: start it" {
		t.Fatalf("without the switch: %+v finished=%v, want a skip", f, finished)
	}
	t.Setenv(RequireVar, "1")
	f, finished = run(func(tb testing.TB) { Env(tb, "TERRITORY_TEST_SERVICE", "start it") })
	if finished || f.skipped || !f.failed {
		t.Fatalf("with %s=1: %+v finished=%v, want a failure", RequireVar, f, finished)
	}
}

func TestPresentServiceRuns(t *testing.T) {
	t.Setenv("TERRITORY_TEST_SERVICE", "http://127.0.0.1:1")
	t.Setenv(RequireVar, "1")
	var got string
	f, finished := run(func(tb testing.TB) { got = Env(tb, "TERRITORY_TEST_SERVICE", "start it") })
	if !finished || f.skipped || f.failed || got != "http://127.0.0.1:1" {
		t.Fatalf("%+v finished=%v got=%q", f, finished, got)
	}
}
