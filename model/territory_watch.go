package model

import "strings"

// The route cache. A territory learns which subgraphs to adopt or drop from a
// watch on the routes, registered before its boot read so that no change falls
// between the two. Watch events may be lost (a partition, a dropped stream):
// the full re-read of the routes is a fallback every RouteResyncMs, and every
// RoutePollMs while no watch is registered. A lost registration is retried on
// the next tick. Safety never rests on the cache: claims compare-and-swap the
// route, the log fences older writers, and reads pass the barrier
// (territory_barrier.go).

func (t *Territory) watchRoutes() {
	t.watchBusy = true
	t.coord(t.hostCall(hostWatch), CoordRequest{Kind: CoordWatch, Key: RoutesPrefix})
}

func (t *Territory) onWatchRegistered(res *result) {
	t.watchBusy = false
	t.watching = res.ok()
	if t.watching && !t.pollBusy {
		t.pollRoutes()
	}
}

// pollRoutes re-reads every route (the fallback of the watch).
func (t *Territory) pollRoutes() {
	t.pollBusy = true
	t.coord(t.hostCall(hostRoutePoll), CoordRequest{Kind: CoordRange, Key: RoutesPrefix})
}

// onWatch applies one route change. A deleted route is left to the barrier and
// the claim, as a route missing from a poll is.
func (t *Territory) onWatch(ev WatchEvent) {
	if ev.Deleted || !strings.HasPrefix(ev.KV.Key, RoutesPrefix) || !t.booted {
		return
	}
	t.syncRoutes([]KV{ev.KV})
}

// routeSeen says whether syncRoutes already acted on this revision of the
// route, so a poll re-parses only the routes that changed; a step-down forgets
// it, so that the next read decides afresh.
func (t *Territory) routeSeen(sg SubgraphID, modRev int64) bool {
	return uint32(sg) < uint32(len(t.routeRev)) && modRev != 0 && t.routeRev[sg] == modRev
}

func (t *Territory) markRoute(sg SubgraphID, modRev int64) {
	if t.routeRev == nil {
		t.routeRev = make([]int64, t.cfg.Subgraphs)
	}
	if uint32(sg) < uint32(len(t.routeRev)) {
		t.routeRev[sg] = modRev
	}
}
