package sim

import (
	"testing"

	"territory/model"
	"territory/sim/invariants"
)

// staleRig: a world with only the stale checker, a hand-made log of
// subgraph 0 (neuron n created, then stimulated by 1, 2 and 4), and stale
// answers to publish.
type staleRig struct {
	*egressRig
	n model.NeuronID
}

func newStaleRig(t *testing.T) *staleRig {
	w := testWorld(t)
	w.checkers = []Checker{newStaleChecker(w.view)}
	r := &staleRig{egressRig: &egressRig{t: t, w: w, fold: model.NewSubgraphState(0, w.cfg.Subgraphs, model.GenesisPolicy())}}
	for r.n = 1; model.SubgraphOf(r.n, w.cfg.Subgraphs) != 0; r.n++ {
	}
	r.commit(model.Event{Type: model.EvCreateNeuron, Neuron: r.n})
	for _, d := range []int64{1, 2, 4} {
		r.commit(model.Event{Type: model.EvStimulate, Neuron: r.n, Value: d})
	}
	return r
}

// read publishes client's stale read of n, answered with potential value at lsn.
func (r *staleRig) read(client model.HostID, lsn uint64, value int64) {
	req := model.Request{ID: model.EventUUID{Hi: uint64(client), Lo: lsn<<8 | uint64(value)}, Op: model.OpReadNeuron, Neuron: r.n, Stale: true}
	res := model.Result{Status: model.StatusOK, Exists: lsn > 0, Value: value, LSN: lsn, Proxy: true}
	r.w.publish(OpReturned{Client: client, Done: model.FactOpDone{Client: client, Request: req, Result: res, Tries: 1}})
}

func (r *staleRig) final() {
	r.w.violations = append(r.w.violations, r.w.checkers[0].Final(r.w.view)...)
}

func TestStaleReadsClean(t *testing.T) {
	r := newStaleRig(t)
	r.read(100, 0, 0) // nothing yet
	r.read(100, 2, 1)
	r.read(101, 4, 7) // another client, ahead
	r.read(100, 3, 3)
	r.read(100, 3, 3)
	r.w.publish(HostChanged{Host: 100, Change: HostCrashed})
	r.read(100, 1, 0) // a new incarnation of the client starts afresh
	r.final()
	r.expect()
	if st := r.w.checkers[0].(*staleChecker).st; st.Reads != 6 || st.ByProxy != 6 || st.MaxLagEvents != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStaleReadWrongValuePlanted(t *testing.T) {
	r := newStaleRig(t)
	r.read(100, 3, 7) // the state of LSN 4 named LSN 3
	r.final()
	r.expect(invariants.StaleReadPrefix)
}

func TestStaleReadAheadOfCommitPlanted(t *testing.T) {
	r := newStaleRig(t)
	r.read(100, 5, 7) // 4 entries committed
	r.final()
	r.expect(invariants.StaleReadPrefix)
}

func TestStaleReadBackwardsPlanted(t *testing.T) {
	r := newStaleRig(t)
	r.read(100, 4, 7)
	r.read(100, 2, 1)
	r.final()
	r.expect(invariants.StaleReadMonotonic)
}
