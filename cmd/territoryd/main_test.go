package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"territory/model"
)

// buildBinary builds territoryd into a temp dir (once per test binary run).
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "territoryd")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startDev starts `territoryd dev` and waits for its "listening on" line.
func startDev(t *testing.T, bin, data, addr string) *exec.Cmd {
	t.Helper()
	return startDevArgs(t, bin, data, addr, "--subgraphs", "8")
}

// startDevArgs is startDev with other flags for a new cluster.
func startDevArgs(t *testing.T, bin, data, addr string, flags ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"dev", "--data", data, "--listen", addr, "--metrics", ""}, flags...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
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
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(45 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("territoryd dev exited: %s", stderr.String())
			}
			if strings.Contains(l, "listening on "+addr) {
				go io.Copy(io.Discard, stdout)
				go func() {
					for range lines {
					}
				}()
				return cmd
			}
		case <-deadline:
			t.Fatalf("territoryd dev did not come up: %s", stderr.String())
		}
	}
}

// client runs `territoryd client` and returns its stdout, stderr and exit code.
// runBin runs the binary to its end and returns its trimmed stdout and
// stderr and its exit code (client, mandate and import share it).
func runBin(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out.String()), strings.TrimSpace(errb.String()), code
}

func client(t *testing.T, bin, addr string, args ...string) (string, string, int) {
	t.Helper()
	return runBin(t, bin, append([]string{"client", "--addr", addr}, args...)...)
}

func mustClient(t *testing.T, bin, addr, want string, args ...string) {
	t.Helper()
	out, errs, code := client(t, bin, addr, args...)
	if code != 0 || out != want {
		t.Fatalf("client %v: exit %d, stdout %q (want %q), stderr %q", args, code, out, want, errs)
	}
}

// TestDevKillRestart: writes through the client, kill -9 of the daemon, a
// restart on the same data directory, everything read back; then SIGTERM
// shuts it down cleanly.
func TestDevKillRestart(t *testing.T) {
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	dev := startDev(t, bin, data, addr)

	// Two neurons of one subgraph (8 subgraphs) for a local synapse.
	a := model.NeuronID(1)
	b := a + 1
	for model.SubgraphOf(b, 8) != model.SubgraphOf(a, 8) {
		b++
	}
	A, B := fmt.Sprint(a), fmt.Sprint(b)
	for n := 1; n <= 5; n++ {
		mustClient(t, bin, addr, "ok", "create-neuron", fmt.Sprint(100+n))
	}
	mustClient(t, bin, addr, "ok", "create-neuron", A)
	mustClient(t, bin, addr, "ok", "create-neuron", B)
	mustClient(t, bin, addr, "ok potential=30", "stimulate", A, "30")
	mustClient(t, bin, addr, "ok potential=25", "stimulate", A, "-5")
	mustClient(t, bin, addr, "ok", "connect", A, B, "500")
	mustClient(t, bin, addr, "ok weight=450", "adjust", A, B, "-50")
	mustClient(t, bin, addr, "ok", "connect", B, A, "7")
	mustClient(t, bin, addr, "ok", "prune", B, A)
	if _, errs, code := client(t, bin, addr, "create-neuron", A); code != 1 || !strings.Contains(errs, "already-exists") {
		t.Fatalf("create twice: exit %d %q", code, errs)
	}
	if _, errs, code := client(t, bin, addr, "fly", A); code != 2 || !strings.Contains(errs, `unknown operation "fly"`) {
		t.Fatalf("unknown operation: exit %d %q", code, errs)
	}

	if err := dev.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	dev.Wait()
	dev = startDev(t, bin, data, addr)
	for n := 1; n <= 5; n++ {
		mustClient(t, bin, addr, "ok exists=true potential=0 in_degree=0 out_degree=0", "read-neuron", fmt.Sprint(100+n))
	}
	// Recovery decays potentials for the downtime (a logged TerritoryRecovered
	// event): 25 or a little less.
	out, errs, code := client(t, bin, addr, "read-neuron", A)
	var potential, in, outDeg int
	if _, err := fmt.Sscanf(out, "ok exists=true potential=%d in_degree=%d out_degree=%d", &potential, &in, &outDeg); err != nil || code != 0 || potential > 25 || potential < 20 || in != 0 || outDeg != 1 {
		t.Fatalf("read-neuron %s after restart: exit %d %q %q (want in 0, out 1: A->B, B->A pruned)", A, code, out, errs)
	}
	mustClient(t, bin, addr, "ok exists=true potential=0 in_degree=1 out_degree=0", "read-neuron", B)
	mustClient(t, bin, addr, "ok exists=true weight=450", "read-synapse", A, B)
	mustClient(t, bin, addr, "ok exists=false weight=0", "read-synapse", B, A)
	// A stale read says which LSN it reflects; asked for a floor past the
	// log it never answers below it; a stale write is a usage error.
	out, errs, code = client(t, bin, addr, "--stale", "read-synapse", A, B)
	var staleLSN uint64
	if _, err := fmt.Sscanf(out, "ok exists=true weight=450 lsn=%d from=primary", &staleLSN); err != nil || code != 0 || staleLSN == 0 {
		t.Fatalf("stale read-synapse: exit %d %q %q", code, out, errs)
	}
	mustClient(t, bin, addr, fmt.Sprintf("ok exists=true weight=450 lsn=%d from=primary", staleLSN), "--min-lsn", fmt.Sprint(staleLSN), "read-synapse", A, B)
	if out, errs, code := client(t, bin, addr, "--timeout", "3s", "--min-lsn", fmt.Sprint(staleLSN+1000), "read-synapse", A, B); code != 3 {
		t.Fatalf("stale read past the log: exit %d %q %q, want 3 (no answer)", code, out, errs)
	}
	if _, errs, code := client(t, bin, addr, "--stale", "stimulate", A, "1"); code != 2 {
		t.Fatalf("stale stimulate: exit %d %q, want 2", code, errs)
	}
	mustClient(t, bin, addr, "ok exists=false potential=0 in_degree=0 out_degree=0", "read-neuron", "999")
	// Writes still work after the restart.
	// (The recovery event may land after the read above: at most potential+1.)
	out, errs, code = client(t, bin, addr, "stimulate", A, "1")
	var after int
	if _, err := fmt.Sscanf(out, "ok potential=%d", &after); err != nil || code != 0 || after > potential+1 || after < 20 {
		t.Fatalf("stimulate after restart: exit %d %q %q (read %d before)", code, out, errs, potential)
	}

	if err := dev.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- dev.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

func TestClientNoDaemon(t *testing.T) {
	out := &bytes.Buffer{}
	root := rootCmd()
	root.SetOut(out)
	root.SetArgs([]string{"client", "--addr", freeAddr(t), "--timeout", "500ms", "read-neuron", "1"})
	err := root.Execute()
	var ee *exitError
	if err == nil || !asExit(err, &ee) || ee.code != 1 {
		t.Fatalf("client without a daemon: %v", err)
	}
}

func asExit(err error, target **exitError) bool {
	e, ok := err.(*exitError)
	*target = e
	return ok
}

func TestParseOp(t *testing.T) {
	r, err := parseOp([]string{"connect", "1", "2", "-30"})
	if err != nil || r.Op != model.OpConnect || r.Pre != 1 || r.Post != 2 || r.Value != -30 {
		t.Fatalf("%+v %v", r, err)
	}
	for _, args := range [][]string{nil, {"stimulate", "1"}, {"read-neuron", "-1"}, {"stimulate", "1", "x"}, {"nope"}} {
		if _, err := parseOp(args); err == nil {
			t.Errorf("%v parsed", args)
		}
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigValidation(t *testing.T) {
	dir := t.TempDir()
	obj := writeFile(t, dir, "objstore.yaml", "type: FILESYSTEM\nconfig:\n  directory: "+dir+"\n")
	good := fmt.Sprintf(`listen: 127.0.0.1:7420
subgraphs: 16
territories: [1, 2]
hosts: {1: "127.0.0.1:7420", 2: "127.0.0.1:7420"}
etcd: {endpoints: ["http://127.0.0.1:2379"]}
log: {backend: local, local: {path: %s/log.db}}
objstore: {config_file: %s}
`, dir, obj)
	if _, err := loadConfig(writeFile(t, dir, "good.yaml", good), "run"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, body, role string }{
		{"etcd.endpoints", "subgraphs: 1\nlisten: a:1\nterritories: [1]\nlog: {backend: local, local: {path: x}}\nobjstore: {config_file: " + obj + "}\n", "run"},
		{"etcd.endpoints[0]", strings.Replace(good, "http://127.0.0.1:2379", "127.0.0.1:2379", 1), "run"},
		{"log.backend", strings.Replace(good, "backend: local", "backend: kafka", 1), "run"},
		{"objstore.config_file", strings.Replace(good, obj, dir+"/missing.yaml", 1), "run"},
		{"subgraphs", strings.Replace(good, "subgraphs: 16", "subgraphs: 0", 1), "run"},
		{"territories", strings.Replace(good, "territories: [1, 2]", "territories: []", 1), "run"},
		{"hosts[2]", strings.Replace(good, `2: "127.0.0.1:7420"`, `2: "nowhere"`, 1), "run"},
		{"listen", strings.Replace(good, "listen: 127.0.0.1:7420", "listen: ''", 1), "run"},
		{"etcd.tls.ca_file", strings.Replace(good, `etcd: {endpoints: ["http://127.0.0.1:2379"]}`, `etcd: {endpoints: ["http://127.0.0.1:2379"], tls: {ca_file: /nonexistent/ca.pem}}`, 1), "run"},
		{"tls.cert_file", good + "tls: {cert_file: " + obj + "}\n", "run"},
		{"password", good + "etcd_password: hunter2\n", "run"}, // secrets are not accepted inline
		{"bootstrap_territories", good, "manager"},
		{"manager:", good, "manager"},
		{"hosts: the manager (1000)", good + "manager: 1000\n", "run"},
		{"control_plane.snapshot_grace", good + "control_plane: {snapshot_grace: soon}\n", "run"},
		{"control_plane.host_loss", good + "control_plane: {host_loss: 10ms}\n", "run"}, // shorter than a tick
	} {
		_, err := loadConfig(writeFile(t, dir, "bad.yaml", tc.body), tc.role)
		if err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows a secret: %v", err)
		}
	}
}

func TestClientTLSFlagsAreValidated(t *testing.T) {
	for _, args := range [][]string{
		{"--tls-cert", "c.pem", "read-neuron", "1"},                                                   // a cert without its key
		{"--tls-ca", filepath.Join(t.TempDir(), "missing-ca.pem"), "read-neuron", "1"},                // no such file
		{"--tls-cert", "c.pem", "--tls-key", filepath.Join(t.TempDir(), "k.pem"), "read-neuron", "1"}, // no such files
	} {
		root := rootCmd()
		root.SetOut(&bytes.Buffer{})
		root.SetArgs(append([]string{"client", "--addr", "127.0.0.1:1"}, args...))
		err := root.Execute()
		var ee *exitError
		if err == nil || !asExit(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "tls") {
			t.Errorf("client %v: %v", args, err)
		}
	}
}
