package fidelity

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"territory/model"
)

// simAsReal is a simulated log standing in for the real one: the log
// comparison run against the simulator itself must agree everywhere,
// ambiguous calls included (their fate drawn at random, as a real network
// would pick it); with a planted defect it must not.
type simAsReal struct {
	mu     sync.Mutex
	worlds map[uint32]*simLogWorld
	r      *rand.Rand
	defect func(op logOp, r *model.LogResponse, se *model.ServiceErr)
	held   []heldCall
}

// heldCall reaches the log just before the after+1-th later call of its stream.
type heldCall struct {
	stream uint32
	op     logOp
	after  int
}

func newSimAsReal() *simAsReal {
	return &simAsReal{worlds: map[uint32]*simLogWorld{}, r: rand.New(rand.NewPCG(1, 2))}
}

func (s *simAsReal) do(op logOp) (model.LogResponse, model.ServiceErr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.worlds[op.Req.Stream]
	if w == nil {
		w = newSimLogWorld(uint64(op.Req.Stream) + 99)
		s.worlds[op.Req.Stream] = w
	}
	// Held calls due now reach the log first.
	keep := s.held[:0]
	for _, h := range s.held {
		if h.stream == op.Req.Stream && h.after == 0 {
			w.applyRaw(h.op, fateDone)
			continue
		}
		if h.stream == op.Req.Stream {
			h.after--
		}
		keep = append(keep, h)
	}
	s.held = keep
	f := fateAnswered
	if op.ambiguous() {
		switch s.r.IntN(4) {
		case 0:
		case 1:
			f = fateDone
		case 2:
			f = fateLost
		default:
			// In flight over the next few calls.
			s.held = append(s.held, heldCall{stream: op.Req.Stream, op: op, after: s.r.IntN(4)})
			return model.LogResponse{}, model.ErrNone, errAnswerLost
		}
	}
	resp, se, err := w.applyRaw(op, f)
	if err == nil && s.defect != nil {
		s.defect(op, &resp, &se)
	}
	return resp, se, err
}

func TestLogComparisonAgainstItself(t *testing.T) {
	t.Setenv(OutVar, t.TempDir()) // not a service's figures
	all := runLogFidelity(t, "log-sim-self", "simulated log vs itself", sequences(200, 500), 4, 0, newSimAsReal())
	amb, ops := 0, 0
	for c, v := range all {
		ops += v.Total
		if strings.Contains(c, "ambiguous") {
			amb += v.Total
		}
	}
	if amb == 0 || ops < 1000 {
		t.Fatalf("%d calls, %d ambiguous: the sequences do not exercise the comparison", ops, amb)
	}
}

// TestLogComparisonFindsPlantedDefects: each defect of a real log must make
// some sequence differ.
func TestLogComparisonFindsPlantedDefects(t *testing.T) {
	for name, defect := range map[string]func(op logOp, r *model.LogResponse, se *model.ServiceErr){
		"read-drops-last-entry": func(op logOp, r *model.LogResponse, se *model.ServiceErr) {
			if op.Req.Kind == model.LogRead && len(r.Entries) > 1 {
				r.Entries = r.Entries[:len(r.Entries)-1]
			}
		},
		"stale-open-accepted": func(op logOp, r *model.LogResponse, se *model.ServiceErr) {
			if op.Req.Kind == model.LogOpen && *se == model.ErrFenced {
				*se = model.ErrNone
			}
		},
		"gap-is-conflict": func(op logOp, r *model.LogResponse, se *model.ServiceErr) {
			if *se == model.ErrLSNGap {
				*se = model.ErrLSNConflict
			}
		},
		"open-tail-off-by-one": func(op logOp, r *model.LogResponse, se *model.ServiceErr) {
			if op.Req.Kind == model.LogOpen && *se == model.ErrNone && r.TailLSN > 0 {
				r.TailLSN--
			}
		},
	} {
		real := newSimAsReal()
		real.defect = defect
		found := 0
		for seed := range uint64(100) {
			if _, d := runLogSequence(seed, uint32(seed), real); len(d) > 0 {
				found++
			}
		}
		if found == 0 {
			t.Errorf("planted defect %s: no sequence of 100 differs", name)
		}
	}
}
