package model

import "fmt"

// claimer is the claim component: it bumps the subgraph's epoch in its route
// by compare-and-swap, loads a snapshot when it starts from nothing (the
// loader), opens the log stream at that epoch (which fences every older
// writer), replays the log to the tail seen at open, and makes the subgraph
// operational. Any append trouble that puts our view of the log in doubt comes
// back here as a re-claim.
type claimer struct {
	noHooks
	t    *Territory
	id   compID
	subs perSubgraph[claimState]
}

// claimState is a subgraph's claim. takeover is explicit: a claim by this
// incarnation that replaced an epoch > 0 before it first became operational
// is a recovery; a later re-claim (after append failures) is not.
type claimState struct {
	stage    claimStage
	tries    int    // failed claim attempts in a row
	attempts int    // failed open or replay attempts in a row
	tailLSN  uint64 // tail returned by open; replay target
}

type claimStage uint8

const (
	claimFresh    claimStage = iota // adopted by this incarnation, no claim landed yet
	claimTakeover                   // our claim replaced an earlier epoch: operational will be a recovery
	claimFirst                      // our claim created the first epoch
	claimSettled                    // was operational once in this incarnation: a re-claim keeps its state
)

// The claimer's calls and timers.
const (
	claimCAS         uint8 = iota // compare-and-swap the route to the next epoch
	claimRouteGet                 // read the route again
	claimOpen                     // open the log at the epoch
	claimReplay                   // read the log from applied + 1
	claimRetry                    // timer: read the route again
	claimOpenRetry                // timer
	claimReplayRetry              // timer
)

func newClaimer(t *Territory) *claimer {
	k := &claimer{t: t, subs: make(perSubgraph[claimState])}
	k.id = t.register(k)
	return k
}

func (k *claimer) adopted(p *primary)     { k.claim(p) }
func (k *claimer) steppedDown(p *primary) { delete(k.subs, p.sg) }

func (k *claimer) onResult(p *primary, c call, res *result) {
	switch c.tag {
	case claimCAS:
		k.onClaim(p, res)
	case claimRouteGet:
		k.onRouteGet(p, res)
	case claimOpen:
		k.onOpen(p, res)
	case claimReplay:
		k.onReplay(p, res)
	default:
		panic(fmt.Sprintf("territory %d: claim result for tag %d", k.t.cfg.ID, c.tag))
	}
}

func (k *claimer) onTimer(p *primary, c call) {
	switch c.tag {
	case claimRetry:
		k.readRoute(p)
	case claimOpenRetry:
		k.open(p)
	case claimReplayRetry:
		k.replay(p)
	}
}

// claim bumps the subgraph's epoch in its route by compare-and-swap. Only then
// may the log stream be opened at that epoch, which fences every older writer.
func (k *claimer) claim(p *primary) {
	t := k.t
	t.genSeq++
	p.gen = t.genSeq
	p.phase = phaseClaiming
	t.hookClaiming(p)
	next := p.route.Epoch + 1
	t.coord(scoped(k.id, claimCAS, p), PutIfVersion(RouteKey(p.sg), EncodeRoute(t.cfg.ID, next), p.route.ModRevision))
}

func (k *claimer) readRoute(p *primary) {
	k.t.coord(scoped(k.id, claimRouteGet, p), CoordRequest{Kind: CoordGet, Key: RouteKey(p.sg)})
}

func (k *claimer) onClaim(p *primary, res *result) {
	t, s := k.t, k.subs.of(p)
	switch {
	case res.ok() && res.Coord.Succeeded:
		s.tries = 0
		if s.stage != claimSettled {
			s.stage = claimFirst
			if p.route.Epoch > 0 {
				s.stage = claimTakeover
			}
		}
		p.route = Route{Subgraph: p.sg, Primary: t.cfg.ID, Epoch: p.route.Epoch + 1, ModRevision: res.Coord.Revision}
		p.epoch = p.route.Epoch
		p.routeValue = EncodeRoute(t.cfg.ID, p.epoch)
		if p.state.AppliedLSN == 0 {
			if t.migDest.install(p) {
				return // a migration's image: the destination applies the catch-up, then opens
			}
			p.phase = phaseLoading
			t.loader.load(p)
			return
		}
		// A re-claim keeps the state it has: a prefix of the committed log.
		k.open(p)
	case res.ok():
		// Someone changed the route since we read it: read it again.
		k.readRoute(p)
	default:
		// Failed, or a timeout after which the swap may or may not have landed:
		// read the route again after a backoff and claim from what it says.
		k.claimFailed(p)
	}
}

// claimReleaseTries is how many failed claim attempts in a row a territory
// makes before it releases the clients waiting on the subgraph: cut off from
// the coordination store it cannot know whether it is still the primary.
const claimReleaseTries = 8

// claimFailed retries the claim after a backoff, and after claimReleaseTries
// failures tells the components (the write pipeline answers its queued
// clients "unavailable"; they retry wherever the routes send them).
func (k *claimer) claimFailed(p *primary) {
	s := k.subs.of(p)
	s.tries++
	if s.tries == claimReleaseTries {
		k.t.hookClaimStalled(p)
	}
	k.t.after(scoped(k.id, claimRetry, p), s.tries)
}

func (k *claimer) onRouteGet(p *primary, res *result) {
	t := k.t
	if !res.ok() {
		k.claimFailed(p)
		return
	}
	if len(res.Coord.KVs) == 0 {
		t.stepDown(p, stepDownWhy{reason: StepDownRouteDeleted})
		return
	}
	r, err := ParseRoute(res.Coord.KVs[0])
	if err != nil {
		// Not the core's value: claim nothing over it, and retry as after a
		// failed read.
		t.out.Add(badCoordValue(t.cfg.ID, res.Coord.KVs[0].Key, err))
		k.claimFailed(p)
		return
	}
	if r.Primary != t.cfg.ID {
		t.stepDown(p, stepDownWhy{reason: StepDownRouteMoved, route: r})
		return
	}
	p.route = r
	k.claim(p)
}

// open opens the log at the claimed epoch (after loading, if any).
func (k *claimer) open(p *primary) {
	p.phase = phaseOpening
	k.t.log(scoped(k.id, claimOpen, p), LogRequest{Kind: LogOpen, Stream: uint32(p.sg), Epoch: p.epoch})
}

func (k *claimer) onOpen(p *primary, res *result) {
	s := k.subs.of(p)
	switch {
	case res.ok():
		s.tailLSN = res.Log.TailLSN
		p.phase = phaseReplaying
		s.attempts = 0
		k.replay(p)
	case res.Err == ErrFenced:
		// A newer epoch holds the stream: find out from the route who it is.
		k.readRoute(p)
	default:
		s.attempts++
		k.t.after(scoped(k.id, claimOpenRetry, p), s.attempts)
	}
}

// replay reads the log from the applied LSN + 1: the entry at the snapshot's
// LSN is already in the state.
func (k *claimer) replay(p *primary) {
	if p.state.AppliedLSN >= k.subs.of(p).tailLSN {
		k.becomeOperational(p)
		return
	}
	k.t.log(scoped(k.id, claimReplay, p), LogRequest{Kind: LogRead, Stream: uint32(p.sg), FromLSN: p.state.AppliedLSN + 1, MaxEntries: k.t.cfg.ReplayBatch})
}

func (k *claimer) onReplay(p *primary, res *result) {
	s := k.subs.of(p)
	if !res.ok() || len(res.Log.Entries) == 0 {
		s.attempts++
		k.t.after(scoped(k.id, claimReplayRetry, p), s.attempts)
		return
	}
	from := p.state.AppliedLSN + 1
	defer func() {
		if p.state.AppliedLSN >= from {
			k.t.observe(FactReplayed{Territory: k.t.cfg.ID, Subgraph: p.sg, FromLSN: from, ToLSN: p.state.AppliedLSN})
		}
	}()
	for _, e := range res.Log.Entries {
		if e.LSN != p.state.AppliedLSN+1 {
			break // the read started before what we already applied, or skipped: ask again
		}
		ev, err := DecodeEvent(e.Data)
		if err != nil || ev.LSN != e.LSN || ev.Subgraph != p.sg {
			// A corrupt entry is never applied; another read may be served by
			// a healthy bookie.
			s.attempts++
			k.t.after(scoped(k.id, claimReplayRetry, p), s.attempts)
			return
		}
		p.state.Apply(&ev)
	}
	s.attempts = 0
	k.replay(p)
}

// becomeOperational: the log is replayed to the tail seen at open. Taking over a
// subgraph that an earlier epoch served (a restart, a lost host) is a
// recovery, which the components hear about.
func (k *claimer) becomeOperational(p *primary) {
	t, s := k.t, k.subs.of(p)
	p.phase = phaseOperational
	s.attempts = 0
	t.observe(FactOperational{Territory: t.cfg.ID, Subgraph: p.sg, Epoch: p.epoch, AppliedLSN: p.state.AppliedLSN})
	recovered := s.stage == claimTakeover
	s.stage = claimSettled
	t.hookOperational(p, recovered)
}
