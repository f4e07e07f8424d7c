package model

import (
	"fmt"
	"slices"
)

// Migration requests (territoryd migrate): a MigRequest asks the migrator
// (manager_migrator.go) to move Subgraph to To. The manager answers each
// with one MigRequestReply: accepted once the PENDING record is written
// (Epoch is its migration epoch), or refused with a MigRefusal and a detail.
// The transport may lose either message, so a requester repeats its request
// until answered; a repeat from the same host is answered from the
// remembered answer, or ignored while the request is queued or being
// started. A start whose record write had an unknown outcome is queued
// again with the epoch it tried: finding that record, it is accepted.

// migReq is a queued request and who asked (by 0: drawn by the migrator).
type migReq struct {
	msg   MigMsg
	by    HostID
	epoch uint64 // the epoch a previous start of it tried to create (0: none)
}

// migAnswersKept bounds the remembered answers (and the queue).
const migAnswersKept = 64

func (g *migrator) request(m *Manager, by HostID, q MigMsg) {
	if a, ok := g.answers[by]; ok && by != 0 && a.Subgraph == q.Subgraph && a.To == q.To {
		g.send(m, by, a)
		return
	}
	if by != 0 && g.busy && (g.asking.by == by || g.retryAsk.by == by) {
		return // being started
	}
	for _, r := range g.requests {
		if r.by == by && by != 0 {
			return // queued
		}
	}
	refuse := func(code MigRefusal, detail string) {
		g.answer(m, migReq{msg: q, by: by}, MigMsg{Kind: MigRequestReply, Subgraph: q.Subgraph, To: q.To, Refusal: code, Detail: detail})
	}
	switch {
	case uint32(q.Subgraph) >= g.cfg.Subgraphs:
		refuse(MigRefusedUnknownSubgraph, fmt.Sprintf("subgraph %d: the cluster has subgraphs 0..%d", q.Subgraph, g.cfg.Subgraphs-1))
	case q.To != 0 && !slices.Contains(g.cfg.Territories, q.To):
		refuse(MigRefusedUnknownTerritory, fmt.Sprintf("territory %d: the cluster's territories are %v", q.To, g.cfg.Territories))
	case q.To != 0 && g.lost(q.To):
		refuse(MigRefusedTerritoryDown, fmt.Sprintf("territory %d has had no alive key for %d ms", q.To, g.cfg.HostLossMs))
	case g.loaded && g.recs[q.Subgraph] != nil:
		refuse(MigRefusedRunning, g.running(q.Subgraph))
	case len(g.requests) >= migAnswersKept:
		refuse(MigRefusedBusy, fmt.Sprintf("%d migration requests queued already", len(g.requests)))
	default:
		g.requests = append(g.requests, migReq{msg: q, by: by})
	}
}

// running describes the record of sg for a refusal.
func (g *migrator) running(sg SubgraphID) string {
	r := g.recs[sg]
	if r == nil {
		return fmt.Sprintf("subgraph %d has a migration record", sg)
	}
	return fmt.Sprintf("subgraph %d is migrating already: %s, epoch %d, %d -> %d, attempt %d of %d", sg, r.State, r.Epoch, r.From, r.To, r.Attempts, MigrationMaxAttempts)
}

// refusalOfDest is why a requested destination cannot take the subgraph.
func (g *migrator) refusalOfDest(from, to HostID) MigRefusal {
	if to == from {
		return MigRefusedAlreadyThere
	}
	return MigRefusedTerritoryDown
}

// startFor starts a queued request: a record already there is this
// request's own (from an earlier start whose outcome was unknown) when it
// has the epoch that start tried, else a refusal.
func (g *migrator) startFor(m *Manager, q migReq) {
	if r := g.recs[q.msg.Subgraph]; r != nil {
		if q.epoch != 0 && r.Epoch == q.epoch && (q.msg.To == 0 || r.To == q.msg.To) {
			g.answer(m, q, MigMsg{Kind: MigRequestReply, Subgraph: r.Subgraph, Epoch: r.Epoch, From: r.From, To: r.To})
			return
		}
		g.answer(m, q, MigMsg{Kind: MigRequestReply, Subgraph: q.msg.Subgraph, To: q.msg.To, Refusal: MigRefusedRunning, Detail: g.running(q.msg.Subgraph)})
		return
	}
	g.start(m, q.msg.Subgraph, q.msg.To)
	g.asking = q
}

// refuseAsked answers the request the start in flight serves, if asked.
func (g *migrator) refuseAsked(m *Manager, asked bool, code MigRefusal, detail string) {
	if asked {
		q := g.asking
		g.asking = migReq{}
		g.answer(m, q, MigMsg{Kind: MigRequestReply, Subgraph: q.msg.Subgraph, To: q.msg.To, Refusal: code, Detail: detail})
	}
}

// createFor writes a new PENDING record; a requester hears it was accepted
// once the write lands, and its request is queued again if the outcome is
// unknown or the compare failed (the retry finds the record, or not).
func (g *migrator) createFor(m *Manager, rec MigrationRecord) {
	q := g.asking
	g.asking = migReq{}
	g.write(m, rec, PutIfVersion(MigrationKey(rec.Subgraph), rec.Encode(), 0), func(m *Manager, r MigrationRecord) {
		g.retryAsk = migReq{}
		if q.by != 0 {
			g.answer(m, q, MigMsg{Kind: MigRequestReply, Subgraph: r.Subgraph, Epoch: r.Epoch, From: r.From, To: r.To})
		}
	})
	if q.by != 0 {
		q.epoch = rec.Epoch
		g.retryAsk = q
	}
}

// answer sends a requester its answer and remembers it (the oldest of
// migAnswersKept is forgotten).
func (g *migrator) answer(m *Manager, q migReq, a MigMsg) {
	if q.by == 0 {
		return
	}
	if _, ok := g.answers[q.by]; !ok {
		g.answered = append(g.answered, q.by)
		if len(g.answered) > migAnswersKept {
			delete(g.answers, g.answered[0])
			g.answered = g.answered[1:]
		}
	}
	g.answers[q.by] = a
	g.send(m, q.by, a)
}

// writeFailed: a start's record write failed or its outcome is unknown: the
// request goes back to the front of the queue, to be started again.
func (g *migrator) writeFailed() {
	if q := g.retryAsk; q.by != 0 {
		g.retryAsk = migReq{}
		g.requests = slices.Insert(g.requests, 0, q)
	}
}

// onRoute creates a migration (start) or retries a failed one (retry) from
// the route's current primary. A retry goes to the record's T_dest while it
// is alive; when the route already names T_dest the failed record is
// removed, since the move it asked for is made.
func (g *migrator) onRoute(m *Manager, why string, resp CoordResponse) {
	p := g.pending
	asked := why == "start" && g.asking.by != 0
	if len(resp.KVs) == 0 {
		g.refuseAsked(m, asked, MigRefusedUnknownSubgraph, fmt.Sprintf("subgraph %d has no route", p.Subgraph))
		return
	}
	route, err := ParseRoute(resp.KVs[0])
	if err != nil {
		m.badValue(resp.KVs[0].Key, err)
		g.refuseAsked(m, asked, MigRefusedPrimaryDown, fmt.Sprintf("subgraph %d: its route does not parse: %v", p.Subgraph, err))
		return
	}
	from := route.Primary
	if g.lost(from) || !slices.Contains(g.det.live, from) {
		// Its primary is not serving: the reassigner's, not ours.
		g.refuseAsked(m, asked, MigRefusedPrimaryDown, fmt.Sprintf("subgraph %d: its primary %d is not alive", p.Subgraph, from))
		return
	}
	to := p.To
	if asked && (to == from || g.lost(to)) {
		detail := fmt.Sprintf("subgraph %d is served by %d already", p.Subgraph, from)
		if to != from {
			detail = fmt.Sprintf("territory %d has had no alive key for %d ms", to, g.cfg.HostLossMs)
		}
		g.refuseAsked(m, asked, g.refusalOfDest(from, to), detail)
		return
	}
	if why == "retry" && to == from {
		// The route names T_dest already (the flip landed before the
		// failure) and T_dest is serving: the move is made. Drawing another
		// destination from it would move the subgraph back, away from where
		// it was asked to go, so the failed record is removed instead.
		if cur := g.recs[p.Subgraph]; cur != nil && cur.ModRevision == p.ModRevision && cur.State == MigFailed {
			g.remove(m, *cur)
		}
		return
	}
	if to == 0 || to == from || g.lost(to) {
		// A retry keeps the record's T_dest while it lives; only a lost or
		// absent destination is drawn again.
		to = g.pickDest(from, mix64(uint64(resp.Revision)^g.cfg.MigrateSeed))
	}
	if to == 0 {
		g.refuseAsked(m, asked, MigRefusedTerritoryDown, fmt.Sprintf("subgraph %d: no live territory other than %d", p.Subgraph, from))
		return
	}
	if why == "start" {
		if g.recs[p.Subgraph] != nil {
			g.refuseAsked(m, asked, MigRefusedRunning, g.running(p.Subgraph))
			return
		}
		rec := MigrationRecord{Subgraph: p.Subgraph, State: MigPending, Epoch: uint64(resp.Revision), From: from, To: to, Attempts: 1, SinceMs: m.nowMs}
		g.createFor(m, rec)
		return
	}
	cur := g.recs[p.Subgraph]
	if cur == nil || cur.ModRevision != p.ModRevision || cur.State != MigFailed {
		return
	}
	next := MigrationRecord{Subgraph: p.Subgraph, State: MigPending, Epoch: max(uint64(resp.Revision), p.Epoch+1), From: from, To: to,
		Attempts: p.Attempts + 1, SinceMs: m.nowMs}
	g.cas(m, p, next, nil)
}
