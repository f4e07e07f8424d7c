package sim

import (
	"territory/linearizability"
	"territory/model"
)

// nextOp draws the next client operation. Neuron ids come from a small pool so
// that keys see contention; synapses pair neurons of one subgraph, except a
// CrossPM share whose post is any neuron (mostly in another subgraph: the
// handshake saga).
func (w *World) nextOp() model.Request {
	wl := &w.cfg.Workload
	r := w.rndWorkload
	m := wl.Mix
	neuron := func() model.NeuronID { return model.NeuronID(1 + r.Intn(wl.Neurons)) }
	var weight int64 // a graph synapse's own weight, for a connect
	pair := func() (model.NeuronID, model.NeuronID) {
		if g := wl.Graph; g != nil {
			s := g.Synapses[r.Intn(len(g.Synapses))]
			weight = s[2]
			return model.NeuronID(s[0]), model.NeuronID(s[1])
		}
		pre := neuron()
		cross := wl.CrossPM
		if cross <= 0 {
			cross = 50_000
		}
		if r.Chance(cross) {
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
	if g := wl.Graph; g != nil {
		neuron = func() model.NeuronID { return model.NeuronID(g.Neurons[r.Intn(len(g.Neurons))]) }
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
		if wl.Graph != nil {
			req.Value = weight
		}
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
	if req.Op.IsRead() && wl.StalePM > 0 {
		req.Stale = r.Chance(wl.StalePM)
	}
	return req
}

// resendable is a cross-subgraph connect a client finished, kept to be
// sent again under its event_uuid (Workload.ResendPM).
type resendable struct {
	req    model.Request
	doneUs int64
}

// resendPoolMax bounds a client's kept connects; resendAfterUs is how long
// after its answer one is sent again: past the dedup window (in logged
// time, which follows the hosts' clocks), so that it is a new saga.
const (
	resendPoolMax = 64
	resendAfterUs = (model.DedupWindowMs + 2_000) * 1000
)

func (w *World) keepForResend(c *host, f model.FactOpDone) {
	if w.cfg.Workload.ResendPM > 0 && len(c.resend) < resendPoolMax && !f.Request.Stale && isCrossConnect(&f.Request, w.cfg.Subgraphs) {
		c.resend = append(c.resend, resendable{req: f.Request, doneUs: w.k.NowUs()})
	}
}

// resendOne is the oldest kept connect of c, if one is due and the draw
// says so.
func (w *World) resendOne(c *host) (model.Request, bool) {
	if w.cfg.Workload.ResendPM <= 0 || len(c.resend) == 0 || c.resend[0].doneUs+resendAfterUs > w.k.NowUs() || !w.rndWorkload.Chance(w.cfg.Workload.ResendPM) {
		return model.Request{}, false
	}
	req := c.resend[0].req
	c.resend = c.resend[1:]
	w.resent++
	return req, true
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

// toLinInput is the checkers' view of a request: its subgraph (the
// partition), Post's subgraph for synapses, and its event_uuid.
func (w *World) toLinInput(req *model.Request) linearizability.Input {
	return LinInput(req, w.cfg.Subgraphs)
}

// LinInput is the checkers' view of a request in a cluster of n subgraphs
// (the chaos driver records real clients' requests with it).
func LinInput(req *model.Request, n uint32) linearizability.Input {
	in := linearizability.Input{Kind: linKinds[req.Op], ID: linUUID(req.ID), Neuron: uint64(req.Neuron), Pre: uint64(req.Pre), Post: uint64(req.Post),
		Subgraph: uint32(model.SubgraphOf(req.RoutingNeuron(), n))}
	switch req.Op {
	case model.OpConnect:
		in.Weight = req.Value
	default:
		in.Delta = req.Value
	}
	if req.Op != model.OpCreateNeuron && req.Op != model.OpStimulate && req.Op != model.OpReadNeuron {
		in.PostSubgraph = uint32(model.SubgraphOf(req.Post, n))
	}
	return in
}

var linReasons = [...]linearizability.Reason{
	model.ReasonNone:          linearizability.ReasonNone,
	model.ReasonMaxOutDegree:  linearizability.ReasonMaxOutDegree,
	model.ReasonMaxInDegree:   linearizability.ReasonMaxInDegree,
	model.ReasonNoSuchNeuron:  linearizability.ReasonNoSuchNeuron,
	model.ReasonCrossSubgraph: linearizability.ReasonCrossSubgraph,
}

// toLinOutput is the checkers' view of a client's final answer, its reason
// included. sent is false for an answer the client gave itself without
// sending the request (busy, bad request): that is no operation at all.
func toLinOutput(f model.FactOpDone) (out linearizability.Output, sent bool) { return LinOutput(f) }

// LinOutput is toLinOutput for the chaos driver's real clients.
func LinOutput(f model.FactOpDone) (out linearizability.Output, sent bool) {
	if f.Unknown {
		return linearizability.Output{Status: linearizability.StatusUnknown}, true
	}
	r := f.Result
	out = linearizability.Output{Value: r.Value, Exists: r.Exists, Reason: linearizability.Reason(255)}
	if int(r.Reason) < len(linReasons) {
		out.Reason = linReasons[r.Reason]
	}
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
		if f.Tries == 0 {
			return out, false // refused by the client itself: never sent
		}
		// A store's bad-request answer to a well-formed request (busy and
		// the others are not final, the client retries them).
		out.Status = linearizability.StatusBadRequest
	}
	return out, true
}
