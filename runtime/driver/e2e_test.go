package driver_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"territory/model"
	"territory/runtime/blob"
	"territory/runtime/driver"
	"territory/runtime/etcdcoord"
	"territory/runtime/etcdembed"
	"territory/runtime/locallog"
	"territory/runtime/transport"
)

// TestEndToEnd drives real model.Territory and model.Client state machines,
// each under its own driver, against embedded etcd, the local log and a
// filesystem bucket; then replaces the territories with new incarnations,
// which recover every subgraph from the log, and reads everything back.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	m, err := etcdembed.Single(filepath.Join(dir, "etcd"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	m.Fast = true
	e, err := etcdembed.Start(m, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	coord, err := etcdcoord.Dial(etcdcoord.Config{Endpoints: []string{m.Client}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	log, err := locallog.Open(filepath.Join(dir, "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	bs, err := blob.Open(context.Background(), blob.FilesystemConfig(filepath.Join(dir, "blobs")), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	tr, err := transport.New(transport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()

	const subgraphs = 4
	territories := []model.HostID{1, 2}
	plan, _ := model.NewBootstrapPlan(subgraphs, territories, model.DefaultPolicy())
	for _, boot := range plan.Txns() {
		if r, se, err := coord.Do(context.Background(), boot); err != nil || se != model.ErrNone || !r.Succeeded {
			t.Fatalf("bootstrap: %+v %v %v", r, se, err)
		}
	}

	var mu sync.Mutex
	operational := map[model.SubgraphID]uint64{} // subgraph -> epoch
	committed := 0
	observe := func(_ model.HostID, f model.Fact) {
		mu.Lock()
		defer mu.Unlock()
		switch f := f.(type) {
		case model.FactOperational:
			operational[f.Subgraph] = f.Epoch
		case model.FactCommitted:
			committed++
		}
	}
	startTerritories := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		var ds []*driver.Driver
		for _, id := range territories {
			node, err := model.NewTerritory(model.DefaultTerritoryConfig(id, subgraphs))
			if err != nil {
				t.Fatal(err)
			}
			d, err := driver.New(driver.Config{ID: id, Node: node, Transport: tr, Coord: coord, Log: log, Blob: bs, Observer: observe})
			if err != nil {
				t.Fatal(err)
			}
			tr.Register(id, d.Deliver)
			ds = append(ds, d)
			go d.Run(ctx)
		}
		return func() {
			cancel()
			for _, d := range ds {
				<-d.Done()
			}
		}
	}
	waitOperational := func(epoch uint64) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			n := 0
			for _, e := range operational {
				if e >= epoch {
					n++
				}
			}
			mu.Unlock()
			if n == subgraphs {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d subgraphs operational at epoch %d", n, subgraphs, epoch)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	newClient := func(id model.HostID) (*driver.Client, func()) {
		c, err := driver.NewClient(model.DefaultClientConfig(id, driver.NewSession(), subgraphs), driver.Config{Transport: tr, Coord: coord})
		if err != nil {
			t.Fatal(err)
		}
		tr.Register(id, c.Driver().Deliver)
		ctx, cancel := context.WithCancel(context.Background())
		go c.Driver().Run(ctx)
		return c, func() { cancel(); <-c.Driver().Done() }
	}
	do := func(c *driver.Client, req model.Request) model.Result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, r, err := c.Do(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", req.String(), err)
		}
		return r
	}

	stop := startTerritories()
	waitOperational(1)
	c, closeClient := newClient(100)
	// Two neurons in the same subgraph, so that a synapse between them is local.
	a := model.NeuronID(1)
	b := a + 1
	for model.SubgraphOf(b, subgraphs) != model.SubgraphOf(a, subgraphs) {
		b++
	}
	for _, n := range []model.NeuronID{a, b, 50, 51} {
		if r := do(c, model.Request{Op: model.OpCreateNeuron, Neuron: n}); r.Status != model.StatusOK {
			t.Fatalf("create %d: %+v", n, r)
		}
	}
	if r := do(c, model.Request{Op: model.OpStimulate, Neuron: a, Value: 700}); r.Status != model.StatusOK || r.Value != 700 {
		t.Fatalf("stimulate: %+v", r)
	}
	if r := do(c, model.Request{Op: model.OpConnect, Pre: a, Post: b, Value: 40}); r.Status != model.StatusOK {
		t.Fatalf("connect: %+v", r)
	}
	if r := do(c, model.Request{Op: model.OpAdjustWeight, Pre: a, Post: b, Value: 2}); r.Status != model.StatusOK || r.Value != 42 {
		t.Fatalf("adjust: %+v", r)
	}
	if r := do(c, model.Request{Op: model.OpReadSynapse, Pre: a, Post: b}); r.Status != model.StatusOK || !r.Exists || r.Value != 42 {
		t.Fatalf("read synapse: %+v", r)
	}
	closeClient()
	stop()
	mu.Lock()
	if committed < 7 {
		t.Fatalf("%d commits observed", committed)
	}
	mu.Unlock()

	// New incarnations: each claims at a higher epoch and replays the log.
	stop = startTerritories()
	defer stop()
	waitOperational(2)
	c, closeClient = newClient(101)
	defer closeClient()
	if r := do(c, model.Request{Op: model.OpReadNeuron, Neuron: a}); r.Status != model.StatusOK || !r.Exists || r.Value != 700 {
		t.Fatalf("read neuron after restart: %+v", r)
	}
	if r := do(c, model.Request{Op: model.OpReadSynapse, Pre: a, Post: b}); r.Status != model.StatusOK || !r.Exists || r.Value != 42 {
		t.Fatalf("read synapse after restart: %+v", r)
	}
	for _, n := range []model.NeuronID{50, 51} {
		if r := do(c, model.Request{Op: model.OpReadNeuron, Neuron: n}); r.Status != model.StatusOK || !r.Exists {
			t.Fatalf("read %d after restart: %+v", n, r)
		}
	}
	// The fence: epoch 1 can no longer append to any stream.
	for sg := range uint32(subgraphs) {
		_, se, err := log.Do(context.Background(), model.LogRequest{Kind: model.LogAppend, Stream: sg, Epoch: 1, LSN: 1000, Data: []byte("stale")})
		if err != nil || se != model.ErrFenced {
			t.Fatalf("stale append to stream %d: %v %v", sg, se, err)
		}
	}
}
