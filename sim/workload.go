package sim

import (
	"territory/linearizability"
	"territory/model"
)

// nextOp draws the next client operation. Neuron ids come from a small pool so
// that keys see contention; synapses pair neurons of one subgraph (cross-
// subgraph synapses need the handshake saga, which is not built yet), with a
// few cross-subgraph attempts to exercise the rejection path.
func (w *World) nextOp() model.Request {
	wl := &w.cfg.Workload
	r := w.rndWorkload
	m := wl.Mix
	neuron := func() model.NeuronID { return model.NeuronID(1 + r.Intn(wl.Neurons)) }
	pair := func() (model.NeuronID, model.NeuronID) {
		pre := neuron()
		if r.Chance(50_000) {
			return pre, neuron()
		}
		sg := model.SubgraphOf(pre, w.cfg.Subgraphs)
		for range 32 { // bounded: a pool with one neuron per subgraph makes a self-loop
			post := neuron()
			if model.SubgraphOf(post, w.cfg.Subgraphs) == sg {
				return pre, post
			}
		}
		return pre, pre
	}
	pick := r.Intn(m.total())
	req := model.Request{}
	switch {
	case pick < m.Create:
		req.Op, req.Neuron = model.OpCreateNeuron, neuron()
	case pick < m.Create+m.Stimulate:
		req.Op, req.Neuron, req.Value = model.OpStimulate, neuron(), r.Between(-4, 8)*model.FixedOne/4
	case pick < m.Create+m.Stimulate+m.ReadNeuron:
		req.Op, req.Neuron = model.OpReadNeuron, neuron()
	case pick < m.Create+m.Stimulate+m.ReadNeuron+m.Connect:
		req.Op = model.OpConnect
		req.Pre, req.Post = pair()
		req.Value = r.Between(1, 16) * model.FixedOne / 8
	case pick < m.Create+m.Stimulate+m.ReadNeuron+m.Connect+m.Adjust:
		req.Op = model.OpAdjustWeight
		req.Pre, req.Post = pair()
		req.Value = r.Between(-4, 4) * model.FixedOne / 8
	case pick < m.Create+m.Stimulate+m.ReadNeuron+m.Connect+m.Adjust+m.Prune:
		req.Op = model.OpPrune
		req.Pre, req.Post = pair()
	default:
		req.Op = model.OpReadSynapse
		req.Pre, req.Post = pair()
	}
	return req
}

var linKinds = [...]linearizability.Kind{
	model.OpCreateNeuron: linearizability.CreateNeuron,
	model.OpStimulate:    linearizability.Stimulate,
	model.OpReadNeuron:   linearizability.ReadNeuron,
	model.OpConnect:      linearizability.Connect,
	model.OpAdjustWeight: linearizability.AdjustWeight,
	model.OpPrune:        linearizability.Prune,
	model.OpReadSynapse:  linearizability.ReadSynapse,
}

func toLinInput(req *model.Request) linearizability.Input {
	in := linearizability.Input{Kind: linKinds[req.Op], Neuron: uint64(req.Neuron), Pre: uint64(req.Pre), Post: uint64(req.Post)}
	switch req.Op {
	case model.OpConnect:
		in.Weight = req.Value
	default:
		in.Delta = req.Value
	}
	return in
}

func toLinOutput(f model.FactOpDone) linearizability.Output {
	if f.Unknown {
		return linearizability.Output{Status: linearizability.StatusUnknown}
	}
	r := f.Result
	out := linearizability.Output{Value: r.Value, Exists: r.Exists}
	switch r.Status {
	case model.StatusOK:
		out.Status = linearizability.StatusOK
	case model.StatusNotFound:
		out.Status = linearizability.StatusNotFound
	case model.StatusAlreadyExists:
		out.Status = linearizability.StatusAlreadyExists
	case model.StatusRejected:
		out.Status = linearizability.StatusRejected
	default:
		// Busy or bad request: the client never sent it, so it certainly did
		// not happen; a rejection is the closest the model has (no effect).
		out.Status = linearizability.StatusRejected
	}
	return out
}
