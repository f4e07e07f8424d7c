package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"territory/runtime/etcdembed"
)

// startProc starts the binary and waits for a stdout line containing want.
func startProc(t *testing.T, bin, want string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if !ok && strings.Contains(sc.Text(), want) {
				ok = true
				found <- true
			}
		}
		if !ok {
			found <- false
		}
	}()
	select {
	case ok := <-found:
		if !ok {
			cmd.Wait()
			t.Fatalf("%v exited: %s", args, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%v: no %q: %s", args, want, stderr.String())
	}
	return cmd
}

// TestRunAndManager: `territoryd manager` and `territoryd run` as separate
// processes on an external (embedded, loopback) etcd, the local log and a
// filesystem bucket; a client writes and reads through `run`.
func TestRunAndManager(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	m, err := etcdembed.Single(filepath.Join(dir, "etcd"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	e, err := etcdembed.Start(m, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	runAddr, mgrAddr := freeAddr(t), freeAddr(t)
	obj := writeFile(t, dir, "objstore.yaml", "type: FILESYSTEM\nconfig:\n  directory: "+filepath.Join(dir, "blobs")+"\n")
	common := fmt.Sprintf(`subgraphs: 4
metrics_listen: ""
log_level: warn
manager: 1000
hosts: {1: "%s", 2: "%s", 1000: "%s"}
etcd: {endpoints: ["%s"]}
objstore: {config_file: %s}
`, runAddr, runAddr, mgrAddr, m.Client, obj)
	mgrConf := writeFile(t, dir, "manager.yaml", common+fmt.Sprintf("listen: %s\nbootstrap_territories: [1, 2]\n", mgrAddr))
	runConf := writeFile(t, dir, "run.yaml", common+fmt.Sprintf("listen: %s\nterritories: [1, 2]\ncache_dir: %s\nlog: {backend: local, local: {path: %s}}\n",
		runAddr, filepath.Join(dir, "cache"), filepath.Join(dir, "log.db")))

	mgr := startProc(t, bin, "territoryd manager: listening on", "manager", "--config", mgrConf)
	run := startProc(t, bin, "territoryd run: listening on", "run", "--config", runConf)
	mustClient(t, bin, runAddr, "ok", "create-neuron", "7")
	mustClient(t, bin, runAddr, "ok potential=5", "stimulate", "7", "5")
	mustClient(t, bin, runAddr, "ok exists=true potential=5 in_degree=0 out_degree=0", "read-neuron", "7")
	for _, p := range []*exec.Cmd{run, mgr} {
		p.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("exit after SIGTERM: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no exit after SIGTERM")
		}
	}
	// A configuration error names its field and exits 2.
	bad := writeFile(t, dir, "bad.yaml", "subgraphs: 4\n")
	out, err := exec.Command(bin, "run", "--config", bad).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "etcd.endpoints") {
		t.Fatalf("bad config: %v %s", err, out)
	}
}
