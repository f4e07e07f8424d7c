package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"territory/model"
	"territory/runtime/driver"
)

// watchCallsOK counts the client's route watch registrations that the
// daemon established (territory_service_call_seconds, coord/watch/ok).
func watchCallsOK(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != "territory_service_call_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["service"] == "coord" && labels["op"] == "watch" && labels["outcome"] == model.OutcomeOK.String() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

func startDev(t *testing.T, dir string) *Dev {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	d, err := StartDev(ctx, DevOptions{DataDir: dir, Listen: "127.0.0.1:0", Subgraphs: 8, Territories: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WaitOperational(ctx); err != nil {
		d.Stop()
		t.Fatal(err)
	}
	return d
}

func run(t *testing.T, c *Client, req model.Request) model.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, r, err := c.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", req.String(), err)
	}
	return r
}

// TestDevRestart writes through a client over gRPC, stops the whole dev
// cluster, starts it again on the same data directory and reads everything back.
func TestDevRestart(t *testing.T) {
	dir := t.TempDir()
	d := startDev(t, dir)
	if !d.Bootstrapped {
		t.Fatal("a new data directory was not bootstrapped")
	}
	c, err := DialClient(context.Background(), d.Addr, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for n := model.NeuronID(1); n <= 20; n++ {
		if r := run(t, c, model.Request{Op: model.OpCreateNeuron, Neuron: n}); r.Status != model.StatusOK {
			t.Fatalf("create %d: %+v", n, r)
		}
		if r := run(t, c, model.Request{Op: model.OpStimulate, Neuron: n, Value: int64(n) * 100}); r.Status != model.StatusOK {
			t.Fatalf("stimulate %d: %+v", n, r)
		}
	}
	if r := run(t, c, model.Request{Op: model.OpCreateNeuron, Neuron: 3}); r.Status != model.StatusAlreadyExists {
		t.Fatalf("create twice: %+v", r)
	}
	c.Close()
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}

	d = startDev(t, dir)
	defer d.Stop()
	if d.Bootstrapped {
		t.Fatal("a restart bootstrapped again")
	}
	reg := prometheus.NewRegistry()
	c, err = DialClient(context.Background(), d.Addr, nil, nil, driver.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for n := model.NeuronID(1); n <= 20; n++ {
		// The manager commits TerritoryRecovered on each re-claim, whose
		// handler decays potentials for the downtime: at most a little lower.
		r := run(t, c, model.Request{Op: model.OpReadNeuron, Neuron: n})
		if r.Status != model.StatusOK || !r.Exists || r.Value > int64(n)*100 || r.Value < int64(n)*90 {
			t.Fatalf("read %d after restart: %+v (want %d less decay)", n, r, int64(n)*100)
		}
	}
	if r := run(t, c, model.Request{Op: model.OpReadNeuron, Neuron: 999}); r.Status == model.StatusOK && r.Exists {
		t.Fatalf("read of a neuron never created: %+v", r)
	}
	// The client keeps its routes from a watch the daemon serves.
	if n := watchCallsOK(t, reg); n != 1 {
		t.Fatalf("%d route watches established for the client, want 1", n)
	}
}
