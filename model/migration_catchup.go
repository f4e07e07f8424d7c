package model

import "fmt"

// The source's catch-up (migration_source.go): after the flip, T_src reads
// the committed entries snapshot_LSN+1..target back from the log and streams
// them to T_dest from the LSN T_dest last asked for, and persists
// last_acknowledged_lsn_by_dest in the record as T_dest acknowledges.

func (k *migSource) onFlipped(g *MigMsg) {
	t := k.t
	s := k.subs[g.Subgraph]
	if s == nil || s.epoch != g.Epoch {
		return
	}
	if s.stage != srcCatchup {
		if s.stage != srcHeld && s.stage != srcReleasing {
			return // no hold, no flip: a stale message
		}
		s.stage, s.next, s.persisted, s.idle = srcCatchup, s.snapLSN+1, s.snapLSN, 0
		if p := t.subgraphs[g.Subgraph]; p != nil && g.Route.Key == RouteKey(g.Subgraph) {
			t.syncRoutes([]KV{g.Route}) // the route names T_dest now: step down
		}
	}
	k.readCatchup(g.Subgraph, s)
}

func (k *migSource) readCatchup(sg SubgraphID, s *srcMig) {
	if s.reading {
		return
	}
	if s.next > s.target {
		k.sendCatchup(sg, s, nil) // nothing (more) to stream: tell T_dest the target
		return
	}
	s.reading = true
	k.t.log(k.unscoped(srcRead, sg, s.epoch), LogRequest{Kind: LogRead, Stream: uint32(sg), FromLSN: s.next, MaxEntries: k.t.cfg.ReplayBatch})
}

func (k *migSource) onRead(c call, res *result) {
	s := k.subs[c.sg]
	if s == nil || s.epoch != c.job {
		return
	}
	s.reading = false
	if !res.ok() {
		return // the resend timer reads again
	}
	var batch []LogEntry
	for _, e := range res.Log.Entries {
		if e.LSN > s.target {
			break
		}
		batch = append(batch, e)
	}
	k.sendCatchup(c.sg, s, batch)
}

func (k *migSource) sendCatchup(sg SubgraphID, s *srcMig, entries []LogEntry) {
	k.t.out.Add(Send{To: s.to, Msg: &Message{Migration: &MigMsg{Kind: MigCatchup, Subgraph: sg, Epoch: s.epoch, From: k.t.cfg.ID, To: s.to,
		SnapLSN: s.snapLSN, Target: s.target, Entries: entries}}})
}

func (k *migSource) onCatchupAck(g *MigMsg) {
	s := k.subs[g.Subgraph]
	if s == nil || s.epoch != g.Epoch || s.stage != srcCatchup {
		return
	}
	if g.Next > s.next || g.Next < s.next && !s.reading {
		// Ahead: progress. Behind: T_dest asks for what it misses.
		if g.Next > s.next {
			s.idle = 0
			k.t.observe(FactMigration{Territory: k.t.cfg.ID, Subgraph: g.Subgraph, Epoch: s.epoch, Step: MigStepAcked, LSN: g.Next - 1, Target: s.target})
		}
		s.next = g.Next
	}
	// Nothing left to stream (next > target) still sends the target: a
	// destination that installed the image after the first (empty)
	// catch-up went by learns it now, not at the next resend.
	k.readCatchup(g.Subgraph, s)
	k.persist(g.Subgraph, s)
}

// persist writes last_acknowledged_lsn_by_dest into the record (read, then
// a progress compare-and-swap), one at a time.
func (k *migSource) persist(sg SubgraphID, s *srcMig) {
	if s.persisting || s.next-1 <= s.persisted {
		return
	}
	s.persisting = true
	k.t.coord(k.unscoped(srcRecordGet, sg, s.epoch), CoordRequest{Kind: CoordGet, Key: MigrationKey(sg)})
}

func (k *migSource) onRecord(c call, res *result) {
	s := k.subs[c.sg]
	if s == nil || s.epoch != c.job {
		return
	}
	acked := s.next - 1
	if c.tag == srcRecordPut {
		s.persisting = false
		if res.ok() && res.Coord.Succeeded {
			s.persisted = max(s.persisted, uint64(c.gen))
		}
		return
	}
	if !res.ok() || len(res.Coord.KVs) == 0 {
		s.persisting = false
		return
	}
	rec, err := ParseMigrationRecord(res.Coord.KVs[0])
	if err != nil || rec.Epoch != s.epoch || rec.State != MigCatchupStreaming || rec.AckedLSN >= acked {
		s.persisting = false
		if err == nil && rec.Epoch == s.epoch && rec.AckedLSN >= acked {
			s.persisted = max(s.persisted, rec.AckedLSN)
		}
		return // not yet in catch-up (the manager moves it), or already there
	}
	next := rec
	next.AckedLSN = acked
	req, err := MigrationCAS(rec, next)
	if err != nil {
		panic(fmt.Sprintf("territory %d: %v", k.t.cfg.ID, err)) // a progress update is always a legal put
	}
	cc := k.unscoped(srcRecordPut, c.sg, s.epoch)
	cc.gen = acked // the LSN this put persists
	k.t.coord(cc, req)
}
