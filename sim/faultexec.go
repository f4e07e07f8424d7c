package sim

import (
	"territory/faults"
	"territory/model"
)

// scheduleFaults turns the schedule into kernel events: one at the start of
// each fault, one at its end (heal).
func (w *World) scheduleFaults() {
	for i := range w.cfg.Schedule.Faults {
		f := w.cfg.Schedule.Faults[i]
		w.k.At(f.AtMs*1000, func() { w.startFault(f) })
		w.k.At(f.EndMs()*1000, func() { w.endFault(f) })
	}
}

func (w *World) ids(names []string) []model.HostID {
	out := make([]model.HostID, len(names))
	for i, n := range names {
		out[i] = w.hostByName(n).id
	}
	return out
}

func (w *World) startFault(f faults.Fault) {
	w.mix(uint64(f.AtMs) ^ 0xfa17)
	w.publish(FaultChanged{Fault: f, Started: true})
	switch f.Kind {
	case faults.NetPartition, faults.NetPartitionOneWay, faults.CoordUnreachable:
		w.activePartitions = append(w.activePartitions, f)
		w.applyPartitions()
	case faults.NetDegrade:
		link := w.cfg.Net
		link.DropPM, link.DuplicatePM, link.ReorderPM, link.SpikePM = f.DropPM, f.DuplicatePM, f.ReorderPM, f.SpikePM
		if link.SpikeUs == 0 {
			link.SpikeUs = 50_000
		}
		w.net.SetDefault(link)
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
			w.pause(w.hostByName(n))
		}
	case faults.ClockSkew, faults.ClockJump:
		for _, n := range f.Hosts {
			w.hostByName(n).offsetUs += f.ExtraMs * 1000
		}
	case faults.ClockDrift:
		for _, n := range f.Hosts {
			h := w.hostByName(n)
			h.offsetUs, h.driftFromUs, h.driftPM = h.clockErrUs(w.k.NowUs()), w.k.NowUs(), f.RatePM
		}
	case faults.BlobCorrupt:
		w.corruptBlobs()
	case faults.DiskTornWrite:
		w.diskTornPM = f.RatePM
	case faults.DiskCorruptRead:
		w.diskCorruptPM = f.RatePM
	case faults.CoordSlow:
		w.coordExtraUs += f.ExtraMs * 1000
	case faults.CoordSessionExpiry:
		for _, id := range w.ids(f.Hosts) {
			w.coord.ExpireLeasesOf(id)
		}
	case faults.LogBookieCrash:
		w.log.CrashBookie(f.Bookie)
	case faults.LogBookieStall:
		w.log.StallBookie(f.Bookie, f.EndMs()*1000)
	case faults.LogAckLoss:
		w.ackLossPM = f.RatePM
	case faults.BlobErrors:
		w.blobErrPM = f.RatePM
	case faults.BlobSlow:
		w.blobExtraUs += f.ExtraMs * 1000
	case faults.BlobAmbiguousPut:
		w.blobAmbigPM = f.RatePM
	}
}

func (w *World) endFault(f faults.Fault) {
	w.mix(uint64(f.EndMs()) ^ 0x4ea1)
	w.publish(FaultChanged{Fault: f})
	switch f.Kind {
	case faults.NetPartition, faults.NetPartitionOneWay, faults.CoordUnreachable:
		for i := range w.activePartitions {
			if w.activePartitions[i].AtMs == f.AtMs && w.activePartitions[i].Kind == f.Kind {
				w.activePartitions = append(w.activePartitions[:i], w.activePartitions[i+1:]...)
				break
			}
		}
		w.applyPartitions()
	case faults.NetDegrade:
		w.net.SetDefault(w.cfg.Net)
	case faults.HostCrash:
		for _, n := range f.Hosts {
			if h := w.hostByName(n); !h.up && !h.lost {
				w.boot(h)
			}
		}
	case faults.HostPause:
		for _, n := range f.Hosts {
			h := w.hostByName(n)
			if !h.paused {
				continue
			}
			h.paused = false
			w.publish(HostChanged{Host: h.id, Change: HostResumed})
			held := h.held
			h.held = nil
			inc := h.incarnation
			for _, in := range held { // everything that waited, in arrival order
				if h.incarnation != inc || h.paused {
					break
				}
				w.step(h, in)
			}
		}
	case faults.ClockSkew:
		for _, n := range f.Hosts {
			w.hostByName(n).offsetUs -= f.ExtraMs * 1000
		}
	case faults.ClockDrift:
		for _, n := range f.Hosts {
			h := w.hostByName(n)
			h.offsetUs, h.driftFromUs, h.driftPM = h.clockErrUs(w.k.NowUs()), w.k.NowUs(), 0
		}
	case faults.CoordSlow:
		w.coordExtraUs -= f.ExtraMs * 1000
	case faults.LogBookieCrash:
		w.log.RestartBookie(f.Bookie)
	case faults.LogAckLoss:
		w.ackLossPM = 0
	case faults.BlobErrors:
		w.blobErrPM = 0
	case faults.BlobSlow:
		w.blobExtraUs -= f.ExtraMs * 1000
	case faults.BlobAmbiguousPut:
		w.blobAmbigPM = 0
	case faults.DiskTornWrite:
		w.diskTornPM = 0
	case faults.DiskCorruptRead:
		w.diskCorruptPM = 0
	}
}

// applyPartitions rebuilds the network's partitions from the active faults, so
// that overlapping partitions heal independently.
func (w *World) applyPartitions() {
	w.net.Heal()
	for _, f := range w.activePartitions {
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
