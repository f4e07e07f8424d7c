package model

// The read barrier. A read is answered only after a linearizable check, started
// after the read arrived, shows that the route of its subgraph still names this
// territory at the epoch it serves. The check reads only the routes of the
// subgraphs it covers, so its cost does not grow with the cluster:
//
//   - One transaction of compares, one per covered subgraph, each that the
//     route key's ModRevision is still the revision of this territory's own
//     claim (p.route.ModRevision). If every compare holds, every covered route
//     is unchanged since the claim: each read is answered. No key is read and
//     nothing is written (empty Then and Else), so etcd answers it from its
//     linearizable read path.
//   - A transaction holds at most BarrierMaxSubgraphs compares (etcd refuses a
//     txn with more than --max-txn-ops, 128 by default, in any of its lists).
//     Reads of further subgraphs stay queued for the next barrier. Each read
//     needs only its own subgraph's route checked after it arrived, not one
//     atomic view across subgraphs, so splitting reads over several
//     barriers keeps every read linearizable.
//   - If a compare fails, some covered route changed (or was rewritten with
//     the same value). The transaction does not say which, so each covered
//     subgraph's route is read with its own Get (a recheck), which is itself
//     a barrier for that subgraph's reads: it started after they arrived. Only
//     the routes of the barrier's subgraphs are read, never the whole prefix.

// BarrierMaxSubgraphs bounds the subgraphs one barrier transaction covers:
// etcd's default --max-txn-ops.
const BarrierMaxSubgraphs = 128

// barrierSub is one covered subgraph: the claim whose route the barrier
// compares.
type barrierSub struct {
	p      *primary
	gen    uint64
	modRev int64
}

// startBarrier sends one barrier for the reads queued, covering at most
// BarrierMaxSubgraphs subgraphs; reads of other subgraphs wait for the next.
func (t *Territory) startBarrier() {
	if t.barrierID != 0 || len(t.reads) == 0 {
		return
	}
	if t.barrierSet == nil {
		t.barrierSet = make(map[SubgraphID]int)
	}
	clear(t.barrierSet)
	t.barrierSubs = t.barrierSubs[:0]
	req := CoordRequest{Kind: CoordTxn}
	rest := t.reads[:0]
	var covered []pendingRead
	for _, rd := range t.reads {
		sg := t.readSubgraph(rd)
		if _, ok := t.barrierSet[sg]; !ok {
			if len(t.barrierSubs) == BarrierMaxSubgraphs {
				rest = append(rest, rd)
				continue
			}
			t.barrierSet[sg] = len(t.barrierSubs)
			sub := barrierSub{}
			if p := t.subgraphs[sg]; p != nil && p.phase == phaseOperational {
				sub = barrierSub{p: p, gen: p.gen, modRev: p.route.ModRevision}
				req.Compares = append(req.Compares, Compare{Key: RouteKey(sg), ModRevision: sub.modRev})
			}
			t.barrierSubs = append(t.barrierSubs, sub)
		}
		covered = append(covered, rd)
	}
	// rest shares t.reads' array, behind covered's copies: clear the tail.
	clear(t.reads[len(rest):])
	t.reads = rest
	t.covered = covered
	if len(req.Compares) == 0 {
		// No covered subgraph is served here: nothing to check.
		t.answerCovered(&result{Outcome: OutcomeOK, Coord: CoordResponse{Succeeded: true}})
		t.startBarrier()
		return
	}
	t.barrierID = t.coord(t.hostCall(hostBarrier), req)
}

func (t *Territory) onBarrier(res *result) {
	t.barrierID = 0
	t.answerCovered(res)
	t.startBarrier()
}

// answerCovered answers the reads the barrier covered, or hands them to
// rechecks when a compare failed.
func (t *Territory) answerCovered(res *result) {
	covered := t.covered
	t.covered = nil
	var rechecks map[SubgraphID][]pendingRead
	var order []SubgraphID
	for _, rd := range covered {
		sg := t.readSubgraph(rd)
		sub := t.barrierSubs[t.barrierSet[sg]]
		p := t.subgraphs[sg]
		stale := p == nil || p.phase != phaseOperational || sub.p != p || sub.gen != p.gen
		switch {
		case rd.saga != nil && (!res.ok() || stale):
			// post asks again
		case !res.ok():
			t.reply(rd.from, rd.req.ID, Result{Status: StatusUnavailable})
		case p == nil:
			t.reply(rd.from, rd.req.ID, Result{Status: StatusWrongTerritory})
		case p.phase != phaseOperational || sub.p != p || sub.gen != p.gen:
			// Not operational, or claimed again since the barrier started:
			// the compare was about an earlier claim.
			t.reply(rd.from, rd.req.ID, Result{Status: StatusUnavailable})
		case res.Coord.Succeeded:
			t.serveRead(p, rd)
		default:
			if rechecks == nil {
				rechecks = make(map[SubgraphID][]pendingRead)
			}
			if _, ok := rechecks[sg]; !ok {
				order = append(order, sg)
			}
			rechecks[sg] = append(rechecks[sg], rd)
		}
	}
	for _, sg := range order {
		t.recheck(t.barrierSubs[t.barrierSet[sg]], rechecks[sg])
	}
}

// recheck reads one subgraph's route for reads whose barrier failed.
func (t *Territory) recheck(sub barrierSub, reads []pendingRead) {
	if t.rechecks == nil {
		t.rechecks = make(map[uint64]recheck)
	}
	t.recheckSeq++
	t.rechecks[t.recheckSeq] = recheck{sub: sub, reads: reads}
	c := t.hostCall(hostRecheck)
	c.job = t.recheckSeq
	t.coord(c, CoordRequest{Kind: CoordGet, Key: RouteKey(sub.p.sg)})
}

// recheck is a route get in flight for reads whose barrier failed.
type recheck struct {
	sub   barrierSub
	reads []pendingRead
}

func (t *Territory) onRecheck(job uint64, res *result) {
	rc, ok := t.rechecks[job]
	if !ok {
		panic("territory: recheck result without its reads")
	}
	delete(t.rechecks, job)
	p := rc.sub.p
	for _, rd := range rc.reads {
		stale := t.subgraphs[p.sg] != p || p.gen != rc.sub.gen || p.phase != phaseOperational
		switch {
		case rd.saga != nil && (!res.ok() || stale):
			// post asks again
		case !res.ok():
			t.reply(rd.from, rd.req.ID, Result{Status: StatusUnavailable})
		case t.subgraphs[p.sg] == nil:
			t.reply(rd.from, rd.req.ID, Result{Status: StatusWrongTerritory})
		case stale:
			t.reply(rd.from, rd.req.ID, Result{Status: StatusUnavailable})
		default:
			var kv *KV
			if len(res.Coord.KVs) > 0 {
				kv = &res.Coord.KVs[0]
			}
			t.answerRead(p, rd, kv)
		}
	}
}

// readSubgraph is the subgraph a queued read (or saga query) is about.
func (t *Territory) readSubgraph(rd pendingRead) SubgraphID {
	if rd.saga != nil {
		return rd.sg
	}
	return SubgraphOf(rd.req.RoutingNeuron(), t.cfg.Subgraphs)
}

// serveRead answers a read, or lets a saga query go on, once its barrier
// passed.
func (t *Territory) serveRead(p *primary, rd pendingRead) {
	if rd.saga != nil {
		t.sagas.afterBarrier(rd.from, p, rd.saga)
		return
	}
	r := p.state.Read(&rd.req)
	r.LSN = p.state.AppliedLSN
	t.reply(rd.from, rd.req.ID, r)
}

// answerRead serves a read if the route read by a recheck still names this
// territory at the subgraph's epoch (kv nil: the route is gone). The common
// case compares the route's bytes with what the claim wrote, without parsing.
func (t *Territory) answerRead(p *primary, rd pendingRead, kv *KV) {
	if kv != nil && string(kv.Value) == string(p.routeValue) {
		// Rewritten with our own value: later barriers compare the new revision.
		p.route.ModRevision = max(p.route.ModRevision, kv.ModRevision)
		t.serveRead(p, rd)
		return
	}
	if rd.saga != nil {
		return // a moved route is found by the next read or poll; post asks again
	}
	if kv == nil {
		t.stepDown(p, stepDownWhy{reason: StepDownRouteDeleted, barrier: true})
		t.reply(rd.from, rd.req.ID, Result{Status: StatusWrongTerritory})
		return
	}
	r, err := ParseRoute(*kv)
	if err != nil {
		t.out.Add(badCoordValue(t.cfg.ID, kv.Key, err))
	}
	if err == nil && (r.Primary != t.cfg.ID || r.Epoch > p.epoch) {
		t.stepDown(p, stepDownWhy{reason: StepDownRouteMoved, barrier: true, route: r})
		t.reply(rd.from, rd.req.ID, Result{Status: StatusWrongTerritory})
		return
	}
	t.reply(rd.from, rd.req.ID, Result{Status: StatusUnavailable})
}
