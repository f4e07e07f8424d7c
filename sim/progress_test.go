package sim

import (
	"strings"
	"testing"

	"territory/model"
	"territory/sim/invariants"
)

// progressRun plays one client's operations into a test world: one submitted
// every 100ms for 10 s, answered by answer (nil: it ends unknown).
func progressRun(t *testing.T, answer func(atMs int64) *model.Result) []invariants.Violation {
	t.Helper()
	w := testWorld(t)
	w.cfg.Progress = ProgressBounds{WindowMs: 1_000, MinOps: 5}
	c := checker[*progressChecker](t, w)
	c.lim = w.cfg.ProgressLimits()
	cl := w.clients[0]
	for i := int64(0); i < 100; i++ {
		atMs := i * 100
		req := model.Request{ID: model.EventUUID{Hi: 1, Lo: uint64(i + 1)}, Op: model.OpReadNeuron, Neuron: 1}
		w.k.At(atMs*1000, func() {
			w.publish(OpCalled{Client: cl.id, Req: req})
			r := answer(atMs)
			done := model.FactOpDone{Client: cl.id, Request: req, Tries: 1}
			if r == nil {
				done.Unknown = true
				w.publish(ReplySeen{Client: cl.id, From: w.territories[0].id, Reply: model.Reply{ID: req.ID, Result: model.Result{Status: model.StatusBusy}}})
			} else {
				done.Result = *r
			}
			w.publish(OpReturned{Client: cl.id, Done: done})
		})
	}
	if err := w.k.Run(w.cfg.IssueEndMs() * 1000); err != nil {
		t.Fatal(err)
	}
	return c.Final(w.view)
}

func hasViolation(vs []invariants.Violation, detail string) bool {
	for _, v := range vs {
		if v.Invariant == Progress && strings.Contains(v.Detail, detail) {
			return true
		}
	}
	return false
}

func TestProgressPassesAStoreThatAnswers(t *testing.T) {
	vs := progressRun(t, func(int64) *model.Result { return &model.Result{Status: model.StatusOK} })
	if len(vs) != 0 {
		t.Fatalf("a store answering every operation flagged: %v", vs)
	}
}

func TestProgressCatchesAStoreThatNeverAnswers(t *testing.T) {
	vs := progressRun(t, func(int64) *model.Result { return nil }) // planted: every outcome unknown
	for _, want := range []string{"unknown outcome in a run without faults", "unknown outcomes for 100 operations", "fewer than 5 operations", "last final answer"} {
		if !hasViolation(vs, want) {
			t.Errorf("a store that never answers: no %q in %v", want, vs)
		}
	}
}

func TestProgressCatchesAStoreThatAnswersOnlyBusy(t *testing.T) {
	// Planted: every attempt is answered busy, so every operation ends unknown.
	vs := progressRun(t, func(int64) *model.Result { return nil })
	if !hasViolation(vs, "busy replies for 100 operations") {
		t.Fatalf("a store answering only busy not caught: %v", vs)
	}
	// Planted: the client gives up with a final busy answer.
	vs = progressRun(t, func(int64) *model.Result { return &model.Result{Status: model.StatusBusy} })
	if !hasViolation(vs, "final busy answers") || !hasViolation(vs, "fewer than 5 operations") {
		t.Fatalf("final busy answers not caught: %v", vs)
	}
}

func TestProgressCatchesAStoreThatStopsAnswering(t *testing.T) {
	vs := progressRun(t, func(atMs int64) *model.Result { // planted: answers stop at 6 s
		if atMs >= 6_000 {
			return nil
		}
		return &model.Result{Status: model.StatusOK}
	})
	if !hasViolation(vs, "in 4 window(s)") || !hasViolation(vs, "last final answer is 4100ms old") {
		t.Fatalf("a store that stops answering not caught: %v", vs)
	}
}

func TestProgressSkipsWindowsOfAClientThatIsDown(t *testing.T) {
	w := testWorld(t)
	c := checker[*progressChecker](t, w)
	cl := w.clients[0].id
	w.publish(HostChanged{Host: cl, Change: HostCrashed})
	if !c.wasDown(cl, 5_000_000, 6_000_000) {
		t.Fatal("a crashed client not seen down")
	}
}
