//go:build integration

package pulsarlog

import (
	"context"
	"sync"
	"testing"
	"time"

	"territory/conformance"
	"territory/model"
	"territory/runtime/servicetest"
)

// pulsarService runs the log suite on a real Pulsar (the standalone of
// scripts/pulsar-standalone.sh, 3 bookies). Each case gets its own topic
// prefix; each client is its own Log (its own Pulsar client, producers and
// readers), as two territory processes are. Send's lost acknowledgement is
// an append really in flight on another goroutine.
type pulsarService struct {
	t        *testing.T
	prefix   string
	inflight sync.WaitGroup
	lose     conformance.Alternate
}

func newPulsarService(t *testing.T) *pulsarService {
	servicetest.Env(t, "TERRITORY_PULSAR_URL", `run scripts/pulsar-standalone.sh start and `+
		`eval "$(scripts/pulsar-standalone.sh env | sed 's/^/export /')" (or scripts/test-integration.sh)`)
	p := &pulsarService{t: t, prefix: testPrefix(t)}
	t.Cleanup(p.inflight.Wait) // before the clients close (cleanups run last-in first-out)
	return p
}

func (p *pulsarService) Client() conformance.LogClient {
	return &pulsarClient{p: p, l: newTestLog(p.t, p.prefix)}
}

// Exceptions: see conformance.FencedRetryMayAnswerOK (stream.enqueue answers
// a retry at or below its healthy tenure's tail from its cache of recent
// acknowledgements, before it knows of the higher open).
func (p *pulsarService) Exceptions() map[conformance.Exception]string {
	return map[conformance.Exception]string{
		conformance.FencedRetryMayAnswerOK: "a fenced process that has not noticed yet answers a retry of its own landed entry from its tenure",
	}
}

type pulsarClient struct {
	p *pulsarService
	l *Log
}

func (c *pulsarClient) Do(req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return c.l.Do(ctx, req)
}

func (c *pulsarClient) Send(req model.LogRequest) {
	if !c.p.lose.AnswerLost() {
		return
	}
	c.p.inflight.Add(1)
	go func() {
		defer c.p.inflight.Done()
		c.Do(req)
	}()
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.LogCases(), conformance.Lacks{
		conformance.Replication: "stopping a bookie of the shared standalone would disturb every other integration test " +
			"running against it; BookKeeper's ensemble changes are what the simulated bookies (sim/replog) model and test",
		conformance.Restart: "stopping the shared standalone would break the tests of other packages running in parallel; " +
			"TestDurabilityAcrossRestart covers it on its own (scripts/test-integration.sh with TERRITORY_PULSAR_RESTART_TEST=1)",
	}, func(t *testing.T) conformance.LogService { return newPulsarService(t) })
}
