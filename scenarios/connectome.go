package scenarios

import (
	"fmt"
	"slices"
	"sync"

	"territory/connectome"
	"territory/faults"
	"territory/model"
	"territory/sim"
)

// The connectome scenario's hubs: the command interneurons AVAL and AVAR,
// degree about 150 each in the Cook et al. data.
var connectomeHubs = [...]string{"AVAL", "AVAR"}

// Its policy, fitted to the data: the hubs have out-degrees 58 and 63 and
// in-degrees 91 and 88, their neighbours far less, so the hubs (alone) reach
// both limits and cross the supernode threshold.
const (
	connectomeMaxOut    = 40
	connectomeMaxIn     = 64
	connectomeSupernode = 64
)

var hubGraph struct {
	sync.Mutex
	path  string
	graph *sim.Graph
}

// HubGraph is the workload graph of the connectome scenario, from the edge
// list at connectome.DefaultPath (scripts/connectome.sh fetches it): AVAL,
// AVAR and every neuron that shares a synapse with either (129 neurons), and
// every synapse of the file among them (1806), with the file's weights and
// gap junctions as the connectome package counts them. An absent file is an
// error telling how to fetch it.
func HubGraph() (*sim.Graph, error) {
	hubGraph.Lock()
	defer hubGraph.Unlock()
	path := connectome.DefaultPath()
	if hubGraph.graph != nil && hubGraph.path == path {
		return hubGraph.graph, nil
	}
	c, err := connectome.LoadDefault()
	if err != nil {
		return nil, err
	}
	g, err := hubNeighbourhood(c, connectomeHubs[:])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	hubGraph.path, hubGraph.graph = path, g
	return g, nil
}

func hubNeighbourhood(c *connectome.Connectome, hubs []string) (*sim.Graph, error) {
	in := map[model.NeuronID]bool{}
	var hubIDs []model.NeuronID
	for _, h := range hubs {
		id, ok := c.ID(h)
		if !ok {
			return nil, fmt.Errorf("no neuron %s in the edge list", h)
		}
		hubIDs = append(hubIDs, id)
		in[id] = true
	}
	for _, s := range c.Synapses {
		if slices.Contains(hubIDs, s.Pre) {
			in[s.Post] = true
		}
		if slices.Contains(hubIDs, s.Post) {
			in[s.Pre] = true
		}
	}
	g := &sim.Graph{Source: fmt.Sprintf("%s and their neighbours in the edge list with sha256 %s", hubs, c.SHA256)}
	for _, n := range c.Neurons { // by name: a fixed order
		if in[n.ID] {
			g.Neurons = append(g.Neurons, uint64(n.ID))
		}
	}
	for _, s := range c.Synapses {
		if in[s.Pre] && in[s.Post] {
			g.Synapses = append(g.Synapses, [3]int64{int64(s.Pre), int64(s.Post), s.Weight})
		}
	}
	return g, nil
}

// connectomeScenario: the real connectome's hub neighbourhood under a policy
// the hubs exceed, with crashes and lossy links during the sagas.
var connectomeScenario = Scenario{
	Name:    "connectome",
	Summary: "C. elegans (Cook et al. 2019): AVAL, AVAR and their 127 neighbours, 1806 real synapses and weights; the hubs reach the degree limits and become supernodes; most connects are sagas; crashes and message loss",
	build: func(seed uint64, cfg *sim.Config) error {
		g, err := HubGraph()
		if err != nil {
			return fmt.Errorf("needs the C. elegans edge list: %w", err)
		}
		cfg.Workload.Graph = g
		cfg.Workload.Neurons = len(g.Neurons)
		cfg.Workload.Mix.Connect, cfg.Workload.Mix.Prune, cfg.Workload.Mix.Create = 30, 4, 8
		cfg.Policy.MaxOutDegree, cfg.Policy.MaxInDegree, cfg.Policy.SupernodeDegree = connectomeMaxOut, connectomeMaxIn, connectomeSupernode
		withSnapshots(cfg, 60)
		spec := faultSpec(cfg, []faults.Kind{faults.HostCrash, faults.NetDegrade, faults.NetPartition}, 6)
		cfg.LivenessMs = 12_000
		return generateSpec(seed, cfg, spec)
	},
}

func init() { all = append(all, connectomeScenario) }
