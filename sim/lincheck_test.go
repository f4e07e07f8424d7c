package sim_test

import (
	"slices"
	"testing"

	"github.com/anishathalye/porcupine"

	"territory/linearizability"
	"territory/scenarios"
	"territory/sim"
)

// Both checkers on real histories: they pass, and they agree on the same
// histories tampered with (an answer flipped, a stimulate rejected, a stale
// read).
func TestCheckersAgreeOnSimHistories(t *testing.T) {
	decays := 0
	for _, name := range []string{"crash-recovery", "services"} {
		for seed := uint64(1); seed <= 3; seed++ {
			sc, err := scenarios.Get(name)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := sc.Config(seed, 30_000)
			if err != nil {
				t.Fatal(err)
			}
			w, err := sim.NewWorld(cfg, seed)
			if err != nil {
				t.Fatal(err)
			}
			out, err := w.Run()
			if err != nil {
				t.Fatal(err)
			}
			ops := out.History.Operations()
			for _, op := range ops {
				if op.Input.(linearizability.Input).Kind == linearizability.Decay {
					decays++
				}
			}
			check := func(ops []porcupine.Operation) (linearizability.Verdict, linearizability.LogResult) {
				return linearizability.Check(sim.LinConfig(cfg), ops, 0).Verdict, linearizability.LogCheck(sim.LinBounds(), ops, out.Logs)
			}
			if p, l := check(ops); p != linearizability.VerdictOK || l.Verdict != linearizability.VerdictOK {
				t.Fatalf("%s/%d: porcupine %s, log checker %v", name, seed, p, l)
			}
			for tname, f := range map[string]func(op *porcupine.Operation, last map[uint64]*porcupine.Operation) bool{
				"flip an answer": func(op *porcupine.Operation, _ map[uint64]*porcupine.Operation) bool {
					o := op.Output.(linearizability.Output)
					if op.Input.(linearizability.Input).Kind != linearizability.Stimulate || o.Status != linearizability.StatusOK {
						return false
					}
					o.Value++
					op.Output = o
					return true
				},
				"reject a stimulate": func(op *porcupine.Operation, _ map[uint64]*porcupine.Operation) bool {
					if op.Input.(linearizability.Input).Kind != linearizability.Stimulate || op.Output.(linearizability.Output).Status != linearizability.StatusOK {
						return false
					}
					op.Output = linearizability.Output{Status: linearizability.StatusRejected}
					return true
				},
				"stale read": func(op *porcupine.Operation, last map[uint64]*porcupine.Operation) bool {
					in, o := op.Input.(linearizability.Input), op.Output.(linearizability.Output)
					if in.Kind != linearizability.ReadNeuron || o.Status != linearizability.StatusOK {
						return false
					}
					w := last[in.Neuron]
					if w == nil || w.Return >= op.Call || w.Input.(linearizability.Input).Delta == 0 {
						return false
					}
					old := w.Output.(linearizability.Output).Value - w.Input.(linearizability.Input).Delta
					if old == o.Value {
						return false
					}
					op.Output = linearizability.Output{Status: linearizability.StatusOK, Value: old, Exists: true}
					return true
				},
			} {
				tampered := slices.Clone(ops)
				last := map[uint64]*porcupine.Operation{}
				done := false
				for i := range tampered {
					op := &tampered[i]
					if f(op, last) {
						done = true
						break
					}
					if in := op.Input.(linearizability.Input); in.Kind == linearizability.Stimulate && op.Output.(linearizability.Output).Status == linearizability.StatusOK {
						last[in.Neuron] = op
					}
				}
				if !done {
					t.Fatalf("%s/%d %s: nothing to tamper with", name, seed, tname)
				}
				p, l := check(tampered)
				if p != linearizability.VerdictViolation || l.Verdict != linearizability.VerdictViolation {
					t.Errorf("%s/%d %s: porcupine %s, log checker %v", name, seed, tname, p, l)
				}
			}
		}
	}
	if decays == 0 {
		t.Fatal("no recovery decay in the histories")
	}
}
