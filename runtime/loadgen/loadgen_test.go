package loadgen

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"territory/model"
)

var errUnknown = errors.New("unknown")

// fakeStore answers from a map, and every 10th stimulate is unknown.
type fakeStore struct {
	mu    sync.Mutex
	calls map[model.OpKind]int
}

func (f *fakeStore) Do(_ context.Context, req model.Request) (model.Request, model.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[req.Op]++
	if req.Op == model.OpStimulate && f.calls[req.Op]%10 == 0 {
		return req, model.Result{}, errUnknown
	}
	if req.Op == model.OpConnect {
		return req, model.Result{Status: model.StatusRejected, Reason: model.ReasonMaxInDegree}, nil
	}
	return req, model.Result{Status: model.StatusOK}, nil
}

func TestRunCountsEveryOperationAndOutcome(t *testing.T) {
	f := &fakeStore{calls: map[model.OpKind]int{}}
	progress := 0
	var mu sync.Mutex
	cfg := Config{Workers: 8, Ops: 2000, Neurons: 50, Mix: Mix{model.OpStimulate: 1, model.OpConnect: 1}, Seed: 3, OpTimeout: time.Second,
		Progress: func() { mu.Lock(); progress++; mu.Unlock() }}
	rep, err := Run(context.Background(), cfg, f, func(err error) bool { return errors.Is(err, errUnknown) })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ops != 2000 || progress != 2000 || rep.SetupOps != 50 || f.calls[model.OpCreateNeuron] != 50 {
		t.Fatalf("ops %d, progress %d, setup %d, creates %d", rep.Ops, progress, rep.SetupOps, f.calls[model.OpCreateNeuron])
	}
	st, cn := rep.ByOp["stimulate"], rep.ByOp["connect"]
	if st == nil || cn == nil || st.Count+cn.Count != 2000 {
		t.Fatalf("by op: %+v %+v", st, cn)
	}
	if cn.Outcomes["rejected (MAX_IN_DEGREE_POLICY_EXCEEDED)"] != cn.Count || rep.Unknown == 0 || rep.Unknown != st.Outcomes["unknown"] {
		t.Fatalf("outcomes: connect %v stimulate %v unknown %d", cn.Outcomes, st.Outcomes, rep.Unknown)
	}
	if rep.All.P99Ms < rep.All.P50Ms || rep.All.MaxMs < rep.All.P99Ms {
		t.Fatalf("percentiles out of order: %+v", rep.All)
	}
}

func TestConfigAndMixAreValidated(t *testing.T) {
	for _, bad := range []string{"", "stimulate", "fly=1", "stimulate=-1", "stimulate=0", "stimulate=x"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("mix %q accepted", bad)
		}
	}
	m, err := ParseMix("stimulate=3, read-neuron=1")
	if err != nil || m[model.OpStimulate] != 3 || m[model.OpReadNeuron] != 1 {
		t.Fatalf("mix: %v %v", m, err)
	}
	for _, cfg := range []Config{
		{Workers: 0, Ops: 1, Neurons: 1, Mix: m, OpTimeout: time.Second},
		{Workers: 1, Neurons: 1, Mix: m, OpTimeout: time.Second},
		{Workers: 1, Ops: 1, Neurons: 0, Mix: m, OpTimeout: time.Second},
		{Workers: 1, Ops: 1, Neurons: 1, Mix: m},
	} {
		if _, err := Run(context.Background(), cfg, &fakeStore{calls: map[model.OpKind]int{}}, nil); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}
