package sim

import (
	"territory/model"
	"territory/sim/replog"
)

// The egress topic: the durable stream the log egress service publishes to
// and the proxies consume (model/egress.go). It is a log of its own, over
// bookies of its own (sim/replog, the run's log configuration), reached
// through its own service host, "estream", so a partition can cut a proxy or
// an egress node from it (a stall of the stream for them). Its faults are
// the log's: while log.ack-loss is active, an append's acknowledgement is
// lost at the same odds, and a read is redelivered: it returns up to 8
// entries before the offset asked for again, as a Pulsar consumer sees
// messages redelivered after a lost acknowledgement.

// EgressCommitted: the egress topic committed an entry at Offset.
type EgressCommitted struct {
	Offset uint64
	Epoch  uint64
	Data   []byte // read-only
}

func (EgressCommitted) isBusEvent() {}

func (w *World) newEgress(add func(string, hostKind, int) *host) error {
	l, err := replog.New(w.k, w.k.Stream("egress-log"), w.cfg.Log)
	if err != nil {
		return err
	}
	w.estream = bookieLog{l}
	w.rndEgress = w.k.Stream("egress-faults")
	for i, n := range w.cfg.EgressNames() {
		w.egressHosts = append(w.egressHosts, add(n, kindEgress, i))
	}
	w.estreamID = add(EgressTopicName, kindService, 3).id
	w.estream.SetCommitHook(func(_ uint32, lsn, epoch uint64, data []byte) {
		w.publish(EgressCommitted{Offset: lsn, Epoch: epoch, Data: data})
	})
	return nil
}

func (w *World) egressCall(h *host, e model.LogCall) {
	req, caller, inc := e.Req, h.id, h.incarnation
	if req.Kind == model.LogRead && req.FromLSN > 1 && w.rndEgress.Chance(w.ackLossPM) {
		req.FromLSN -= min(req.FromLSN-1, uint64(1+w.rndEgress.Intn(8))) // redelivery
	}
	w.call(h, w.estreamID, e.ReqID, e.TimeoutMs, model.LogResult{ReqID: e.ReqID, Outcome: model.OutcomeTimeout}, func(reply func(model.Input)) {
		w.estream.Do(caller, inc, req, func(resp model.LogResponse, err model.ServiceErr) {
			if req.Kind == model.LogAppend && err == model.ErrNone && w.rndEgress.Chance(w.ackLossPM) {
				return // committed, but the acknowledgement is lost
			}
			out := model.LogResult{ReqID: e.ReqID, Resp: resp, Err: err}
			if err != model.ErrNone {
				out.Outcome = model.OutcomeFailed
			}
			reply(out)
		})
	})
}

// EgressStream is the egress topic's committed entries, offset i at index i-1.
func (v *View) EgressStream() []model.LogEntry {
	if v.w.estream == nil {
		return nil
	}
	return v.w.estream.Committed(model.EgressStream)
}

// Replica is a territory proxy's replica of sg (nil: none, or the host is down).
func (v *View) Replica(id model.HostID, sg model.SubgraphID) *model.SubgraphState {
	h := v.w.hosts[id]
	if !h.up || h.territory == nil {
		return nil
	}
	return h.territory.Replica(sg)
}
