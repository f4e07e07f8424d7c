package sim

import (
	"slices"
	"strings"

	"territory/model"
	"territory/sim/invariants"
)

// primaryChecker guards at-most-one-primary across migrations: once the
// coordination store committed a route flip of a subgraph from T_src to
// T_dest (the transaction that writes the route and the ROUTE_FLIPPED
// record), T_src never again appends an entry of that subgraph to the log nor
// acknowledges a write of it at its old epoch, or any older one. The log's
// fencing alone would allow both until T_dest opens the log; the migration
// promises that T_src stopped before the flip: so no entry of an epoch up to
// T_src's may ever commit beyond the LSN T_src held its writes at (its last
// MigStepHeld of that migration epoch), before the flip or after it. It also gathers the
// migration figures of the run: phases, outcomes, and the write pause from
// T_src holding its writes to T_dest becoming operational.
type primaryChecker struct {
	flips map[model.SubgraphID]flipNote
	held  map[migKey]int64
	holds map[migKey]uint64 // the LSN T_src last held its writes at
	stats MigrationStats
	pause []int64
}

type flipNote struct {
	from     model.HostID
	srcEpoch uint64 // the route epoch T_src held: the flip wrote srcEpoch + 1
	epoch    uint64 // migration epoch
	heldLSN  uint64
	held     bool
}

type migKey struct {
	sg    model.SubgraphID
	epoch uint64
}

// MigrationStats are a run's migrations (sim/primary_checker.go).
type MigrationStats struct {
	Started    int     `json:"started"`   // records created
	Retries    int     `json:"retries"`   // FAILED -> PENDING
	Flips      int     `json:"flips"`     // routes flipped
	Committed  int     `json:"committed"` // COMMITTED
	Failed     int     `json:"failed"`    // -> FAILED
	Replays    int     `json:"replays"`   // T_dest replayed from the log instead of T_src's catch-up
	Pauses     int     `json:"pauses"`    // write pauses measured (hold to live)
	PauseP50Ms float64 `json:"pause_p50_ms"`
	PauseP99Ms float64 `json:"pause_p99_ms"`
	PauseMaxMs float64 `json:"pause_max_ms"`
	// PausesMs: every write pause of the run, in the order they ended.
	PausesMs []float64 `json:"pauses_ms,omitempty"`
}

func newPrimaryChecker(*View) Checker {
	return &primaryChecker{flips: map[model.SubgraphID]flipNote{}, held: map[migKey]int64{}, holds: map[migKey]uint64{}}
}

func (*primaryChecker) Name() string { return "at-most-one-primary" }

func (c *primaryChecker) Observe(v *View, e BusEvent) {
	switch e := e.(type) {
	case CoordApplied:
		if e.Err == model.ErrNone && e.Req.Kind == model.CoordTxn && e.Resp.Succeeded {
			c.onTxn(v, e.Req.Then)
		}
	case EntryCommitted:
		if n, ok := c.flips[model.SubgraphID(e.Stream)]; ok {
			c.beyondHold(v, n, e.Stream, e.LSN, e.Epoch)
		}
	case LogSent:
		if e.Req.Kind != model.LogAppend {
			return
		}
		if n, ok := c.flips[model.SubgraphID(e.Req.Stream)]; ok && e.Host == n.from && e.Req.Epoch <= n.srcEpoch {
			v.Violate(invariants.AtMostOnePrimary, "%s appended LSN %d of subgraph %d at epoch %d after the route flipped away from it (migration epoch %d)",
				v.HostName(e.Host), e.Req.LSN, e.Req.Stream, e.Req.Epoch, n.epoch)
		}
	case FactObserved:
		switch f := e.Fact.(type) {
		case model.FactCommitted:
			if n, ok := c.flips[f.Subgraph]; ok && f.Territory == n.from && f.Epoch <= n.srcEpoch {
				v.Violate(invariants.AtMostOnePrimary, "%s acknowledged LSN %d of subgraph %d at epoch %d after the route flipped away from it (migration epoch %d)",
					v.HostName(f.Territory), f.LSN, f.Subgraph, f.Epoch, n.epoch)
			}
		case model.FactMigration:
			k := migKey{f.Subgraph, f.Epoch}
			switch f.Step {
			case model.MigStepHeld:
				c.held[k] = v.NowUs()
				c.holds[k] = f.LSN
			case model.MigStepCaughtUp:
				if f.Replayed {
					c.stats.Replays++
				}
			case model.MigStepLive:
				if at, ok := c.held[k]; ok {
					c.pause = append(c.pause, v.NowUs()-at)
					delete(c.held, k)
				}
			}
		}
	}
}

// beyondHold reports an entry of T_src's epoch (or older) past its hold.
func (c *primaryChecker) beyondHold(v *View, n flipNote, stream uint32, lsn, epoch uint64) {
	if n.held && epoch <= n.srcEpoch && lsn > n.heldLSN {
		v.Violate(invariants.AtMostOnePrimary, "LSN %d of subgraph %d committed at epoch %d, beyond the LSN %d its source held its writes at for the flip (migration epoch %d)",
			lsn, stream, epoch, n.heldLSN, n.epoch)
	}
}

func (c *primaryChecker) onTxn(v *View, ops []model.TxnOp) {
	var route *model.Route
	for _, op := range ops {
		if op.Kind == model.TxnPut && strings.HasPrefix(op.Key, model.RoutesPrefix) {
			if r, err := model.ParseRoute(model.KV{Key: op.Key, Value: op.Value}); err == nil {
				route = &r
			}
		}
	}
	for _, op := range ops {
		if op.Kind != model.TxnPut || !strings.HasPrefix(op.Key, model.MigrationsPrefix) {
			continue
		}
		rec, err := model.ParseMigrationRecord(model.KV{Key: op.Key, Value: op.Value})
		if err != nil {
			continue // migration-transitions reports it
		}
		switch rec.State {
		case model.MigPending:
			if rec.Attempts == 1 {
				c.stats.Started++
			} else {
				c.stats.Retries++
			}
		case model.MigRouteFlipped:
			if route != nil && route.Subgraph == rec.Subgraph && route.Epoch > 0 {
				c.stats.Flips++
				n := flipNote{from: rec.From, srcEpoch: route.Epoch - 1, epoch: rec.Epoch}
				n.heldLSN, n.held = c.holds[migKey{rec.Subgraph, rec.Epoch}]
				c.flips[rec.Subgraph] = n
				for _, e := range v.Committed(uint32(rec.Subgraph)) {
					if ev, err := model.DecodeEvent(e.Data); err == nil {
						c.beyondHold(v, n, uint32(rec.Subgraph), e.LSN, ev.WriterEpoch)
					}
				}
			}
		case model.MigCommitted:
			c.stats.Committed++
		case model.MigFailed:
			c.stats.Failed++
		}
	}
}

func (c *primaryChecker) Final(*View) []invariants.Violation { return nil }

func (c *primaryChecker) Report(o *Outcome) {
	o.Migration = c.stats
	if len(c.pause) == 0 {
		return
	}
	for _, us := range c.pause {
		o.Migration.PausesMs = append(o.Migration.PausesMs, float64(us)/1000)
	}
	s := slices.Clone(c.pause)
	slices.Sort(s)
	o.Migration.Pauses = len(s)
	o.Migration.PauseP50Ms = float64(s[len(s)/2]) / 1000
	o.Migration.PauseP99Ms = float64(s[min(len(s)-1, len(s)*99/100)]) / 1000
	o.Migration.PauseMaxMs = float64(s[len(s)-1]) / 1000
}
