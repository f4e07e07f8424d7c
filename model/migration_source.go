package model

import (
	"fmt"
	"hash/crc32"
)

// migSource is the source side (T_src) of a phased migration:
//
//  1. On MigStart it takes an image of the subgraph at its applied LSN,
//     snapshot_LSN. The image is EncodeSnapshot of the state, the encoding
//     the snapshot job uses: O(state) and synchronous inside Step (not the
//     O(1) copy-on-write image the seed asks for; see the README). Writes go
//     on while it streams.
//  2. It streams the image to T_dest in chunks of MigChunkBytes, each with
//     its CRC32C, a window at a time from the chunk T_dest last acknowledged
//     (resumable by chunk index; lost chunks are resent on a timer).
//  3. With the whole image at T_dest it holds the subgraph's writes: no new
//     append starts, and once the append in flight is answered it reports
//     MigReady with the LSN it holds at (the catch-up target) and the
//     revision of its claim on the route. The manager flips the route by a
//     compare-and-swap on exactly that revision, so the flip and any change
//     of the route by T_src exclude each other: T_src releases its writes
//     only by rewriting its own route value at that revision (after
//     migHoldTicks, or on MigAbort), or by a re-claim, which also changes
//     the revision. After the flip T_src therefore never appends, and never
//     acknowledges, a write of the subgraph again (the route, the log's
//     epoch fencing and the read barrier each stop it as well).
//  4. After the flip (MigFlipped) it streams the committed entries after
//     snapshot_LSN up to the target, read back from the log, from the LSN
//     T_dest last acknowledged, and persists last_acknowledged_lsn_by_dest
//     (acked_lsn) in the migration record by compare-and-swap as T_dest
//     acknowledges.
//
// Its state is kept per subgraph apart from the primary: the catch-up
// outlives the step-down that the flip causes.
type migSource struct {
	noHooks
	t    *Territory
	id   compID
	subs map[SubgraphID]*srcMig // looked up, never iterated
}

type srcStage uint8

const (
	srcStreaming srcStage = iota + 1 // sending chunks
	srcHolding                       // whole image acked; waiting for the append in flight
	srcHeld                          // MigReady sent; no new append
	srcReleasing                     // rewriting our own route to release the writes
	srcCatchup                       // after the flip: streaming the log entries
)

type srcMig struct {
	epoch      uint64
	to         HostID
	stage      srcStage
	snapLSN    uint64
	chunks     [][]byte
	sums       []uint32
	imageSum   uint32
	acked      uint32 // chunks T_dest holds
	gen        uint64 // the claim generation the hold is under
	target     uint64 // the LSN writes are held at
	routeRev   int64
	routeEpoch uint64
	heldTick   int64
	next       uint64 // catch-up: the next LSN T_dest wants
	persisted  uint64 // acked_lsn as last persisted
	persisting bool
	reading    bool
	idle       int64 // resend periods without progress
}

const (
	migResendMs  = 100
	migHoldTicks = 4  // writes are held this long at most before the source releases them
	migIdleLimit = 60 // resend periods without progress before the source forgets a migration
)

// The source's calls and timers.
const (
	srcResend     uint8 = iota // timer (unscoped, sg, job = epoch)
	srcRelease                 // scoped: rewrite our own route value
	srcRouteGet                // scoped: read the route after a failed release
	srcRead                    // unscoped: read catch-up entries from the log
	srcRecordGet               // unscoped: read the record to persist acked_lsn
	srcRecordPut               // unscoped: the progress CAS
	srcReleaseTry              // scoped timer: release again
)

func newMigSource(t *Territory) *migSource {
	k := &migSource{t: t, subs: map[SubgraphID]*srcMig{}}
	k.id = t.register(k)
	return k
}

// holds reports whether p's writes are held for a migration: the writer
// starts no append while it is.
func (k *migSource) holds(p *primary) bool {
	s := k.subs[p.sg]
	return s != nil && s.gen == p.gen && (s.stage == srcHeld || s.stage == srcHolding || s.stage == srcReleasing)
}

func (k *migSource) unscoped(tag uint8, sg SubgraphID, epoch uint64) call {
	return call{comp: k.id, tag: tag, sg: sg, job: epoch}
}

func (k *migSource) message(from HostID, m *Message) bool {
	g := m.Migration
	if g == nil {
		return false
	}
	switch g.Kind {
	case MigStart:
		k.onStart(g)
	case MigChunkAck:
		k.onChunkAck(g)
	case MigAbort:
		if s := k.subs[g.Subgraph]; s != nil && s.epoch == g.Epoch && s.stage != srcCatchup {
			k.release(g.Subgraph, s)
		}
	case MigFlipped:
		k.onFlipped(g)
	case MigCatchupAck:
		k.onCatchupAck(g)
	default:
		return false // the destination's, or the manager's
	}
	return true
}

func (k *migSource) onStart(g *MigMsg) {
	t := k.t
	if s := k.subs[g.Subgraph]; s != nil {
		if s.epoch >= g.Epoch {
			if s.epoch == g.Epoch && s.stage == srcHeld {
				k.sendReady(g.Subgraph, s)
			}
			return // a duplicate, or a stale start
		}
		k.release(g.Subgraph, s) // an older attempt: let it go
	}
	p := t.subgraphs[g.Subgraph]
	if p == nil || p.phase != phaseOperational || g.To == t.cfg.ID || g.To == 0 {
		return // not ours to move: the manager's phase timeout fails the attempt
	}
	data := EncodeSnapshot(p.state) // O(state), inside Step
	s := &srcMig{epoch: g.Epoch, to: g.To, stage: srcStreaming, snapLSN: p.state.AppliedLSN, gen: p.gen,
		imageSum: crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))}
	for off := 0; off < len(data); off += t.cfg.MigChunkBytes {
		c := data[off:min(len(data), off+t.cfg.MigChunkBytes)]
		s.chunks = append(s.chunks, c)
		s.sums = append(s.sums, crc32.Checksum(c, crc32.MakeTable(crc32.Castagnoli)))
	}
	k.subs[g.Subgraph] = s
	t.observe(FactMigration{Territory: t.cfg.ID, Subgraph: g.Subgraph, Epoch: g.Epoch, Step: MigStepImage, LSN: s.snapLSN, Bytes: len(data)})
	k.sendChunks(g.Subgraph, s)
	t.afterMs(k.unscoped(srcResend, g.Subgraph, s.epoch), migResendMs)
}

func (k *migSource) sendChunks(sg SubgraphID, s *srcMig) {
	for i := s.acked; i < uint32(len(s.chunks)) && i < s.acked+uint32(k.t.cfg.MigChunkWindow); i++ {
		k.t.out.Add(Send{To: s.to, Msg: &Message{Migration: &MigMsg{Kind: MigChunk, Subgraph: sg, Epoch: s.epoch, From: k.t.cfg.ID, To: s.to,
			SnapLSN: s.snapLSN, Index: i, Total: uint32(len(s.chunks)), Sum: s.sums[i], ImageSum: s.imageSum, Data: s.chunks[i]}}})
	}
}

func (k *migSource) onChunkAck(g *MigMsg) {
	s := k.subs[g.Subgraph]
	if s == nil || s.epoch != g.Epoch || s.stage != srcStreaming || g.Next <= uint64(s.acked) {
		return
	}
	s.acked = uint32(min(g.Next, uint64(len(s.chunks))))
	s.idle = 0
	if int(s.acked) < len(s.chunks) {
		k.sendChunks(g.Subgraph, s)
		return
	}
	// The whole image is at T_dest: hold the writes for the flip.
	p := k.t.subgraphs[g.Subgraph]
	if p == nil || p.gen != s.gen || p.phase != phaseOperational {
		delete(k.subs, g.Subgraph) // re-claimed or gone since the image: this attempt is over
		return
	}
	s.stage = srcHolding
	k.tryHold(p, s)
}

// tryHold reports MigReady once no append is in flight.
func (k *migSource) tryHold(p *primary, s *srcMig) {
	if s.stage != srcHolding || !k.t.writes.idle(p) {
		return
	}
	s.stage, s.target, s.heldTick = srcHeld, p.state.AppliedLSN, k.t.ticks
	s.routeRev, s.routeEpoch = p.route.ModRevision, p.epoch
	k.t.observe(FactMigration{Territory: k.t.cfg.ID, Subgraph: p.sg, Epoch: s.epoch, Step: MigStepHeld, LSN: s.target})
	k.sendReady(p.sg, s)
}

func (k *migSource) sendReady(sg SubgraphID, s *srcMig) {
	k.t.out.Add(Send{To: k.t.cfg.Manager, Msg: &Message{Migration: &MigMsg{Kind: MigReady, Subgraph: sg, Epoch: s.epoch, From: k.t.cfg.ID, To: s.to,
		SnapLSN: s.snapLSN, Target: s.target, RouteRev: s.routeRev, RouteEpoch: s.routeEpoch}}})
}

func (k *migSource) committed(p *primary) {
	if s := k.subs[p.sg]; s != nil && s.gen == p.gen {
		k.tryHold(p, s)
	}
}

func (k *migSource) tick(p *primary) {
	s := k.subs[p.sg]
	if s == nil || s.gen != p.gen {
		return
	}
	k.tryHold(p, s)
	if s.stage == srcHeld && k.t.ticks-s.heldTick >= migHoldTicks {
		k.release(p.sg, s) // no flip in time: release the writes (unless the flip already won)
	}
}

// claiming: a re-claim changes the route's revision, so no flip of the held
// revision can land any more: the attempt is over (the manager fails it).
func (k *migSource) claiming(p *primary) {
	if s := k.subs[p.sg]; s != nil && s.stage != srcCatchup {
		delete(k.subs, p.sg)
	}
}

// steppedDown: a route that moves while the writes are held moves by the
// flip (nothing else may change the revision the hold is under without our
// claim noticing): stream the catch-up. Any other attempt is over.
func (k *migSource) steppedDown(p *primary) {
	s := k.subs[p.sg]
	switch {
	case s == nil || s.stage == srcCatchup:
	case (s.stage == srcHeld || s.stage == srcReleasing) && s.gen == p.gen:
		s.stage, s.next, s.persisted, s.idle = srcCatchup, s.snapLSN+1, s.snapLSN, 0
		k.readCatchup(p.sg, s) // at once, not at the next resend
	default:
		delete(k.subs, p.sg)
	}
}

// release ends an attempt before the flip. Held writes are released only by
// rewriting our own route value at the revision the manager would flip.
func (k *migSource) release(sg SubgraphID, s *srcMig) {
	t := k.t
	p := t.subgraphs[sg]
	if s.stage == srcReleasing {
		return // a release is in flight
	}
	if s.stage != srcHeld || p == nil || p.gen != s.gen {
		delete(k.subs, sg)
		if p != nil {
			t.writes.resume(p)
		}
		return
	}
	s.stage = srcReleasing
	t.coord(scoped(k.id, srcRelease, p), PutIfVersion(RouteKey(sg), p.routeValue, p.route.ModRevision))
}

func (k *migSource) onTimer(p *primary, c call) {
	if c.tag == srcReleaseTry {
		if s := k.subs[c.sg]; s != nil && s.stage == srcReleasing {
			k.t.coord(scoped(k.id, srcRelease, p), PutIfVersion(RouteKey(p.sg), p.routeValue, p.route.ModRevision))
		}
		return
	}
	s := k.subs[c.sg]
	if c.tag != srcResend || s == nil || s.epoch != c.job {
		return
	}
	s.idle++
	if s.idle > migIdleLimit {
		if s.stage == srcCatchup || s.stage == srcStreaming {
			delete(k.subs, c.sg)
			return
		}
	}
	switch s.stage {
	case srcStreaming:
		k.sendChunks(c.sg, s)
	case srcHeld:
		k.sendReady(c.sg, s)
	case srcCatchup:
		k.readCatchup(c.sg, s)
		k.persist(c.sg, s)
	}
	k.t.afterMs(k.unscoped(srcResend, c.sg, s.epoch), migResendMs)
}

func (k *migSource) onResult(p *primary, c call, res *result) {
	switch c.tag {
	case srcRelease, srcRouteGet:
		k.onRelease(p, c, res)
	case srcRead:
		k.onRead(c, res)
	case srcRecordGet, srcRecordPut:
		k.onRecord(c, res)
	default:
		panic(fmt.Sprintf("territory %d: migration source result for tag %d", k.t.cfg.ID, c.tag))
	}
}

func (k *migSource) onRelease(p *primary, c call, res *result) {
	t := k.t
	s := k.subs[p.sg]
	if s == nil || s.stage != srcReleasing {
		return
	}
	switch {
	case c.tag == srcRelease && res.ok() && res.Coord.Succeeded:
		// Our rewrite won: the route's revision moved past the one the flip compares.
		p.route.ModRevision = res.Coord.Revision
		delete(k.subs, p.sg)
		t.observe(FactMigration{Territory: t.cfg.ID, Subgraph: p.sg, Epoch: s.epoch, Step: MigStepReleased, LSN: p.state.AppliedLSN})
		t.writes.resume(p)
	case c.tag == srcRelease && res.ok():
		// The route changed: perhaps the flip. Read it; keep holding.
		t.coord(scoped(k.id, srcRouteGet, p), CoordRequest{Kind: CoordGet, Key: RouteKey(p.sg)})
	case c.tag == srcRouteGet && res.ok() && len(res.Coord.KVs) > 0:
		kv := res.Coord.KVs[0]
		if string(kv.Value) == string(p.routeValue) {
			p.route.ModRevision = kv.ModRevision // still ours: release at this revision
			t.afterMs(scoped(k.id, srcReleaseTry, p), t.cfg.RetryBaseMs)
			return
		}
		// Moved: the flip won. Stream the catch-up (T_dest applies it only
		// under the image of this epoch) and step down.
		s.stage, s.next, s.persisted, s.idle = srcCatchup, s.snapLSN+1, s.snapLSN, 0
		t.syncRoutes([]KV{kv})
	default:
		// Failed or ambiguous: hold on, and try again.
		t.afterMs(scoped(k.id, srcReleaseTry, p), t.cfg.RetryCapMs)
	}
}
