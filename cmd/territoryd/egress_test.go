package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"territory/model"
	"territory/runtime/etcdcoord"
	"territory/runtime/etcdembed"
)

// TestEgressStandbyTakesOver: two `territoryd egress` processes on one etcd;
// one leads (it holds egress/leader and took stream epoch 1); kill -9 of the
// leader, and the standby takes the leadership and a newer stream epoch
// within a few lease periods. (Each has a local log of its own here, so the
// stream itself is not shared: the e2e on Pulsar shares it.)
func TestEgressStandbyTakesOver(t *testing.T) {
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
	co, err := etcdcoord.Dial(etcdcoord.Config{Endpoints: []string{m.Client}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	get := func(key string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, se, err := co.Do(ctx, model.CoordRequest{Kind: model.CoordGet, Key: key})
		if err != nil || se != model.ErrNone || len(resp.KVs) == 0 {
			return ""
		}
		return string(resp.KVs[0].Value)
	}
	waitFor := func(what, key, want string, d time.Duration) {
		t.Helper()
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if get(key) == want {
				return
			}
		}
		t.Fatalf("%s: %s is %q, want %q", what, key, get(key), want)
	}
	conf := func(id int) string {
		return writeFile(t, dir, fmt.Sprintf("egress-%d.yaml", id), fmt.Sprintf(`subgraphs: 4
metrics_listen: ""
log_level: warn
etcd: {endpoints: ["%s"]}
egress_id: %d
log: {backend: local, local: {path: %s}}
`, m.Client, id, filepath.Join(dir, fmt.Sprintf("log-%d.db", id))))
	}
	a := startProc(t, bin, "territoryd egress: running as 501", "egress", "--config", conf(501))
	waitFor("the first egress leads", model.EgressLeaderKey, "501", 10*time.Second)
	waitFor("its stream epoch", model.EgressEpochKey, "1", 10*time.Second)
	b := startProc(t, bin, "territoryd egress: running as 502", "egress", "--config", conf(502))
	time.Sleep(time.Second)
	if got := get(model.EgressLeaderKey); got != "501" {
		t.Fatalf("the standby took the lead from a live leader: %q", got)
	}
	killed := time.Now()
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.Wait()
	waitFor("the standby takes over", model.EgressLeaderKey, "502", 15*time.Second)
	waitFor("at a newer stream epoch", model.EgressEpochKey, "2", 10*time.Second)
	t.Logf("standby leading %s after kill -9", time.Since(killed).Round(100*time.Millisecond))
	b.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- b.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	// A configuration without egress_id names the field and exits 2.
	bad := writeFile(t, dir, "bad.yaml", fmt.Sprintf("subgraphs: 4\netcd: {endpoints: [%q]}\nlog: {backend: local, local: {path: x}}\n", m.Client))
	out, err := exec.Command(bin, "egress", "--config", bad).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "egress_id") {
		t.Fatalf("bad config: %v %s", err, out)
	}
}
