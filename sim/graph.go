package sim

import (
	"fmt"
	"slices"

	"territory/model"
	"territory/sim/invariants"
)

// Graph is a fixed set of neurons and synapses for the workload to draw from
// instead of the pool 1..Workload.Neurons: a real connectome (scenario
// connectome). Every synapse operation names one of Synapses (a connect with
// its weight); neuron operations name one of Neurons. The replay file carries
// it whole, so a replay needs no file.
type Graph struct {
	Source   string     `json:"source,omitempty"` // where it came from, for people
	Neurons  []uint64   `json:"neurons"`
	Synapses [][3]int64 `json:"synapses"` // pre, post, weight (fixed-point)
}

// Validate reports a graph the workload cannot draw from.
func (g *Graph) Validate() error {
	if len(g.Neurons) == 0 || len(g.Synapses) == 0 {
		return fmt.Errorf("workload graph %s: %d neurons, %d synapses: both must be present", g.Source, len(g.Neurons), len(g.Synapses))
	}
	ids := slices.Clone(g.Neurons)
	slices.Sort(ids)
	if ids[0] == 0 || len(slices.Compact(ids)) != len(g.Neurons) {
		return fmt.Errorf("workload graph %s: neuron ids must be non-zero and distinct", g.Source)
	}
	for i, s := range g.Synapses {
		_, pre := slices.BinarySearch(ids, uint64(s[0]))
		_, post := slices.BinarySearch(ids, uint64(s[1]))
		if !pre || !post || s[2] == 0 || s[2] < model.WeightMin || s[2] > model.WeightMax {
			return fmt.Errorf("workload graph %s: synapse %d (%d -> %d, weight %d): endpoints must be neurons of the graph, the weight non-zero and in range", g.Source, i, s[0], s[1], s[2])
		}
	}
	return nil
}

// ---- what the workload did to the degrees ----

// WorkloadStats are the final answers to connects by outcome, and what the
// reference fold saw of the degrees: how high they went and how many neurons
// were ever supernodes.
type WorkloadStats struct {
	ConnectOK       int            `json:"connect_ok"`
	ConnectRejected map[string]int `json:"connect_rejected,omitempty"` // by reason
	Supernodes      int            `json:"supernodes"`                 // neurons ever flagged supernode in a committed state
	MaxDegree       uint32         `json:"max_degree"`                 // in+out of one neuron, in its own subgraph's committed state
	MaxDegreeNeuron uint64         `json:"max_degree_neuron,omitempty"`
	Resent          int            `json:"resent,omitempty"` // connects sent again under their event_uuid after the dedup window (Workload.ResendPM)
}

type workloadChecker struct {
	w     *World
	st    WorkloadStats
	super map[model.NeuronID]bool
}

func newWorkloadChecker(v *View) Checker {
	return &workloadChecker{w: v.w, st: WorkloadStats{ConnectRejected: map[string]int{}}, super: map[model.NeuronID]bool{}}
}

func (*workloadChecker) Name() string { return "workload" }

func (c *workloadChecker) Observe(v *View, e BusEvent) {
	switch e := e.(type) {
	case OpReturned:
		if e.Done.Request.Op != model.OpConnect || e.Done.Unknown {
			return
		}
		switch r := e.Done.Result; r.Status {
		case model.StatusOK:
			c.st.ConnectOK++
		case model.StatusRejected:
			c.st.ConnectRejected[r.Reason.String()]++
		}
	case EntryFolded:
		if !e.Applied || e.Fold == nil {
			return
		}
		for _, id := range []model.NeuronID{e.Event.Neuron, e.Event.Pre, e.Event.Post} {
			if id == 0 || model.SubgraphOf(id, v.Config().Subgraphs) != e.Subgraph {
				continue
			}
			n, ok := e.Fold.Neuron(id)
			if !ok {
				continue
			}
			if n.Supernode {
				c.super[id] = true
			}
			if d := n.InDegree + n.OutDegree; d > c.st.MaxDegree {
				c.st.MaxDegree, c.st.MaxDegreeNeuron = d, uint64(id)
			}
		}
	}
}

// Final judges nothing: these are figures for the report and the scenario tests.
func (*workloadChecker) Final(*View) []invariants.Violation { return nil }

func (c *workloadChecker) Report(o *Outcome) {
	c.st.Supernodes = len(c.super)
	c.st.Resent = c.w.resent
	o.Workload = c.st
}
