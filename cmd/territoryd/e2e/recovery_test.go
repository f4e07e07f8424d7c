//go:build integration

package e2e

import (
	"fmt"
	"testing"
	"time"

	"territory/model"
)

// foldEvents is the state of a subgraph from its whole log.
func foldEvents(c *cluster, sg model.SubgraphID, evs []model.Event) *model.SubgraphState {
	st := model.NewSubgraphState(sg, c.opts.subgraphs, model.GenesisPolicy()) // the log adopts the policy itself
	for i := range evs {
		st.Apply(&evs[i])
	}
	return st
}

// TestKill9Recovery: writes through the client while `territoryd run` is
// killed with SIGKILL; one of the three etcd members goes down too; the
// restarted process recovers every subgraph from the Pulsar log. Every
// acknowledged write is in the log and readable, every potential equals the
// fold of the log (which holds the TerritoryRecovered decay) and lies within
// the decay bound of the acknowledged stimulations.
func TestKill9Recovery(t *testing.T) {
	c := newCluster(t, clusterOpts{etcdMembers: 3, subgraphs: 4, runs: [][]uint32{{1, 2}}})
	sgs := subgraphsUpTo(c.opts.subgraphs)
	mgr := c.startManager()
	run := c.startRun(0, true)
	cl := dial(t, c.runAddrs[0])
	led := newLedger()

	// Four writers, each with one neuron in every subgraph.
	groups := make([][]model.NeuronID, 4)
	var all []model.NeuronID
	for _, sg := range sgs {
		ns := neuronsIn(sg, c.opts.subgraphs, len(groups), 1)
		for g := range groups {
			groups[g] = append(groups[g], ns[g])
			all = append(all, ns[g])
		}
	}
	for _, n := range all {
		mustDo(t, cl, model.Request{Op: model.OpCreateNeuron, Neuron: n})
	}
	stim := startStimulators(cl, led, groups, 6*time.Second)
	waitAcked(t, led, 200, 60*time.Second)

	killedAt := time.Now()
	run.kill() // kill -9 with writes in flight
	if err := stim.halt(); err != nil {
		t.Fatal(err)
	}
	acked, unknown := led.counts()
	t.Logf("killed the territory host after %d acknowledged writes; %d writes in flight have an unknown outcome", acked, unknown)
	tails := map[model.SubgraphID]uint64{}
	l := c.openLog()
	for _, sg := range sgs {
		_, evs := readEvents(t, l, sg)
		tails[sg] = uint64(len(evs))
	}

	// A minority of etcd goes away: the restarted host and the manager carry on.
	c.etcd[2].Close()
	c.etcd[2] = nil
	run = c.startRun(0, true)
	rec := waitRecovered(t, c, sgs, tails, 60*time.Second)
	recoveredBy := time.Since(killedAt)
	for _, sg := range sgs {
		t.Logf("subgraph %d: %d entries before the restart, TerritoryRecovered at lsn %d (epoch %d)", sg, tails[sg], rec[sg].LSN, rec[sg].WriterEpoch)
	}

	cl = dial(t, c.runAddrs[0])
	logs := checkAckedInLog(t, c, led, sgs)
	ackedSum, unknownSum := led.sums()
	worstKeep := model.DecayFactorPM(c.policy.DecayPerSecondPM, (recoveredBy + 2*time.Second).Milliseconds())
	for _, sg := range sgs {
		st := foldEvents(c, sg, logs[sg])
		for _, n := range all {
			if model.SubgraphOf(n, c.opts.subgraphs) != sg {
				continue
			}
			r := readNeuron(t, cl, n)
			f, ok := st.Neuron(n)
			if !r.Exists || !ok {
				t.Fatalf("neuron %d: exists=%v in the fold=%v", n, r.Exists, ok)
			}
			if r.Value != f.Potential {
				t.Errorf("neuron %d: read potential %d, fold of the log %d", n, r.Value, f.Potential)
			}
			lo, hi := model.MulDecay(ackedSum[n], worstKeep)-1, ackedSum[n]+unknownSum[n]
			if r.Value < lo || r.Value > hi {
				t.Errorf("neuron %d: potential %d outside [%d, %d] (acknowledged %d, unknown %d, decay kept at least %d ppm)",
					n, r.Value, lo, hi, ackedSum[n], unknownSum[n], worstKeep)
			}
		}
	}
	// The CLI client agrees, and writes go on.
	n := all[0]
	r := readNeuron(t, cl, n)
	if out, code := clientCLI(t, c.runAddrs[0], "read-neuron", fmt.Sprint(n)); code != 0 || out != fmt.Sprintf("ok exists=true potential=%d in_degree=%d out_degree=%d", r.Value, r.InDegree, r.OutDegree) {
		t.Errorf("territoryd client read-neuron %d: exit %d %q (want potential %d)", n, code, out, r.Value)
	}
	if out, code := clientCLI(t, c.runAddrs[0], "stimulate", fmt.Sprint(n), "7"); code != 0 || out != fmt.Sprintf("ok potential=%d", r.Value+7) {
		t.Errorf("territoryd client stimulate %d 7: exit %d %q", n, code, out)
	}
	run.term()
	mgr.term()
}
