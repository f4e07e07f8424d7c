// Package chaos runs real clusters under real faults and checks them with the
// simulator's checks: `sim chaos`. Its process, configuration and log-reading
// helpers are also the harness of the end-to-end tests (cmd/territoryd/e2e).
//
// A cluster is territoryd processes built from this tree (`territoryd run`
// and `territoryd manager`), an etcd embedded in the driving process, the
// Pulsar standalone and the S3 server that scripts/test-integration.sh starts.
// Network faults go through toxiproxy proxies (run in process) in front of
// etcd: the only service path a proxy can honestly cut, since Pulsar's
// brokers advertise their own address and clients bypass any proxy.
package chaos

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"territory/model"
)

// BuildTerritoryd builds territory/cmd/territoryd from the module in the
// working directory into dir and returns the binary's path.
func BuildTerritoryd(dir string) (string, error) {
	bin := filepath.Join(dir, "territoryd")
	build := exec.Command("go", "build", "-o", bin, "territory/cmd/territoryd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build territoryd: %w", err)
	}
	return bin, nil
}

// Proc is a territoryd process. Its stderr (slog JSON) is kept in memory and
// in DIR/NAME.log. The kernel kills it if the driving process dies
// (Pdeathsig).
type Proc struct {
	Name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	exited chan struct{}
	code   int
	listen chan string
}

var listenLine = regexp.MustCompile(`listening on (\S+)`)

// StartProc starts bin with args; its log goes to dir/name.log (appended).
func StartProc(bin, dir, name string, args ...string) (*Proc, error) {
	p := &Proc{Name: name, exited: make(chan struct{}), code: -1, listen: make(chan string, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case p.listen <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			fmt.Fprintln(logf, line)
		}
	}()
	go func() {
		readers.Wait() // Wait closes the pipes: read them to the end first
		err := p.cmd.Wait()
		logf.Close()
		var ee *exec.ExitError
		switch {
		case err == nil:
			p.code = 0
		case errors.As(err, &ee):
			p.code = ee.ExitCode() // -1 if killed by a signal
		}
		close(p.exited)
	}()
	return p, nil
}

// WaitListening waits up to d for the process's "listening on" line.
func (p *Proc) WaitListening(d time.Duration) (string, error) {
	select {
	case addr := <-p.listen:
		return addr, nil
	case <-p.exited:
		return "", fmt.Errorf("%s exited (code %d) before listening:\n%s", p.Name, p.code, p.Tail(30))
	case <-time.After(d):
		return "", fmt.Errorf("%s: not listening after %s:\n%s", p.Name, d, p.Tail(30))
	}
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Tail is the last n lines of the log.
func (p *Proc) Tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines[max(0, len(p.lines)-n):], "\n")
}

// Lines is a copy of the whole log.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.lines)
}

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Exited is closed when the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Code is the exit code (-1 while running or when killed by a signal).
func (p *Proc) Code() int {
	select {
	case <-p.exited:
		return p.code
	default:
		return -1
	}
}

// Kill sends SIGKILL (kill -9; a stopped process is continued first) and
// waits up to 10 s for the exit.
func (p *Proc) Kill() error {
	if p.Running() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s: no exit 10s after SIGKILL", p.Name)
	}
}

// Signal sends sig.
func (p *Proc) Signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: %v: %w", p.Name, sig, err)
	}
	return nil
}

// WaitExit waits up to d for the process to exit on its own and returns its code.
func (p *Proc) WaitExit(d time.Duration) (int, error) {
	select {
	case <-p.exited:
		return p.code, nil
	case <-time.After(d):
		return -1, fmt.Errorf("%s: still running after %s:\n%s", p.Name, d, p.Tail(20))
	}
}

// Records parses the JSON log lines (non-JSON lines are skipped).
func (p *Proc) Records() []map[string]any {
	var out []map[string]any
	for _, l := range p.Lines() {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// WaitRecords polls the JSON log until pred holds for the records.
func (p *Proc) WaitRecords(d time.Duration, what string, pred func([]map[string]any) bool) ([]map[string]any, error) {
	deadline := time.Now().Add(d)
	for {
		rs := p.Records()
		if pred(rs) {
			return rs, nil
		}
		if time.Now().After(deadline) {
			return rs, fmt.Errorf("%s: no %s within %s:\n%s", p.Name, what, d, p.Tail(30))
		}
		if !p.Running() {
			return rs, fmt.Errorf("%s exited (code %d) while waiting for %s:\n%s", p.Name, p.Code(), what, p.Tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitOperational waits until the process serves every subgraph in sgs and
// returns the last "operational" record of each subgraph it serves.
func (p *Proc) WaitOperational(d time.Duration, sgs ...model.SubgraphID) (map[model.SubgraphID]map[string]any, error) {
	var ops map[model.SubgraphID]map[string]any
	_, err := p.WaitRecords(d, fmt.Sprintf("operational subgraphs %v", sgs), func(rs []map[string]any) bool {
		ops = Operational(rs)
		for _, sg := range sgs {
			if ops[sg] == nil {
				return false
			}
		}
		return true
	})
	return ops, err
}

// Num is a numeric field of a log record.
func Num(m map[string]any, k string) int64 {
	f, _ := m[k].(float64)
	return int64(f)
}

// Str is a string field of a log record.
func Str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// Operational returns, per subgraph, the last "operational" record not
// followed by a "stepped down" one.
func Operational(rs []map[string]any) map[model.SubgraphID]map[string]any {
	out := map[model.SubgraphID]map[string]any{}
	for _, r := range rs {
		switch Str(r, "msg") {
		case "operational":
			out[model.SubgraphID(Num(r, "subgraph"))] = r
		case "stepped down":
			delete(out, model.SubgraphID(Num(r, "subgraph")))
		}
	}
	return out
}
