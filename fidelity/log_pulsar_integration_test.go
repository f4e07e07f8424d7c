//go:build integration

package fidelity

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/sirupsen/logrus"

	"territory/model"
	"territory/runtime/pulsarlog"
	"territory/runtime/servicetest"
)

// pulsarSide: the three processes of every sequence are three
// runtime/pulsarlog clients (each its own Pulsar connection, producers and
// readers, as three territory processes), shared by a generation of
// sequences (one stream, so one topic, per sequence). A generation's
// clients close when its sequences are done: a client keeps a reader and a
// producer per stream it used, and thousands of them slow the standalone
// broker down.
type pulsarSide struct {
	open func() ([3]*pulsarlog.Log, error)
	mu   sync.Mutex
	gens map[uint32]*pulsarGen
}

type pulsarGen struct {
	logs [3]*pulsarlog.Log
	done int
}

const pulsarGenSize = 100

func (p *pulsarSide) gen(stream uint32) (*pulsarGen, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := (stream - 1) / pulsarGenSize // streams start at 1
	if g := p.gens[id]; g != nil {
		return g, nil
	}
	logs, err := p.open()
	if err != nil {
		return nil, err
	}
	g := &pulsarGen{logs: logs}
	p.gens[id] = g
	return g, nil
}

func (p *pulsarSide) do(op logOp) (model.LogResponse, model.ServiceErr, error) {
	g, err := p.gen(op.Req.Stream)
	if err != nil {
		return model.LogResponse{}, model.ErrNone, err
	}
	d := 60 * time.Second
	if op.ambiguous() {
		d = time.Duration(op.AmbiguousMs) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return g.logs[op.Proc].Do(ctx, op.Req)
}

// finished closes a generation's clients after its last sequence.
func (p *pulsarSide) finished(stream uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.gens[(stream-1)/pulsarGenSize]
	if g == nil {
		return
	}
	if g.done++; g.done == pulsarGenSize {
		for _, l := range g.logs {
			go l.Close()
		}
	}
}

func (p *pulsarSide) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.gens {
		if g.done < pulsarGenSize {
			for _, l := range g.logs {
				l.Close()
			}
		}
	}
}

// quiesce: a sequence with an unknown outcome gives the requests it gave up
// on a second to finish (their sends, re-attaches and resolves run on in
// the adapter) before the auditor reads the final contents.
func (p *pulsarSide) quiesce() { time.Sleep(time.Second) }

// TestLogFidelityPulsar: seeded random sequences of log calls (opens that
// fence the other writer, appends at the tail, retries, conflicts, gaps,
// appends at an epoch nobody opened, ambiguous appends and opens whose
// caller stops waiting, reads from an LSN, past the tail and after a
// takeover, and the final contents) against the simulated log and a real
// Pulsar (scripts/pulsar-standalone.sh, 3 bookies) through
// runtime/pulsarlog.
func TestLogFidelityPulsar(t *testing.T) {
	url := servicetest.Env(t, "TERRITORY_PULSAR_URL", "run scripts/pulsar-standalone.sh start and "+
		`eval "$(scripts/pulsar-standalone.sh env | sed 's/^/export /')" (or scripts/test-integration.sh)`)
	admin := os.Getenv("TERRITORY_PULSAR_ADMIN_URL")
	if admin == "" {
		admin = "http://127.0.0.1:8080"
	}
	prefix := fmt.Sprintf("fidelity-%d", time.Now().UnixNano())
	// The client logs every expected takeover and fencing as an error:
	// only the answers matter here.
	lr := logrus.New()
	lr.SetOutput(io.Discard)
	quiet := plog.NewLoggerWithLogrus(lr)
	setup := true
	side := &pulsarSide{gens: map[uint32]*pulsarGen{}, open: func() ([3]*pulsarlog.Log, error) {
		var logs [3]*pulsarlog.Log
		for i := range logs {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			l, err := pulsarlog.New(ctx, pulsarlog.Config{
				ServiceURL: url, AdminURL: admin, Namespace: "territory-test", TopicPrefix: prefix,
				OperationTimeout: 30 * time.Second, SkipNamespaceSetup: !setup, Logger: quiet,
			})
			cancel()
			if err != nil {
				for _, o := range logs[:i] {
					o.Close()
				}
				return logs, fmt.Errorf("pulsarlog.New: %w", err)
			}
			setup = false
			logs[i] = l
		}
		return logs, nil
	}}
	if _, err := side.gen(1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(side.close)
	workers := 24
	if v := os.Getenv("TERRITORY_FIDELITY_LOG_WORKERS"); v != "" {
		fmt.Sscan(v, &workers)
	}
	runLogFidelity(t, "log-pulsar", "log vs Pulsar (3 bookies)", sequences(40, 500), workers, 1, side)
}
