package sim_test

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

const traceChildEnv = "SIM_TRACE_CHILD" // "scenario:seed": run it and print its trace

// TestTraceChild is the child half of TestTraceAcrossProcesses.
func TestTraceChild(t *testing.T) {
	spec := os.Getenv(traceChildEnv)
	if spec == "" {
		t.Skip("runs only as the child of TestTraceAcrossProcesses")
	}
	name, seedText, _ := strings.Cut(spec, ":")
	seed, err := strconv.ParseUint(seedText, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, name, seed, 20_000)
	fmt.Printf("TRACE %s GOMAXPROCS=%d\n", res.Trace, runtime.GOMAXPROCS(0))
}

var traceLine = regexp.MustCompile(`TRACE ([0-9a-f]{16}) GOMAXPROCS=(\d+)`)

// TestTraceAcrossProcesses runs the same seeds in separate processes with
// different GOMAXPROCS: the trace hashes (which cover payloads) must match
// each other and this process's.
func TestTraceAcrossProcesses(t *testing.T) {
	if os.Getenv(traceChildEnv) != "" {
		t.Skip("child")
	}
	for _, spec := range []string{"chaos:3", "snapshot-gc:5"} {
		name, seedText, _ := strings.Cut(spec, ":")
		seed, _ := strconv.ParseUint(seedText, 10, 64)
		want := run(t, name, seed, 20_000).Trace
		for _, procs := range []string{"1", "4"} {
			cmd := exec.Command(os.Args[0], "-test.run=^TestTraceChild$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), traceChildEnv+"="+spec, "GOMAXPROCS="+procs)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s with GOMAXPROCS=%s: %v\n%s", spec, procs, err, out)
			}
			m := traceLine.FindSubmatch(out)
			if m == nil {
				t.Fatalf("%s with GOMAXPROCS=%s printed no trace:\n%s", spec, procs, out)
			}
			if string(m[2]) != procs {
				t.Fatalf("%s: the child ran with GOMAXPROCS=%s, asked %s", spec, m[2], procs)
			}
			if got := string(m[1]); got != want {
				t.Fatalf("%s: trace %s with GOMAXPROCS=%s in another process, %s here", spec, got, procs, want)
			}
		}
	}
}
