package sim

import (
	"fmt"

	"territory/linearizability"
	"territory/model"
	"territory/sim/invariants"
)

// checkerRegistry builds the checkers every world runs, in this order (the
// fold first: it publishes EntryFolded, which later checkers read). A new
// protocol appends its constructors here, or calls World.AddChecker.
var checkerRegistry = []func(v *View) Checker{
	newFoldChecker,
	newHistory,
	newAckedChecker,
	newSingleWriterChecker,
	newLivenessChecker,
	newDurability,
	newProgressChecker,
	newBadValues,
	newSagaChecker,
	newWorkloadChecker,
	newMigrationChecker,
	newEgressChecker,
	newApplyChecker,
	newStaleChecker,
	newPrimaryChecker,
}

// ---- history: the linearizability record ----

// history records every client operation, from call to return (an unknown
// outcome stays open; one the client refused itself is discarded), and, with
// the log checkers' glue (lincheck.go), every recovery's decay and the commit
// time of every entry. It judges nothing itself: Run checks what it reports
// with porcupine and the log checker.
type history struct {
	rec        *linearizability.Recorder
	lin        *linChecks
	opIDs      map[model.EventUUID]linearizability.OpID
	unknownOps int
}

func newHistory(v *View) Checker {
	rec := linearizability.NewRecorder()
	return &history{rec: rec, lin: newLinChecks(v.w, rec), opIDs: map[model.EventUUID]linearizability.OpID{}}
}

func (*history) Name() string { return "history" }

func (c *history) Observe(v *View, e BusEvent) {
	switch e := e.(type) {
	case OpCalled:
		if e.Req.Stale {
			return // not a linearizable read: the stale checker judges it (stale_checker.go)
		}
		c.opIDs[e.Req.ID] = c.rec.Call(e.ClientIndex, v.w.toLinInput(&e.Req), v.NowUs())
	case OpReturned:
		if e.Done.Request.Stale {
			return
		}
		id, ok := c.opIDs[e.Done.Request.ID]
		if !ok {
			panic(fmt.Sprintf("sim: client %s finished an operation never submitted: %s", v.HostName(e.Client), e.Done.Request.ID))
		}
		delete(c.opIDs, e.Done.Request.ID)
		out, sent := toLinOutput(e.Done)
		if !sent || isCrossConnect(&e.Done.Request, v.Config().Subgraphs) {
			// A cross-subgraph connect's answer depends on post's log too:
			// the saga checker checks it against pre's log, and its steps
			// are recorded as SagaEffect operations.
			c.rec.Discard(id) // never sent: not an operation
			return
		}
		c.rec.Return(id, out, v.NowUs())
		if e.Done.Unknown {
			c.unknownOps++
		}
	case EntryCommitted:
		c.lin.committed(e.Stream, e.LSN, v.NowUs())
	case EntryFolded:
		if e.Applied && e.Event.Type == model.EvTerritoryRecovered {
			c.lin.recordDecay(e.Subgraph, &e.Event, e.Entry.FirstSentUs, v.NowUs()) // one operation over the subgraph
		}
		if e.Applied && e.Event.Type.IsSaga() {
			c.lin.recordSaga(e, v.NowUs())
		}
	case FactObserved:
		c.lin.observe(e.Fact)
	}
}

func isCrossConnect(req *model.Request, n uint32) bool {
	return req.Op == model.OpConnect && model.SubgraphOf(req.Pre, n) != model.SubgraphOf(req.Post, n)
}

// recorderManagerClient is the client id decay operations are recorded under.
const recorderManagerClient = 1 << 20

func (c *history) Final(*View) []invariants.Violation {
	c.lin.finish()
	return nil
}

func (c *history) Report(o *Outcome) {
	o.History, o.UnknownOps = c.rec, c.unknownOps
	o.MaxOpsKeyName, o.MaxOpsPerKey = c.rec.MaxOpsPerKey()
	logs, err := c.lin.logs()
	if err != nil {
		panic(fmt.Sprintf("sim: committed log: %v", err)) // the fold read the same entries
	}
	o.Logs = logs
}

// ---- state is the fold of the log; degree policy ----

// foldChecker keeps the reference fold of every committed log (and with it
// the degree-policy check of each connect), publishes EntryFolded, and
// compares every served state with it: when a primary becomes operational, on
// every periodic tick and at the end.
type foldChecker struct{ folds *invariants.Folds }

func newFoldChecker(v *View) Checker {
	return &foldChecker{folds: invariants.NewFolds(v.Config().Subgraphs, model.GenesisPolicy())}
}

func (*foldChecker) Name() string { return "fold" }

func (c *foldChecker) Observe(v *View, e BusEvent) {
	switch e := e.(type) {
	case EntryCommitted:
		sg := model.SubgraphID(e.Stream)
		ev, res, applied := c.folds.Committed(v.NowUs(), sg, model.LogEntry{LSN: e.LSN, Data: e.Data})
		v.Publish(EntryFolded{Entry: e, Subgraph: sg, Event: ev, Result: res, Applied: applied, LastHeartbeatMs: c.folds.LastHeartbeatMs(sg), Fold: c.folds.State(sg)})
	case FactObserved:
		if f, ok := e.Fact.(model.FactOperational); ok {
			if st, _ := v.State(e.Host, f.Subgraph); st != nil {
				c.compare(v, e.Host, st)
			}
		}
	case Tick:
		if e.Kind == TickPeriodic {
			c.checkStates(v)
		}
	}
}

func (c *foldChecker) compare(v *View, host model.HostID, st *model.SubgraphState) {
	if vi, _ := c.folds.Compare(v.NowUs(), v.HostName(host), st); vi != nil {
		v.Report(*vi)
	}
}

// checkStates compares every served subgraph with the fold of its log.
func (c *foldChecker) checkStates(v *View) {
	for _, t := range v.Territories() {
		for _, sg := range v.Operational(t) {
			st, _ := v.State(t, sg)
			c.compare(v, t, st)
		}
	}
}

func (c *foldChecker) Final(v *View) []invariants.Violation {
	c.checkStates(v)
	// The periodic comparisons read the digests the applies kept; once, at
	// the end, every one is recomputed from the state itself.
	for _, t := range v.Territories() {
		for _, sg := range v.Operational(t) {
			if st, _ := v.State(t, sg); st != nil {
				if vi := invariants.CheckDigest(v.NowUs(), v.HostName(t), st); vi != nil {
					v.Report(*vi)
				}
			}
		}
	}
	c.folds.CheckDigests(v.NowUs())
	return c.folds.Violations()
}

// ---- no acknowledged write lost ----

// ackedChecker: every write a client saw answered finally is in its
// subgraph's committed log at the end, and the primary applied it.
type ackedChecker struct{ acked invariants.AckedWrites }

func newAckedChecker(*View) Checker { return &ackedChecker{} }

func (*ackedChecker) Name() string { return invariants.NoAckedWriteLost }

func (c *ackedChecker) Observe(v *View, e BusEvent) {
	r, ok := e.(OpReturned)
	if !ok || r.Done.Unknown || r.Done.Request.Op.IsRead() {
		return
	}
	if _, sent := toLinOutput(r.Done); !sent {
		return // refused by the client itself: never sent
	}
	if isCrossConnect(&r.Done.Request, v.Config().Subgraphs) {
		return // its steps are logged under their own ids; the saga checker finds its answer in pre's log
	}
	sg := model.SubgraphOf(r.Done.Request.RoutingNeuron(), v.Config().Subgraphs)
	c.acked.Acked(v.NowUs(), sg, r.Done.Request.ID, r.Done.Request.Op)
}

func (c *ackedChecker) Final(v *View) []invariants.Violation {
	return c.acked.Check(v.NowUs(),
		func(sg model.SubgraphID) []model.LogEntry { return v.Committed(uint32(sg)) },
		func(sg model.SubgraphID) (uint64, bool) {
			_, applied, ok := v.PrimaryOf(sg)
			return applied, ok
		})
}

func (c *ackedChecker) Report(o *Outcome) { o.AckedWrites = c.acked.Count() }

// ---- single writer per epoch ----

// singleWriterChecker: one epoch belongs to one host (the first to open or
// append at it); no entry of a lower epoch commits after the log accepted an
// open at a higher one; along a stream's LSNs the writer epoch never goes down.
type singleWriterChecker struct {
	writers *invariants.SingleWriter
	owner   map[streamEpoch]model.HostID
}

type streamEpoch struct {
	stream uint32
	epoch  uint64
}

func newSingleWriterChecker(*View) Checker {
	return &singleWriterChecker{writers: invariants.NewSingleWriter(), owner: map[streamEpoch]model.HostID{}}
}

func (*singleWriterChecker) Name() string { return invariants.SingleWriterEpoch }

func (c *singleWriterChecker) Observe(v *View, e BusEvent) {
	switch e := e.(type) {
	case LogSent:
		// The host that opens (or first uses) an epoch owns it, and any other
		// host using it is a broken claim, even if the log would refuse it.
		req := e.Req
		key := streamEpoch{req.Stream, req.Epoch}
		if owner, ok := c.owner[key]; ok && owner != e.Host {
			v.Violate(invariants.SingleWriterEpoch, "stream %d epoch %d: %s by %s, but the epoch belongs to %s", req.Stream, req.Epoch, logOpName(req.Kind), v.HostName(e.Host), v.HostName(owner))
		} else if !ok {
			c.owner[key] = e.Host
		}
	case LogAnswered:
		if e.Req.Kind == model.LogOpen && e.Err == model.ErrNone {
			c.writers.Opened(v.NowUs(), e.Req.Stream, e.Req.Epoch)
		}
	case EntryCommitted:
		c.writers.Committed(v.NowUs(), e.Stream, e.LSN, e.Epoch, c.owner[streamEpoch{e.Stream, e.Epoch}])
	}
}

func logOpName(k model.LogOpKind) string {
	if k == model.LogOpen {
		return "open"
	}
	return "append"
}

func (c *singleWriterChecker) Final(*View) []invariants.Violation { return c.writers.Violations() }

// ---- liveness ----

// livenessChecker: LivenessMs after the last fault healed, and at the end,
// every subgraph has an operational primary.
type livenessChecker struct{}

func newLivenessChecker(*View) Checker { return livenessChecker{} }

func (livenessChecker) Name() string { return invariants.Liveness }

func (livenessChecker) Observe(v *View, e BusEvent) {
	if t, ok := e.(Tick); ok && t.Kind == TickHealed {
		checkLiveness(v, v.Config().LivenessMs)
	}
}

func (livenessChecker) Final(v *View) []invariants.Violation {
	checkLiveness(v, (v.NowUs()-v.Config().Schedule.LastEndMs()*1000)/1000)
	return nil
}

// checkLiveness records every subgraph without an operational primary.
func checkLiveness(v *View, sinceHealMs int64) {
	var unserved []model.SubgraphID
	for sg := model.SubgraphID(0); uint32(sg) < v.Config().Subgraphs; sg++ {
		if _, _, ok := v.PrimaryOf(sg); !ok {
			unserved = append(unserved, sg)
		}
	}
	if len(unserved) > 0 {
		v.Violate(invariants.Liveness, "%d subgraph(s) without an operational primary %dms after the last fault healed: %v", len(unserved), sinceHealMs, unserved)
	}
}
