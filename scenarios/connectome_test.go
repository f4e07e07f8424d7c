package scenarios

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"territory/connectome"
	"territory/model"
	"territory/sim"
)

func TestConnectomeScenarioUsesTheRealHubs(t *testing.T) {
	sc, err := Get("connectome")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sc.Config(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Workload.Graph
	if g == nil || len(g.Neurons) != 129 || len(g.Synapses) != 1806 || cfg.Workload.Neurons != 129 {
		t.Fatalf("graph: %v neurons %d", g != nil, cfg.Workload.Neurons)
	}
	c, err := connectome.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range connectomeHubs {
		id, _ := c.ID(h)
		if !slices.Contains(g.Neurons, uint64(id)) {
			t.Fatalf("%s is not in the graph", h)
		}
		out, in := 0, 0
		for _, s := range g.Synapses {
			if s[0] == int64(id) {
				out++
			}
			if s[1] == int64(id) {
				in++
			}
		}
		// The policy is below the hub's real degrees, the supernode
		// threshold below its in+out degree.
		if out <= connectomeMaxOut || in <= connectomeMaxIn || out+in < 140 {
			t.Errorf("%s: out %d in %d in the graph (limits %d/%d)", h, out, in, connectomeMaxOut, connectomeMaxIn)
		}
	}
	// Every synapse is the file's, with its weight.
	for _, s := range g.Synapses {
		i, ok := slices.BinarySearchFunc(c.Synapses, s, func(a connectome.Synapse, b [3]int64) int {
			if a.Pre != model.NeuronID(b[0]) {
				return cmpU(uint64(a.Pre), uint64(b[0]))
			}
			return cmpU(uint64(a.Post), uint64(b[1]))
		})
		if !ok || c.Synapses[i].Weight != s[2] {
			t.Fatalf("synapse %v is not the file's", s)
		}
	}
	// A run: hubs reach the limits, become supernodes, and most connects
	// are sagas.
	res, err := sim.Run(cfg, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	w := res.Workload
	if !res.Pass || w.Supernodes == 0 || w.MaxDegree < connectomeSupernode || w.ConnectRejected["MAX_OUT_DEGREE_POLICY_EXCEEDED"] == 0 ||
		w.ConnectRejected["MAX_IN_DEGREE_POLICY_EXCEEDED"] == 0 || res.Sagas.Committed < w.ConnectOK/2 {
		t.Fatalf("%s\nworkload %+v sagas %+v", res.Line(), w, res.Sagas)
	}
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestConnectomeScenarioWithoutTheFileSaysHowToFetchIt(t *testing.T) {
	t.Setenv("TERRITORY_CONNECTOME", filepath.Join(t.TempDir(), "absent.csv"))
	sc, err := Get("connectome")
	if err != nil {
		t.Fatal(err)
	}
	_, err = sc.Config(1, 0)
	if err == nil || !strings.Contains(err.Error(), "scripts/connectome.sh fetch") || !strings.Contains(err.Error(), "absent.csv") {
		t.Fatalf("%v", err)
	}
}

// The supernodes scenario's odd seeds draw from the connectome's hubs: the
// real hubs, and only hubs, become supernodes, and the supernode path
// carries them; even seeds keep the synthetic workload.
func TestSupernodesScenarioOddSeedsUseTheRealHubs(t *testing.T) {
	sc, err := Get("supernodes")
	if err != nil {
		t.Fatal(err)
	}
	even, err := sc.Config(2, 0)
	if err != nil || even.Workload.Graph != nil {
		t.Fatalf("seed 2: %v graph %v", err, even.Workload.Graph != nil)
	}
	cfg, err := sc.Config(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Workload.Graph == nil || cfg.Policy.SupernodeDegree != supernodesHubDegree {
		t.Fatalf("seed 1: graph %v, supernode degree %d", cfg.Workload.Graph != nil, cfg.Policy.SupernodeDegree)
	}
	res, err := sim.Run(cfg, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := connectome.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	aval, _ := c.ID("AVAL")
	avar, _ := c.ID("AVAR")
	w := res.Workload
	// Only AVAL and AVAR have a degree above 86 in the graph.
	top := model.NeuronID(w.MaxDegreeNeuron)
	if !res.Pass || w.Supernodes < 2 || w.MaxDegree < 100 || (top != aval && top != avar) || res.Egress.Subgraphs == 0 || res.Stale.ByProxy == 0 {
		t.Fatalf("%s\nworkload %+v egress %+v stale %+v", res.Line(), w, res.Egress, res.Stale)
	}
}

func TestSupernodesScenarioWithoutTheFileSaysHowToFetchIt(t *testing.T) {
	t.Setenv("TERRITORY_CONNECTOME", filepath.Join(t.TempDir(), "absent.csv"))
	sc, err := Get("supernodes")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Config(2, 0); err != nil {
		t.Fatalf("an even seed needs no file: %v", err)
	}
	_, err = sc.Config(1, 0)
	if err == nil || !strings.Contains(err.Error(), "scripts/connectome.sh fetch") || !strings.Contains(err.Error(), "absent.csv") {
		t.Fatalf("%v", err)
	}
}
