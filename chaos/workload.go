package chaos

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"territory/linearizability"
	"territory/model"
	"territory/runtime/daemon"
	"territory/sim"
	"territory/sim/invariants"
)

// Mix weighs the operations of the workload. Connect pairs two neurons of
// one subgraph; CrossConnect two of different subgraphs (a handshake saga).
type Mix struct {
	Create, Stimulate, ReadNeuron, Connect, Adjust, Prune, ReadSynapse int
	CrossConnect                                                       int `json:",omitempty"`
}

func (m Mix) total() int {
	return m.Create + m.Stimulate + m.ReadNeuron + m.Connect + m.Adjust + m.Prune + m.ReadSynapse + m.CrossConnect
}

// Workload is what the real clients do: each draws its operations from its
// own generator, seeded by the run's seed and its index, over neuron ids
// 1..Neurons. A connect pairs neurons of one subgraph, a cross connect of
// two (a saga); an adjust, prune or synapse read pairs neurons of different
// subgraphs CrossPM times in 1000 (a cross prune is an unlink saga).
type Workload struct {
	Clients     int   `json:"clients"`
	Neurons     int   `json:"neurons"`
	OpTimeoutMs int64 `json:"op_timeout_ms"`
	Mix         Mix   `json:"mix"`
	CrossPM     int   `json:"cross_pm,omitempty"`
}

// History is the record of a run's real operations, every one timed on one
// monotonic clock (time.Since of the run's start, in microseconds).
type History struct {
	mu        sync.Mutex
	t0        time.Time
	subgraphs uint32
	rec       *linearizability.Recorder
	acked     invariants.AckedWrites
	callUs    map[model.EventUUID]int64 // writes' call times, by event_uuid
	returnUs  map[model.EventUUID]int64 // acknowledged writes' return times
	progress  sim.ProgressRecord
	ops       int
	unknown   int
	notFinal  int
	// Cross-subgraph connects, with their answers: their effects are the
	// saga steps in the logs (recorded as SagaEffect operations, as the
	// simulator does), so they are not porcupine operations; the saga
	// checker judges each final answer against pre's log.
	cross        []crossConnect
	crossUnknown int
}

// crossConnect is one cross-subgraph connect a client sent.
type crossConnect struct {
	req           model.Request
	callUs, retUs int64
	res           model.Result
	unknown       bool
}

func newHistory(t0 time.Time, subgraphs uint32) *History {
	return &History{t0: t0, subgraphs: subgraphs, rec: linearizability.NewRecorder(),
		callUs: map[model.EventUUID]int64{}, returnUs: map[model.EventUUID]int64{},
		progress: sim.ProgressRecord{Answers: map[string][]int64{}, Down: map[string][]sim.Span{}}}
}

func (h *History) nowUs() int64 { return time.Since(h.t0).Microseconds() }

// do runs one operation on c and records it: its call before sending, its
// answer after.
func (h *History) do(c *daemon.Client, client int, name string, req model.Request, timeout time.Duration) (model.Result, error) {
	id := h.begin(client, req)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	_, res, err := c.DoID(ctx, req)
	cancel()
	h.end(id, name, req, res, err)
	return res, err
}

// begin records the call of req by client now.
func (h *History) begin(client int, req model.Request) linearizability.OpID {
	in := sim.LinInput(&req, h.subgraphs)
	h.mu.Lock()
	defer h.mu.Unlock()
	callUs := h.nowUs()
	id := h.rec.Call(client, in, callUs)
	if !req.Op.IsRead() {
		h.callUs[req.ID] = callUs
	}
	h.ops++
	h.progress.Called++
	return id
}

// end records the answer to the call id of client name now. An error is an
// unknown outcome (kept open), and so is a final busy or unavailable answer
// (the client retried until its deadline: an earlier try may have applied).
func (h *History) end(id linearizability.OpID, name string, req model.Request, res model.Result, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	retUs := h.nowUs()
	if isCross(&req, h.subgraphs) {
		h.rec.Discard(id)
		x := crossConnect{req: req, callUs: h.callUs[req.ID], retUs: retUs, res: res, unknown: err != nil || !res.Status.Final()}
		h.cross = append(h.cross, x)
		switch {
		case x.unknown:
			h.unknown++
			h.crossUnknown++
			h.progress.Unknown++
			if err == nil {
				h.notFinal++
				h.countNotFinal(res.Status)
			}
		default:
			h.progress.Answers[name] = append(h.progress.Answers[name], retUs)
		}
		return
	}
	switch {
	case err != nil:
		h.rec.Return(id, linearizability.Output{Status: linearizability.StatusUnknown}, retUs)
		h.unknown++
		h.progress.Unknown++
	case !res.Status.Final():
		h.rec.Return(id, linearizability.Output{Status: linearizability.StatusUnknown}, retUs)
		h.unknown++
		h.progress.Unknown++
		h.notFinal++
		h.countNotFinal(res.Status)
	default:
		out, _ := sim.LinOutput(model.FactOpDone{Request: req, Result: res, Tries: 1})
		h.rec.Return(id, out, retUs)
		h.progress.Answers[name] = append(h.progress.Answers[name], retUs)
		if !req.Op.IsRead() {
			h.acked.Acked(retUs, model.SubgraphOf(req.RoutingNeuron(), h.subgraphs), req.ID, req.Op)
			h.returnUs[req.ID] = retUs
		}
	}
}

func (h *History) countNotFinal(s model.Status) {
	switch s {
	case model.StatusBusy:
		h.progress.Stats.FinalBusy++
	case model.StatusUnavailable:
		h.progress.Stats.FinalUnavailable++
	}
}

// isCross: a connect whose pre and post are in different subgraphs (a saga).
func isCross(req *model.Request, n uint32) bool {
	return req.Op == model.OpConnect && model.SubgraphOf(req.Pre, n) != model.SubgraphOf(req.Post, n)
}

// generator draws one client's operations.
type generator struct {
	r         *rand.Rand
	w         Workload
	subgraphs uint32
}

func newGenerator(seed uint64, client int, w Workload, subgraphs uint32) *generator {
	return &generator{r: rand.New(rand.NewPCG(seed, uint64(client)+1)), w: w, subgraphs: subgraphs}
}

func (g *generator) neuron() model.NeuronID { return model.NeuronID(1 + g.r.IntN(g.w.Neurons)) }

// pair draws two neurons of one subgraph, or (cross) of two.
func (g *generator) pair(cross bool) (model.NeuronID, model.NeuronID) {
	pre := g.neuron()
	sg := model.SubgraphOf(pre, g.subgraphs)
	for range 64 {
		if post := g.neuron(); post != pre && (model.SubgraphOf(post, g.subgraphs) == sg) != cross {
			return pre, post
		}
	}
	return pre, pre
}

// anyPair is a pair for an adjust, prune or synapse read.
func (g *generator) anyPair() (model.NeuronID, model.NeuronID) {
	return g.pair(g.w.CrossPM > 0 && g.r.IntN(1000) < g.w.CrossPM)
}

func (g *generator) next() model.Request {
	m := g.w.Mix
	pick := g.r.IntN(m.total())
	between := func(lo, hi int64) int64 { return lo + g.r.Int64N(hi-lo+1) }
	var req model.Request
	switch {
	case pick < m.Create:
		req.Op, req.Neuron = model.OpCreateNeuron, g.neuron()
	case pick < m.Create+m.Stimulate:
		req.Op, req.Neuron, req.Value = model.OpStimulate, g.neuron(), between(-4, 8)*model.FixedOne/4
	case pick < m.Create+m.Stimulate+m.ReadNeuron:
		req.Op, req.Neuron = model.OpReadNeuron, g.neuron()
	case pick < m.Create+m.Stimulate+m.ReadNeuron+m.Connect:
		req.Op = model.OpConnect
		req.Pre, req.Post = g.pair(false)
		req.Value = between(1, 16) * model.FixedOne / 8
	case pick < m.Create+m.Stimulate+m.ReadNeuron+m.Connect+m.Adjust:
		req.Op = model.OpAdjustWeight
		req.Pre, req.Post = g.anyPair()
		req.Value = between(-4, 4) * model.FixedOne / 8
	case pick < m.Create+m.Stimulate+m.ReadNeuron+m.Connect+m.Adjust+m.Prune:
		req.Op = model.OpPrune
		req.Pre, req.Post = g.anyPair()
	case pick < m.Create+m.Stimulate+m.ReadNeuron+m.Connect+m.Adjust+m.Prune+m.ReadSynapse:
		req.Op = model.OpReadSynapse
		req.Pre, req.Post = g.anyPair()
	default:
		req.Op = model.OpConnect
		req.Pre, req.Post = g.pair(true)
		req.Value = between(1, 16) * model.FixedOne / 8
	}
	return req
}

// client is one real client of the workload.
type client struct {
	index   int
	name    string
	session uint64
	c       *daemon.Client
	gen     *generator
	nextID  uint64
}

func (cl *client) id() model.EventUUID {
	cl.nextID++
	return model.EventUUID{Hi: cl.session, Lo: cl.nextID}
}

// runClients runs every client until stop is closed; each finishes the
// operation it is in first.
func runClients(h *History, cls []*client, timeout time.Duration, stop <-chan struct{}) {
	var wg sync.WaitGroup
	for _, cl := range cls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req := cl.gen.next()
				req.ID = cl.id()
				_, _ = h.do(cl.c, cl.index, cl.name, req, timeout)
			}
		}()
	}
	wg.Wait()
}
