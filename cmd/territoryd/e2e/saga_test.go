//go:build integration

package e2e

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"territory/model"
	"territory/runtime/driver"
)

// sagaFolds folds both subgraphs' Pulsar logs.
func sagaFolds(t *testing.T, c *cluster) (pre, post *model.SubgraphState) {
	t.Helper()
	l := c.openLog()
	_, a := readEvents(t, l, 0)
	_, b := readEvents(t, l, 1)
	return foldEvents(c, 0, a), foldEvents(c, 1, b)
}

// settled reports sagas left open in the folds, and breaks of atomicity.
func sagaOpen(pre, post *model.SubgraphState) (open int, broken []string) {
	open = len(pre.OutSagas()) + len(pre.Unlinks())
	for _, id := range post.InSlots() {
		if x, _ := post.InSlot(id); !x.Committed {
			open++
		}
	}
	for _, k := range pre.CrossSynapses() {
		id, _ := pre.CrossSaga(k)
		if _, ok := post.InSlot(id); !ok {
			broken = append(broken, "pre holds "+id.String()+" without post's in-slot")
		}
	}
	for _, id := range post.InSlots() {
		x, _ := post.InSlot(id)
		c, ok := pre.CrossSaga(model.SynapseKey{Pre: x.Pre, Post: x.Post})
		if _, unlinking := pre.Unlink(id); x.Committed && (!ok || c != id) && !unlinking {
			broken = append(broken, "post committed "+id.String()+" which pre does not hold")
		}
	}
	return open, broken
}

// waitSettled waits until no saga is open in the logs and checks atomicity.
func waitSettled(t *testing.T, c *cluster, d time.Duration) (pre, post *model.SubgraphState) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		pre, post = sagaFolds(t, c)
		open, broken := sagaOpen(pre, post)
		if len(broken) > 0 {
			t.Fatalf("saga atomicity broken in the logs: %v", broken)
		}
		if open == 0 {
			return pre, post
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d saga record(s) still open in the logs after %v", open, d)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestSagaAcrossProcesses: cross-subgraph connects between two `territoryd
// run` processes (pre's subgraph on one, post's on the other) over the gRPC
// transport, on Pulsar and etcd. Post's in-degree limit is reached and
// refuses the saga; post's process is killed with SIGKILL while sagas are in
// flight and restarted; afterwards every saga has settled in the logs, both
// logs agree (a synapse at pre exactly when post holds its in-slot), and
// every answer a client got is the one pre's log recorded. A prune across
// the processes releases post's in-slot.
func TestSagaAcrossProcesses(t *testing.T) {
	c := newCluster(t, clusterOpts{subgraphs: 2, runs: [][]uint32{{1}, {2}}, policy: "  max_in_degree: 3\n  max_out_degree: 8"})
	c.startManager()
	postRun := c.startRuns()[1]
	cl := dial(t, c.runAddrs[0])
	pres := neuronsIn(0, 2, 10, 1)
	posts := neuronsIn(1, 2, 5, 1)
	for _, n := range append(append([]model.NeuronID{}, pres...), posts...) {
		mustDo(t, cl, model.Request{Op: model.OpCreateNeuron, Neuron: n})
	}

	// Phase 1: four pres to one post whose in-degree limit is 3.
	answers := map[model.EventUUID]model.Result{}
	ok, full := 0, 0
	for _, pre := range pres[:4] {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		sent, r, err := cl.Do(ctx, model.Request{Op: model.OpConnect, Pre: pre, Post: posts[0], Value: 2 * model.FixedOne})
		cancel()
		if err != nil {
			t.Fatalf("connect n%d->n%d: %v", pre, posts[0], err)
		}
		answers[sent.ID] = r
		switch {
		case r.Status == model.StatusOK:
			ok++
		case r.Status == model.StatusRejected && r.Reason == model.ReasonMaxInDegree:
			full++
		default:
			t.Fatalf("connect n%d->n%d: %+v", pre, posts[0], r)
		}
	}
	if ok != 3 || full != 1 {
		t.Fatalf("4 connects to a post of in-degree limit 3: %d ok, %d refused", ok, full)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	_, r, err := cl.Do(ctx, model.Request{Op: model.OpReadSynapse, Pre: pres[0], Post: posts[0]})
	cancel()
	if err != nil || !r.Exists || r.Value != 2*model.FixedOne {
		t.Fatalf("read of a committed cross synapse: %+v %v", r, err)
	}

	// Phase 2: sagas in flight while post's process is killed.
	var mu sync.Mutex
	var wg sync.WaitGroup
	unknown := 0
	for i, pre := range pres[4:] {
		for _, post := range posts[1:] {
			wg.Add(1)
			go func(pre, post model.NeuronID, delay time.Duration) {
				defer wg.Done()
				time.Sleep(delay)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				sent, r, err := cl.Do(ctx, model.Request{Op: model.OpConnect, Pre: pre, Post: post, Value: model.FixedOne})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, driver.ErrUnknownOutcome):
					unknown++
				case err != nil:
					t.Errorf("connect n%d->n%d: %v", pre, post, err)
				default:
					answers[sent.ID] = r
				}
			}(pre, post, time.Duration(i)*40*time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond)
	postRun.kill()
	time.Sleep(time.Second)
	c.startRun(1, true)
	wg.Wait()
	pre, post := waitSettled(t, c, 60*time.Second)
	for id, r := range answers {
		logged, ok := pre.Deduped(id)
		if !ok || logged != r {
			t.Errorf("connect %s answered %+v, pre's log says %+v (%v)", id, r, logged, ok)
		}
	}
	t.Logf("%d answers checked against pre's log, %d unknown outcomes; %d cross synapses, %d in-slots at post", len(answers), unknown, len(pre.CrossSynapses()), len(post.InSlots()))
	for _, n := range posts {
		if x, _ := post.Neuron(n); x.InDegree > 3 {
			t.Errorf("post n%d has in-degree %d, limit 3", n, x.InDegree)
		}
	}

	// Phase 3: a prune across the processes releases post's in-slot.
	before, _ := post.Neuron(posts[0])
	mustDo(t, cl, model.Request{Op: model.OpPrune, Pre: pres[0], Post: posts[0]})
	_, post = waitSettled(t, c, 30*time.Second)
	if after, _ := post.Neuron(posts[0]); after.InDegree != before.InDegree-1 {
		t.Fatalf("post's in-degree %d after the prune, was %d", after.InDegree, before.InDegree)
	}
}
