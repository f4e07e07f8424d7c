package sim

import (
	"strings"

	"territory/faults"
	"territory/model"
)

// MigrationConfig drives phased migrations in a run: the manager starts one
// every EveryMs (subgraph and destination drawn from the run's seed), and
// the world injects faults at the migration's own steps, as the coordination
// store commits them (a fixed schedule could not aim at "right after the
// flip"). Every fault stops at FaultsUntilMs; HealedMs counts it.
type MigrationConfig struct {
	EveryMs int64 `json:"every_ms,omitempty"` // 0: no migrations
	Max     int   `json:"max,omitempty"`      // in flight at once (default 1)
	UntilMs int64 `json:"until_ms,omitempty"` // no new migration after this (default: the workload's duration)
	// SrcLossAfterFlipPM: per flip, the odds that T_src's host is lost for
	// good right after it (at most MaxLosses per run).
	SrcLossAfterFlipPM int64 `json:"src_loss_after_flip_pm,omitempty"`
	MaxLosses          int   `json:"max_losses,omitempty"`
	// DestCrashPM: per phase entered (SNAPSHOT_STREAMING, ROUTE_FLIPPED,
	// CATCHUP_STREAMING), the odds that T_dest crashes within 300 ms, for
	// DownMinMs..DownMaxMs (past the manager's host-loss time it is lost to
	// the manager: the migration fails and is retried).
	DestCrashPM int64 `json:"dest_crash_pm,omitempty"`
	// ManagerCrashPM: per phase entered, the odds that the manager crashes
	// (its migration state is in the records only) for DownMinMs..DownMaxMs.
	ManagerCrashPM int64 `json:"manager_crash_pm,omitempty"`
	// ManagerPausePM: per phase entered, the odds that the manager freezes
	// (keeping its state: it acts on what it knew when it resumes) for
	// DownMinMs..DownMaxMs.
	ManagerPausePM int64 `json:"manager_pause_pm,omitempty"`
	DownMinMs      int64 `json:"down_min_ms,omitempty"`
	DownMaxMs      int64 `json:"down_max_ms,omitempty"`
	FaultsUntilMs  int64 `json:"faults_until_ms,omitempty"`
}

func (m MigrationConfig) faulty() bool {
	return m.SrcLossAfterFlipPM > 0 || m.DestCrashPM > 0 || m.ManagerCrashPM > 0 || m.ManagerPausePM > 0
}

// faultsEndMs is when the last migration fault can have healed (0: none).
func (m MigrationConfig) faultsEndMs() int64 {
	if !m.faulty() {
		return 0
	}
	return m.FaultsUntilMs + m.DownMaxMs + 300
}

// migrationManager configures the manager's migrator for the run.
func (w *World) migrationManager(cfg *model.ManagerConfig, incarnation int) {
	mc := w.cfg.Migration
	if mc.EveryMs <= 0 {
		return
	}
	cfg.MigrateEveryMs, cfg.MigrateMax = mc.EveryMs, max(1, mc.Max)
	cfg.MigrateSeed = w.seed*0x9e3779b97f4a7c15 ^ uint64(incarnation+1)<<40 ^ 0x6d6967
	cfg.MigrateUntilMs = mc.UntilMs
	if cfg.MigrateUntilMs == 0 {
		cfg.MigrateUntilMs = w.cfg.DurationMs
	}
}

// migrationFaults aims faults at a migration's steps as the coordination
// store commits them.
func (w *World) migrationFaults(req model.CoordRequest, resp model.CoordResponse, err model.ServiceErr) {
	mc := w.cfg.Migration
	if !mc.faulty() || err != model.ErrNone || req.Kind != model.CoordTxn || !resp.Succeeded || w.k.NowUs() > mc.FaultsUntilMs*1000 {
		return
	}
	for _, op := range req.Then {
		if op.Kind != model.TxnPut || !strings.HasPrefix(op.Key, model.MigrationsPrefix) {
			continue
		}
		rec, perr := model.ParseMigrationRecord(model.KV{Key: op.Key, Value: op.Value})
		if perr != nil {
			continue
		}
		src, dst := w.hostByID(rec.From), w.hostByID(rec.To)
		if rec.State == model.MigRouteFlipped && src != nil && w.migLosses < mc.MaxLosses && w.liveTerritories() > 2 && w.rndMigFaults.Chance(mc.SrcLossAfterFlipPM) {
			w.migLosses++
			w.k.After(w.rndMigFaults.Between(0, 2_000), func() { w.loseHost(src) })
		}
		switch rec.State {
		case model.MigSnapshotStreaming, model.MigRouteFlipped, model.MigCatchupStreaming:
			if dst != nil && w.rndMigFaults.Chance(mc.DestCrashPM) {
				w.crashFor(dst, w.rndMigFaults.Between(0, 300_000))
			}
		}
		if w.rndMigFaults.Chance(mc.ManagerCrashPM) {
			w.crashFor(w.managerHost, w.rndMigFaults.Between(0, 100_000))
		} else if w.rndMigFaults.Chance(mc.ManagerPausePM) {
			w.pauseFor(w.managerHost, w.rndMigFaults.Between(0, 5_000))
		}
	}
}

func (w *World) hostByID(id model.HostID) *host {
	if int(id) <= 0 || int(id) >= len(w.hosts) || w.hosts[id].kind != kindTerritory {
		return nil
	}
	return w.hosts[id]
}

func (w *World) liveTerritories() int {
	n := 0
	for _, h := range w.territories {
		if !h.lost {
			n++
		}
	}
	return n
}

// loseHost loses a host for good, with its disk (as a host.loss fault does).
func (w *World) loseHost(h *host) {
	if h.lost {
		return
	}
	f := faults.Fault{AtMs: w.k.NowUs() / 1000, Kind: faults.HostLoss, Hosts: []string{h.name}}
	w.publish(FaultChanged{Fault: f, Started: true})
	h.lost = true
	w.crash(h)
	h.disk = newDisk()
	w.publish(FaultChanged{Fault: f})
}

// crashFor crashes a host after delayUs and boots it again after a down
// time drawn from the configuration, unless a scheduled crash still holds it.
func (w *World) crashFor(h *host, delayUs int64) {
	mc := w.cfg.Migration
	down := w.rndMigFaults.Between(mc.DownMinMs*1000, mc.DownMaxMs*1000)
	w.k.After(delayUs, func() {
		if !h.up || h.lost {
			return
		}
		f := faults.Fault{AtMs: w.k.NowUs() / 1000, DurationMs: down / 1000, Kind: faults.HostCrash, Hosts: []string{h.name}}
		w.publish(FaultChanged{Fault: f, Started: true})
		w.crash(h)
		w.k.After(down, func() {
			w.publish(FaultChanged{Fault: f})
			if !h.up && !h.lost && !w.holding(faults.HostCrash, h.name, -1) {
				w.boot(h)
			}
		})
	})
}

// pauseFor freezes a host after delayUs for a down time drawn from the
// configuration (unless a scheduled pause still holds it).
func (w *World) pauseFor(h *host, delayUs int64) {
	mc := w.cfg.Migration
	down := w.rndMigFaults.Between(mc.DownMinMs*1000, mc.DownMaxMs*1000)
	w.k.After(delayUs, func() {
		if !h.up || h.paused {
			return
		}
		f := faults.Fault{AtMs: w.k.NowUs() / 1000, DurationMs: down / 1000, Kind: faults.HostPause, Hosts: []string{h.name}}
		w.publish(FaultChanged{Fault: f, Started: true})
		w.pause(h)
		inc := h.incarnation
		w.k.After(down, func() {
			w.publish(FaultChanged{Fault: f})
			if h.paused && h.incarnation == inc && !w.pauseHeld(h) {
				w.resume(h)
			}
		})
	})
}
