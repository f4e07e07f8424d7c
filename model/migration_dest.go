package model

import "hash/crc32"

// migDest is the destination side (T_dest) of a phased migration:
//
//  1. It assembles the image from T_src's chunks in index order, checking
//     each chunk's CRC32C and then the whole image's, and acknowledges the
//     chunks it holds (T_src resumes from there). A bad chunk is dropped and
//     asked for again; an image that fails its checksum or does not decode
//     to the subgraph at snapshot_LSN is never installed.
//  2. When the flipped route makes the host adopt the subgraph and its claim
//     lands (a new epoch), the claimer installs the image instead of loading
//     a snapshot (install): the state starts at snapshot_LSN, and the
//     subgraph stays in the loading phase (no read served, writes queued).
//  3. It applies T_src's catch-up in LSN order from snapshot_LSN + 1, each LSN
//     once (a duplicate or out-of-order delivery is skipped; a gap asks
//     again), acknowledging the next LSN it wants.
//  4. Once it has applied the catch-up target (or the manager authorised a
//     replay from the log because T_src is lost, or after migDestWaitMs
//     without T_src), it has the claimer open the log at its epoch, which
//     fences every older writer, and replay whatever the log holds beyond
//     what it applied; then the subgraph is operational and the manager hears
//     MigLive.
type migDest struct {
	noHooks
	t    *Territory
	id   compID
	subs map[SubgraphID]*destMig // looked up, never iterated
}

type destMig struct {
	epoch     uint64
	from      HostID
	snapLSN   uint64
	total     uint32
	imageSum  uint32
	buf       []byte
	got       uint32
	image     *SubgraphState
	installed bool
	gen       uint64 // the claim the image was installed under
	next      uint64 // the catch-up cursor: the next LSN to apply
	opened    bool   // handed to the claimer to open the log
	idle      int    // cleanup timer periods without a chunk
}

const migDestWaitMs = 8000 // no catch-up and no word from the manager this long: replay from the log

// The destination's timers.
const (
	destCleanup uint8 = iota // unscoped: forget an image never installed
	destWait                 // scoped: the fallback replay from the log
)

func newMigDest(t *Territory) *migDest {
	k := &migDest{t: t, subs: map[SubgraphID]*destMig{}}
	k.id = t.register(k)
	return k
}

func (k *migDest) send(to HostID, g MigMsg) {
	k.t.out.Add(Send{To: to, Msg: &Message{Migration: &g}})
}

func (k *migDest) message(from HostID, m *Message) bool {
	g := m.Migration
	if g == nil {
		return false
	}
	switch g.Kind {
	case MigChunk:
		k.onChunk(g)
	case MigCatchup:
		k.onCatchup(g)
	case MigReplay:
		k.onReplay(g)
	case MigFlipped:
		// The manager's word that the route names us: adopt now rather than
		// at the next watch event or poll. The claim's compare-and-swap
		// checks the route, so a stale copy claims nothing.
		if d := k.subs[g.Subgraph]; d != nil && d.epoch == g.Epoch && g.Route.Key == RouteKey(g.Subgraph) && k.t.subgraphs[g.Subgraph] == nil {
			k.t.syncRoutes([]KV{g.Route})
		}
		k.maybeLive(g.Subgraph, g.Epoch)
	default:
		return false
	}
	return true
}

func (k *migDest) onChunk(g *MigMsg) {
	t := k.t
	d := k.subs[g.Subgraph]
	if d == nil || d.epoch < g.Epoch {
		if p := t.subgraphs[g.Subgraph]; p != nil || g.Total == 0 {
			return // we serve it already: a stale migration
		}
		d = &destMig{epoch: g.Epoch, from: g.From, snapLSN: g.SnapLSN, total: g.Total, imageSum: g.ImageSum}
		k.subs[g.Subgraph] = d
		t.afterMs(call{comp: k.id, tag: destCleanup, sg: g.Subgraph, job: g.Epoch}, 2000)
	}
	if d.epoch != g.Epoch || d.installed || d.image != nil {
		if d.epoch == g.Epoch {
			k.send(g.From, MigMsg{Kind: MigChunkAck, Subgraph: g.Subgraph, Epoch: g.Epoch, Next: uint64(d.total)})
		}
		return
	}
	d.idle = 0
	if g.Index == d.got && g.Total == d.total && g.SnapLSN == d.snapLSN && crc32.Checksum(g.Data, crc32.MakeTable(crc32.Castagnoli)) == g.Sum {
		d.buf = append(d.buf, g.Data...)
		d.got++
		if d.got == d.total {
			k.assemble(g.Subgraph, d)
		}
	}
	k.send(g.From, MigMsg{Kind: MigChunkAck, Subgraph: g.Subgraph, Epoch: g.Epoch, Next: uint64(d.got)})
}

// assemble checks and decodes the whole image; a bad one is asked for again.
func (k *migDest) assemble(sg SubgraphID, d *destMig) {
	st, err := DecodeSnapshot(d.buf)
	if crc32.Checksum(d.buf, crc32.MakeTable(crc32.Castagnoli)) != d.imageSum || err != nil || st.ID != sg || st.Count != k.t.cfg.Subgraphs || st.AppliedLSN != d.snapLSN {
		d.buf, d.got = nil, 0
		return
	}
	d.image, d.buf = st, nil
}

func (k *migDest) onTimer(p *primary, c call) {
	switch c.tag {
	case destCleanup:
		d := k.subs[c.sg]
		if d == nil || d.epoch != c.job || d.installed {
			return
		}
		d.idle++
		if d.idle >= 10 { // 20 s without a chunk: the migration went elsewhere
			delete(k.subs, c.sg)
			return
		}
		k.t.afterMs(c, 2000)
	case destWait:
		if d := k.subs[p.sg]; d != nil && d.installed && d.gen == p.gen {
			k.open(p, d, true)
		}
	}
}

// install starts p from a streamed image, if one for p is complete; the
// claimer calls it instead of loading a snapshot.
func (k *migDest) install(p *primary) bool {
	t := k.t
	d := k.subs[p.sg]
	if d == nil || d.image == nil || d.installed {
		return false
	}
	p.state, d.image = d.image, nil
	d.installed, d.gen = true, p.gen
	d.next = p.state.AppliedLSN + 1
	p.phase = phaseLoading
	// A migration is no recovery: nothing was down, no decay is due.
	t.claims.subs.of(p).stage = claimFirst
	t.observe(FactMigration{Territory: t.cfg.ID, Subgraph: p.sg, Epoch: d.epoch, Step: MigStepInstalled, LSN: p.state.AppliedLSN})
	k.send(d.from, MigMsg{Kind: MigCatchupAck, Subgraph: p.sg, Epoch: d.epoch, Next: d.next})
	t.afterMs(scoped(k.id, destWait, p), migDestWaitMs)
	return true
}

// catchingUp returns p's migration while its catch-up is being applied.
func (k *migDest) catchingUp(sg SubgraphID, epoch uint64) (*primary, *destMig) {
	d := k.subs[sg]
	p := k.t.subgraphs[sg]
	if d == nil || d.epoch != epoch || !d.installed || d.opened || p == nil || p.gen != d.gen || p.phase != phaseLoading {
		return nil, nil
	}
	return p, d
}

func (k *migDest) onCatchup(g *MigMsg) {
	t := k.t
	p, d := k.catchingUp(g.Subgraph, g.Epoch)
	if p == nil {
		k.maybeLive(g.Subgraph, g.Epoch)
		return
	}
	from := d.next
	for _, e := range g.Entries {
		if e.LSN < d.next {
			continue // delivered before
		}
		if e.LSN != d.next {
			break // a gap: ask again from d.next
		}
		ev, err := DecodeEvent(e.Data)
		if err != nil || ev.LSN != e.LSN || ev.Subgraph != p.sg {
			break // never applied; asked for again
		}
		p.state.Apply(&ev)
		d.next++
	}
	if d.next > from {
		t.observe(FactReplayed{Territory: t.cfg.ID, Subgraph: p.sg, FromLSN: from, ToLSN: d.next - 1})
	}
	k.send(g.From, MigMsg{Kind: MigCatchupAck, Subgraph: g.Subgraph, Epoch: g.Epoch, Next: d.next})
	if d.next > g.Target {
		t.observe(FactMigration{Territory: t.cfg.ID, Subgraph: p.sg, Epoch: d.epoch, Step: MigStepCaughtUp, LSN: d.next - 1})
		k.open(p, d, false)
	}
}

// onReplay: T_src is lost; the manager authorises a replay from the log from
// last_acknowledged_lsn_by_dest + 1. What this host applied beyond that is in
// its state already: the claimer replays from applied + 1, never below.
func (k *migDest) onReplay(g *MigMsg) {
	if p, d := k.catchingUp(g.Subgraph, g.Epoch); p != nil {
		k.open(p, d, true)
		return
	}
	k.maybeLive(g.Subgraph, g.Epoch)
}

func (k *migDest) open(p *primary, d *destMig, replay bool) {
	if d.opened {
		return
	}
	d.opened = true
	if replay {
		k.t.observe(FactMigration{Territory: k.t.cfg.ID, Subgraph: p.sg, Epoch: d.epoch, Step: MigStepCaughtUp, LSN: p.state.AppliedLSN, Replayed: true})
	}
	k.t.claims.open(p)
}

// operational: a subgraph installed from an image is live.
func (k *migDest) operational(p *primary, _ bool) {
	if d := k.subs[p.sg]; d != nil && d.installed {
		k.t.observe(FactMigration{Territory: k.t.cfg.ID, Subgraph: p.sg, Epoch: d.epoch, Step: MigStepLive, LSN: p.state.AppliedLSN})
		k.maybeLive(p.sg, d.epoch)
	}
}

// maybeLive tells the manager that the migration of epoch is live here.
func (k *migDest) maybeLive(sg SubgraphID, epoch uint64) {
	d := k.subs[sg]
	p := k.t.subgraphs[sg]
	if d == nil || d.epoch != epoch || !d.installed || p == nil || p.phase != phaseOperational {
		return
	}
	k.send(k.t.cfg.Manager, MigMsg{Kind: MigLive, Subgraph: sg, Epoch: epoch, From: d.from, To: k.t.cfg.ID})
}

func (k *migDest) steppedDown(p *primary) {
	if d := k.subs[p.sg]; d != nil && d.installed {
		delete(k.subs, p.sg)
	}
}
