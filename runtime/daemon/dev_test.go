package daemon

import (
	"context"
	"testing"
	"time"

	"territory/model"
)

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
	c, err = DialClient(context.Background(), d.Addr, nil, nil, nil)
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
}
