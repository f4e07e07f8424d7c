package sim

import (
	"fmt"
	"slices"

	"territory/faults"
	"territory/model"
)

// Faults of one kind that overlap compose; the world's condition is always
// recomputed from the set of active faults, so the end of a fault restores
// exactly the condition the other active faults make (and, when none is
// left, the condition before any of them):
//
//   - partitions (both kinds) and coord.unreachable: the union of the active
//     cuts; each heals only its own links.
//   - net.degrade: each odds is the combination of independent sources,
//     1 - Π(1 - p), over the active degradations.
//   - host.crash: a host stays down while any crash holds it, and restarts
//     when the last one ends (a lost host never restarts).
//   - host.pause: a process stays frozen while any pause that froze it (in
//     its current incarnation) holds it; a crash ends every hold on the dead
//     process, and a pause that starts while the host is down holds nothing.
//   - clock.skew: offsets add up; clock.drift: rates add up (Validate bounds
//     the sum); clock.jump is for good.
//   - coord.slow, blob.slow: extra latencies add up.
//   - log.bookie-crash: a bookie stays down while any crash holds it;
//     log.bookie-stall: the stall lasts until the latest active end.
//   - rate faults (log.ack-loss, blob.errors, blob.ambiguous-put,
//     disk.torn-write, disk.corrupt-read): independent odds, 1 - Π(1 - p).
//   - host.loss, coord.session-expiry, blob.corrupt, clock.jump happen at
//     their start; their end changes nothing.

// faultState is what the executor knows about the schedule as it runs.
type faultState struct {
	active []int             // schedule indices of the faults started and not yet ended, ascending
	holds  map[pauseHold]int // host.pause: the incarnation each fault froze, per host
}

type pauseHold struct {
	fault int
	host  model.HostID
}

// scheduleFaults turns the schedule into kernel events: one at the start of
// each fault, one at its end (heal).
func (w *World) scheduleFaults() {
	w.faultsInProgress.holds = map[pauseHold]int{}
	for i := range w.cfg.Schedule.Faults {
		f := w.cfg.Schedule.Faults[i]
		w.k.At(f.AtMs*1000, func() { w.startFault(i) })
		w.k.At(f.EndMs()*1000, func() { w.endFault(i) })
	}
}

func (w *World) ids(names []string) []model.HostID {
	out := make([]model.HostID, len(names))
	for i, n := range names {
		out[i] = w.hostByName(n).id
	}
	return out
}

// activeOf lists the active faults of the given kinds, in schedule order.
func (w *World) activeOf(kinds ...faults.Kind) []faults.Fault {
	var out []faults.Fault
	for _, i := range w.faultsInProgress.active {
		if f := w.cfg.Schedule.Faults[i]; slices.Contains(kinds, f.Kind) {
			out = append(out, f)
		}
	}
	return out
}

// holding reports whether an active fault of kind (other than except) names host.
func (w *World) holding(kind faults.Kind, name string, except int) bool {
	for _, i := range w.faultsInProgress.active {
		if f := w.cfg.Schedule.Faults[i]; i != except && f.Kind == kind && slices.Contains(f.Hosts, name) {
			return true
		}
	}
	return false
}

// combinePM combines independent odds (per million): an operation escapes
// them all with probability Π(1 - p). Integer arithmetic, so a replay on any
// CPU computes the same odds.
func combinePM(pms ...int64) int64 {
	escape := int64(1_000_000)
	for _, p := range pms {
		escape = escape * (1_000_000 - p) / 1_000_000
	}
	return 1_000_000 - escape
}

func (w *World) ratePM(kind faults.Kind) int64 {
	var pms []int64
	for _, f := range w.activeOf(kind) {
		pms = append(pms, f.RatePM)
	}
	return combinePM(pms...)
}

func (w *World) extraUs(kind faults.Kind) int64 {
	var us int64
	for _, f := range w.activeOf(kind) {
		us += f.ExtraMs * 1000
	}
	return us
}

// driftPMOf is the sum of the active drifts of a host.
func (w *World) driftPMOf(name string) int64 {
	var pm int64
	for _, f := range w.activeOf(faults.ClockDrift) {
		if slices.Contains(f.Hosts, name) {
			pm += f.RatePM
		}
	}
	return pm
}

// recompute sets the world's condition for one kind from the active faults.
func (w *World) recompute(f faults.Fault) {
	switch f.Kind {
	case faults.NetPartition, faults.NetPartitionOneWay, faults.CoordUnreachable:
		w.applyPartitions()
	case faults.NetDegrade:
		link := w.cfg.Net
		var drop, dup, reorder, spike []int64
		for _, d := range w.activeOf(faults.NetDegrade) {
			drop, dup, reorder, spike = append(drop, d.DropPM), append(dup, d.DuplicatePM), append(reorder, d.ReorderPM), append(spike, d.SpikePM)
		}
		link.DropPM = combinePM(append([]int64{link.DropPM}, drop...)...)
		link.DuplicatePM = combinePM(append([]int64{link.DuplicatePM}, dup...)...)
		link.ReorderPM = combinePM(append([]int64{link.ReorderPM}, reorder...)...)
		link.SpikePM = combinePM(append([]int64{link.SpikePM}, spike...)...)
		if link.SpikeUs == 0 && len(spike) > 0 {
			link.SpikeUs = 50_000
		}
		w.net.SetDefault(link)
	case faults.ClockDrift:
		now := w.k.NowUs()
		for _, n := range f.Hosts {
			h := w.hostByName(n)
			// The error so far stays (the clock has drifted); the rate changes.
			h.offsetUs, h.driftFromUs, h.driftPM = h.clockErrUs(now), now, w.driftPMOf(n)
		}
	case faults.CoordSlow:
		w.coordExtraUs = w.extraUs(faults.CoordSlow)
	case faults.BlobSlow:
		w.blobExtraUs = w.extraUs(faults.BlobSlow)
	case faults.LogAckLoss:
		w.ackLossPM = w.ratePM(faults.LogAckLoss)
	case faults.BlobErrors:
		w.blobErrPM = w.ratePM(faults.BlobErrors)
	case faults.BlobAmbiguousPut:
		w.blobAmbigPM = w.ratePM(faults.BlobAmbiguousPut)
	case faults.DiskTornWrite:
		w.diskTornPM = w.ratePM(faults.DiskTornWrite)
	case faults.DiskCorruptRead:
		w.diskCorruptPM = w.ratePM(faults.DiskCorruptRead)
	default:
		panic(fmt.Sprintf("sim: fault kind %q has no composed condition", f.Kind))
	}
}

func (w *World) startFault(i int) {
	f := w.cfg.Schedule.Faults[i]
	w.mix(uint64(f.AtMs) ^ 0xfa17)
	w.publish(FaultChanged{Fault: f, Started: true})
	if j, found := slices.BinarySearch(w.faultsInProgress.active, i); !found {
		w.faultsInProgress.active = slices.Insert(w.faultsInProgress.active, j, i)
	}
	switch f.Kind {
	case faults.NetPartition, faults.NetPartitionOneWay, faults.CoordUnreachable, faults.NetDegrade,
		faults.ClockDrift, faults.CoordSlow, faults.BlobSlow,
		faults.LogAckLoss, faults.BlobErrors, faults.BlobAmbiguousPut, faults.DiskTornWrite, faults.DiskCorruptRead:
		w.recompute(f)
	case faults.HostCrash:
		for _, n := range f.Hosts {
			w.crash(w.hostByName(n))
		}
	case faults.HostLoss:
		for _, n := range f.Hosts {
			h := w.hostByName(n)
			h.lost = true // crashed with its disk: nothing of it comes back
			w.crash(h)
			h.disk = newDisk()
		}
	case faults.HostPause:
		for _, n := range f.Hosts {
			h := w.hostByName(n)
			if !h.up {
				continue // nothing runs to be frozen
			}
			w.faultsInProgress.holds[pauseHold{i, h.id}] = h.incarnation
			w.pause(h)
		}
	case faults.ClockSkew, faults.ClockJump:
		for _, n := range f.Hosts {
			w.hostByName(n).offsetUs += f.ExtraMs * 1000
		}
	case faults.BlobCorrupt:
		w.corruptBlobs()
	case faults.CoordSessionExpiry:
		for _, id := range w.ids(f.Hosts) {
			w.coord.ExpireLeasesOf(id)
		}
	case faults.LogBookieCrash:
		w.log.CrashBookie(f.Bookie)
	case faults.LogBookieStall:
		w.log.StallBookie(f.Bookie, f.EndMs()*1000) // the log keeps the latest end of overlapping stalls
	default:
		panic(fmt.Sprintf("sim: fault kind %q has no executor (the schedule was validated)", f.Kind))
	}
}

func (w *World) endFault(i int) {
	f := w.cfg.Schedule.Faults[i]
	w.mix(uint64(f.EndMs()) ^ 0x4ea1)
	w.publish(FaultChanged{Fault: f})
	if j, found := slices.BinarySearch(w.faultsInProgress.active, i); found {
		w.faultsInProgress.active = slices.Delete(w.faultsInProgress.active, j, j+1)
	}
	switch f.Kind {
	case faults.NetPartition, faults.NetPartitionOneWay, faults.CoordUnreachable, faults.NetDegrade,
		faults.ClockDrift, faults.CoordSlow, faults.BlobSlow,
		faults.LogAckLoss, faults.BlobErrors, faults.BlobAmbiguousPut, faults.DiskTornWrite, faults.DiskCorruptRead:
		w.recompute(f)
	case faults.HostCrash:
		for _, n := range f.Hosts {
			if h := w.hostByName(n); !h.up && !h.lost && !w.holding(faults.HostCrash, n, i) {
				w.boot(h)
			}
		}
	case faults.HostPause:
		for _, n := range f.Hosts {
			h := w.hostByName(n)
			delete(w.faultsInProgress.holds, pauseHold{i, h.id})
			if h.paused && !w.pauseHeld(h) {
				w.resume(h)
			}
		}
	case faults.ClockSkew:
		for _, n := range f.Hosts {
			w.hostByName(n).offsetUs -= f.ExtraMs * 1000
		}
	case faults.LogBookieCrash:
		if !w.bookieHeld(f.Bookie) {
			w.log.RestartBookie(f.Bookie)
		}
	case faults.HostLoss, faults.ClockJump, faults.BlobCorrupt, faults.CoordSessionExpiry, faults.LogBookieStall:
		// Instantaneous or for good (a stall ends at its own time in the log).
	default:
		panic(fmt.Sprintf("sim: fault kind %q has no executor (the schedule was validated)", f.Kind))
	}
}

// pauseHeld reports whether an active pause froze h in its current incarnation.
func (w *World) pauseHeld(h *host) bool {
	for _, i := range w.faultsInProgress.active {
		if inc, ok := w.faultsInProgress.holds[pauseHold{i, h.id}]; ok && inc == h.incarnation {
			return true
		}
	}
	return false
}

func (w *World) bookieHeld(b int) bool {
	for _, f := range w.activeOf(faults.LogBookieCrash) {
		if f.Bookie == b {
			return true
		}
	}
	return false
}

// resume unfreezes a paused host: everything that waited runs, in arrival order.
func (w *World) resume(h *host) {
	h.paused = false
	w.publish(HostChanged{Host: h.id, Change: HostResumed})
	held := h.held
	h.held = nil
	inc := h.incarnation
	for _, in := range held {
		if h.incarnation != inc || h.paused {
			break
		}
		w.step(h, in)
	}
}

// applyPartitions rebuilds the network's partitions from the active faults, so
// that overlapping partitions heal independently.
func (w *World) applyPartitions() {
	w.net.Heal()
	for _, f := range w.activeOf(faults.NetPartition, faults.NetPartitionOneWay, faults.CoordUnreachable) {
		switch f.Kind {
		case faults.NetPartition:
			w.net.Partition(w.ids(f.Hosts), w.ids(f.Peers))
		case faults.NetPartitionOneWay:
			w.net.PartitionOneWay(w.ids(f.Hosts), w.ids(f.Peers))
		case faults.CoordUnreachable:
			w.net.Partition(w.ids(f.Hosts), []model.HostID{w.coordID})
		}
	}
}
