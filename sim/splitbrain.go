package sim

import "territory/model"

// DeposedStats counts what deposed primaries were asked and answered. A
// territory is deposed for a subgraph while it still holds the subgraph but
// the route names another territory at a newer epoch: cut off from the
// coordination store, it does not know yet. Clients without route watches
// keep asking it; it must serve none of their reads (a read needs a barrier
// it cannot pass) and ack only writes its log append committed before the
// successor opened the stream (the log's fencing decides).
type DeposedStats struct {
	Asked        int `json:"asked"`         // requests delivered to a deposed primary
	AnsweredRead int `json:"answered_read"` // final answers to reads asked of it while deposed
	Acked        int `json:"acked"`         // final answers to writes asked of it while deposed: legal only if its append committed before the successor opened the log
}

type deposedKey struct {
	territory model.HostID
	req       model.EventUUID
}

// deposedFor reports whether territory h holds sg at an epoch the route has
// moved past.
func (w *World) deposedFor(h *host, sg model.SubgraphID) bool {
	if h.kind != kindTerritory || !h.up || h.territory == nil {
		return false
	}
	st, epoch := h.territory.State(sg)
	if st == nil {
		return false
	}
	kv, ok := w.coord.Peek(model.RouteKey(sg))
	if !ok {
		return false
	}
	r, err := model.ParseRoute(kv)
	return err == nil && r.Primary != h.id && r.Epoch > epoch
}

// noteDelivery counts a request delivered to a deposed primary.
func (w *World) noteDelivery(to *host, msg *model.Message) {
	if msg.Request == nil || to.kind != kindTerritory {
		return
	}
	sg := model.SubgraphOf(msg.Request.RoutingNeuron(), w.cfg.Subgraphs)
	if w.deposedFor(to, sg) {
		w.deposed.Asked++
		if w.asked == nil {
			w.asked = map[deposedKey]bool{}
		}
		w.asked[deposedKey{to.id, msg.Request.ID}] = msg.Request.Op.IsRead()
	}
}

// noteReply counts a final answer from a territory to a request it was asked
// while deposed.
func (w *World) noteReply(from *host, msg *model.Message) {
	if msg.Reply == nil || from.kind != kindTerritory || len(w.asked) == 0 {
		return
	}
	k := deposedKey{from.id, msg.Reply.ID}
	read, ok := w.asked[k]
	if !ok || !msg.Reply.Result.Status.Final() {
		return
	}
	delete(w.asked, k)
	if read {
		w.deposed.AnsweredRead++
	} else {
		w.deposed.Acked++
	}
}
