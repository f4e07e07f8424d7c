// Package invariants holds the checkers that run while a simulation runs. Each
// is a small type fed by the world's hooks and asked for violations; each has a
// test that plants a violation and expects it caught.
package invariants

import (
	"fmt"
	"maps"
	"slices"

	"territory/model"
)

// Violation is one broken invariant.
type Violation struct {
	Invariant string `json:"invariant"`
	AtUs      int64  `json:"at_us"`
	Detail    string `json:"detail"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s at %.3fs: %s", v.Invariant, float64(v.AtUs)/1e6, v.Detail)
}

// Names of the invariants, as reports print them.
const (
	NoAckedWriteLost  = "no-acked-write-lost"
	StateIsFoldOfLog  = "state-is-fold-of-log"
	SingleWriterEpoch = "single-writer-epoch"
	Liveness          = "liveness"
	OneCommitted      = "one-committed-snapshot" // at most one COMMITTED per subgraph; its blob exists and checks
	BlobRetention     = "blob-retention"         // no committed blob deleted; no superseded one before its grace
	NoOrphans         = "no-orphan-blobs"        // after reconciliation quiesces, every blob has a record
	DecayBounded      = "decay-bounded"          // logged timestamps (the base of decay) are within the clock error of true time
	DegreePolicy      = "degree-policy"          // degrees stay within the policy, and a connect is rejected exactly when it must be
	// The handshake saga's promises (sim/saga_checker.go).
	SagaTerminates = "saga-terminates" // every saga, unlink and in-slot is settled within a bound once faults heal
	SagaAtomic     = "saga-atomic"     // pre holds a cross synapse exactly when post holds its in-slot; a client's answer is pre's logged outcome
	SagaNoLeak     = "saga-no-leak"    // every degree is explained by synapses, reservations and in-slots
	SagaCompensate = "saga-compensate" // a saga is compensated only if it did not commit, and decided once
	SagaTimeout    = "saga-timeout"    // a saga times out only when a fault was active around it
	// Phased territory migration (sim/migration_checker.go).
	ExactlyOnceApply     = "exactly-once-apply"    // within one incarnation of a subgraph on a host, every LSN is applied once, in order, none skipped
	MigrationTransitions = "migration-transitions" // a migration record takes only the seed's transitions, epoch bumped only by a retry
	MigrationTerminates  = "migration-terminates"  // once faults heal, no migration record stays unchanged past a bound (every one ends COMMITTED, or FAILED and retried or dropped)
	AtMostOnePrimary     = "at-most-one-primary"   // after a route flip, T_src appends and acknowledges nothing of the subgraph at its old epoch
	// The supernode path: log egress and proxies (sim/egress_checker.go).
	ProxyPrefix    = "proxy-prefix"    // a proxy's replica is the fold of a prefix of its subgraph's committed log, by digest
	ProxyMonotonic = "proxy-monotonic" // a proxy's replica never goes back to a lower LSN within one incarnation
	EgressNoGap    = "egress-no-gap"   // the egress stream carries each published subgraph's log from LSN 1 without a gap; a duplicate is a byte-identical redelivery
	EgressLag      = "egress-lag"      // once faults heal, the stream and every proxy hold what was committed more than the lag bound ago
	ProxyAdjacent  = "proxy-adjacent"  // a running proxy keeps no replica of a subgraph its territory has not been adjacent to for longer than the lag bound
	// Stale reads (sim/stale_checker.go).
	StaleReadPrefix    = "stale-read-prefix"    // a stale read returns what the fold of its subgraph's log returns at the LSN it names, no newer than the commit index when it returned
	StaleReadMonotonic = "stale-read-monotonic" // one client's stale reads of a subgraph never go back to a lower LSN
)

// ---- single writer per epoch ----

// SingleWriter checks that at most one writer epoch appends to a stream at a
// time: once the log accepted an open at an epoch, no entry of a lower epoch
// commits, whenever it commits (before the new writer's first commit too);
// along a stream's LSNs the writer epoch never goes down; and one epoch
// belongs to one host.
type SingleWriter struct {
	last       map[uint32]uint64 // stream -> highest epoch that committed an entry
	opened     map[uint32]opened // stream -> highest epoch the log accepted an open at
	owner      map[writerKey]model.HostID
	violations []Violation
}

type opened struct {
	epoch uint64
	atUs  int64
}

type writerKey struct {
	stream uint32
	epoch  uint64
}

// NewSingleWriter returns an empty checker.
func NewSingleWriter() *SingleWriter {
	return &SingleWriter{last: map[uint32]uint64{}, opened: map[uint32]opened{}, owner: map[writerKey]model.HostID{}}
}

// Opened records that the log accepted an open of stream at epoch: from now
// on every lower epoch is fenced.
func (c *SingleWriter) Opened(atUs int64, stream uint32, epoch uint64) {
	if epoch > c.opened[stream].epoch {
		c.opened[stream] = opened{epoch, atUs}
	}
}

// Committed records that host's append at epoch committed at lsn.
func (c *SingleWriter) Committed(atUs int64, stream uint32, lsn, epoch uint64, host model.HostID) {
	if o := c.opened[stream]; epoch < o.epoch {
		c.violations = append(c.violations, Violation{SingleWriterEpoch, atUs,
			fmt.Sprintf("stream %d: LSN %d committed by epoch %d after the log accepted an open at epoch %d (at %dus)", stream, lsn, epoch, o.epoch, o.atUs)})
	}
	if prev := c.last[stream]; epoch < prev {
		c.violations = append(c.violations, Violation{SingleWriterEpoch, atUs,
			fmt.Sprintf("stream %d: LSN %d committed by epoch %d after epoch %d had appended", stream, lsn, epoch, prev)})
	} else {
		c.last[stream] = epoch
	}
	k := writerKey{stream, epoch}
	if h, ok := c.owner[k]; ok && h != host {
		c.violations = append(c.violations, Violation{SingleWriterEpoch, atUs,
			fmt.Sprintf("stream %d epoch %d: appends from hosts %d and %d", stream, epoch, h, host)})
	}
	c.owner[k] = host
}

// Violations found so far.
func (c *SingleWriter) Violations() []Violation { return c.violations }

// ---- acknowledged writes ----

// AckedWrites checks that every write a client saw acknowledged (any final
// answer: the territory answers only after the event committed) is in its
// subgraph's committed log, and that the subgraph's primary has applied it.
type AckedWrites struct {
	acked []ack
}

type ack struct {
	atUs int64
	sg   model.SubgraphID
	id   model.EventUUID
	op   model.OpKind
}

// Acked records an acknowledged write.
func (c *AckedWrites) Acked(atUs int64, sg model.SubgraphID, id model.EventUUID, op model.OpKind) {
	c.acked = append(c.acked, ack{atUs, sg, id, op})
}

// Count is the number of acknowledged writes recorded.
func (c *AckedWrites) Count() int { return len(c.acked) }

// Check looks every acknowledged write up in the committed logs. appliedLSN
// reports the LSN the subgraph's current primary applied (ok=false: none
// operational; then only the log is checked).
func (c *AckedWrites) Check(atUs int64, log func(model.SubgraphID) []model.LogEntry, appliedLSN func(model.SubgraphID) (uint64, bool)) []Violation {
	bySG := map[model.SubgraphID]map[model.EventUUID]uint64{}
	var out []Violation
	for _, a := range c.acked {
		idx := bySG[a.sg]
		if idx == nil {
			idx = map[model.EventUUID]uint64{}
			for _, e := range log(a.sg) {
				ev, err := model.DecodeEvent(e.Data)
				if err != nil {
					out = append(out, Violation{NoAckedWriteLost, atUs, fmt.Sprintf("subgraph %d: committed entry %d does not decode: %v", a.sg, e.LSN, err)})
					continue
				}
				if _, dup := idx[ev.UUID]; !dup {
					idx[ev.UUID] = e.LSN
				}
			}
			bySG[a.sg] = idx
		}
		lsn, ok := idx[a.id]
		if !ok {
			out = append(out, Violation{NoAckedWriteLost, atUs, fmt.Sprintf("subgraph %d: %s %s acknowledged at %dus is not in the committed log", a.sg, a.op, a.id, a.atUs)})
			continue
		}
		if applied, ok := appliedLSN(a.sg); ok && applied < lsn {
			out = append(out, Violation{NoAckedWriteLost, atUs, fmt.Sprintf("subgraph %d: %s %s committed at LSN %d but the primary applied only up to %d", a.sg, a.op, a.id, lsn, applied)})
		}
	}
	return out
}

// ---- state equals the fold of the log ----

// Folds keeps, per subgraph, the fold of its committed log, fed entry by entry
// from the log's commit hook, and compares live states with it.
type Folds struct {
	count  uint32
	policy model.Policy
	shadow map[model.SubgraphID]*model.SubgraphState
	errs   []Violation
}

// NewFolds returns a checker for a cluster of count subgraphs.
func NewFolds(count uint32, policy model.Policy) *Folds {
	return &Folds{count: count, policy: policy, shadow: map[model.SubgraphID]*model.SubgraphState{}}
}

// Committed folds one committed entry and returns the event, its result and
// whether it changed the state (false for a duplicate or an undecodable entry).
func (f *Folds) Committed(atUs int64, sg model.SubgraphID, e model.LogEntry) (model.Event, model.Result, bool) {
	s := f.state(sg)
	ev, err := model.DecodeEvent(e.Data)
	switch {
	case err != nil:
		f.errs = append(f.errs, Violation{StateIsFoldOfLog, atUs, fmt.Sprintf("subgraph %d: committed entry %d: %v", sg, e.LSN, err)})
	case e.LSN != s.AppliedLSN+1:
		f.errs = append(f.errs, Violation{StateIsFoldOfLog, atUs, fmt.Sprintf("subgraph %d: log committed LSN %d after %d", sg, e.LSN, s.AppliedLSN)})
	default:
		want, check := expectConnect(s, &ev)
		if !check {
			want, check = expectSaga(s, &ev)
		}
		res, applied := s.Apply(&ev)
		if check && applied && (res.Status != want.Status || res.Reason != want.Reason) {
			f.errs = append(f.errs, Violation{DegreePolicy, atUs, fmt.Sprintf("subgraph %d LSN %d: connect n%d->n%d answered %s %s, the policy says %s %s",
				sg, ev.LSN, ev.Pre, ev.Post, res.Status, res.Reason, want.Status, want.Reason)})
		}
		if applied && (ev.Type == model.EvConnect || ev.Type == model.EvSagaReserve || ev.Type == model.EvSagaAccept) {
			for _, id := range []model.NeuronID{ev.Pre, ev.Post} {
				if n, ok := s.Neuron(id); ok && (n.OutDegree > s.Policy.MaxOutDegree || n.InDegree > s.Policy.MaxInDegree) {
					f.errs = append(f.errs, Violation{DegreePolicy, atUs, fmt.Sprintf("subgraph %d LSN %d: n%d has degree in %d out %d, policy allows %d/%d",
						sg, ev.LSN, id, n.InDegree, n.OutDegree, s.Policy.MaxInDegree, s.Policy.MaxOutDegree)})
				}
			}
		}
		return ev, res, applied
	}
	return ev, model.Result{}, false
}

// expectConnect is an independent statement of the connect rule, to check the
// fold's answer against (the fold is the code under test): check is false for
// other events and for a duplicate the fold will not apply.
func expectConnect(s *model.SubgraphState, ev *model.Event) (model.Result, bool) {
	if ev.Type != model.EvConnect || ev.LSN != s.AppliedLSN+1 {
		return model.Result{}, false
	}
	if _, dup := s.Deduped(ev.UUID); dup {
		return model.Result{}, false
	}
	rejected := func(r model.Reason) (model.Result, bool) {
		return model.Result{Status: model.StatusRejected, Reason: r}, true
	}
	if model.SubgraphOf(ev.Post, s.Count) != s.ID {
		return rejected(model.ReasonCrossSubgraph)
	}
	if _, exists := s.Synapse(model.SynapseKey{Pre: ev.Pre, Post: ev.Post}); exists {
		return model.Result{Status: model.StatusAlreadyExists}, true
	}
	pre, okPre := s.Neuron(ev.Pre)
	post, okPost := s.Neuron(ev.Post)
	switch {
	case !okPre || !okPost:
		return rejected(model.ReasonNoSuchNeuron)
	case pre.OutDegree >= s.Policy.MaxOutDegree:
		return rejected(model.ReasonMaxOutDegree)
	case post.InDegree >= s.Policy.MaxInDegree:
		return rejected(model.ReasonMaxInDegree)
	}
	return model.Result{Status: model.StatusOK}, true
}

// expectSaga states the Reserve and Accept rules independently: the
// degree limits count reservations and in-slots, which the fold's own
// degrees must then agree with (saga-no-leak checks that they do).
func expectSaga(s *model.SubgraphState, ev *model.Event) (model.Result, bool) {
	if (ev.Type != model.EvSagaReserve && ev.Type != model.EvSagaAccept) || ev.LSN != s.AppliedLSN+1 {
		return model.Result{}, false
	}
	if _, dup := s.Deduped(ev.UUID); dup {
		return model.Result{}, false
	}
	rejected := func(r model.Reason) (model.Result, bool) {
		return model.Result{Status: model.StatusRejected, Reason: r}, true
	}
	k := model.SynapseKey{Pre: ev.Pre, Post: ev.Post}
	if ev.Type == model.EvSagaAccept {
		post, ok := s.Neuron(ev.Post)
		switch {
		case !ok || model.SubgraphOf(ev.Post, s.Count) != s.ID:
			return rejected(model.ReasonNoSuchNeuron)
		case post.InDegree >= s.Policy.MaxInDegree:
			return rejected(model.ReasonMaxInDegree)
		}
		return model.Result{Status: model.StatusOK}, true
	}
	if _, exists := s.Synapse(k); exists {
		return model.Result{Status: model.StatusAlreadyExists}, true
	}
	if _, busy := s.ReservedBy(k); busy {
		return rejected(model.ReasonSagaInProgress)
	}
	if _, _, open := s.OpenSaga(ev.Saga.ID); open {
		return rejected(model.ReasonSagaInProgress) // the client's id already has a saga in flight
	}
	pre, ok := s.Neuron(ev.Pre)
	switch {
	case !ok || model.SubgraphOf(ev.Pre, s.Count) != s.ID || model.SubgraphOf(ev.Post, s.Count) == s.ID:
		return rejected(model.ReasonNoSuchNeuron)
	case pre.OutDegree >= s.Policy.MaxOutDegree:
		return rejected(model.ReasonMaxOutDegree)
	}
	return model.Result{Status: model.StatusOK}, true
}

// State is the fold of sg's committed log (read-only for the caller).
func (f *Folds) State(sg model.SubgraphID) *model.SubgraphState { return f.state(sg) }

func (f *Folds) state(sg model.SubgraphID) *model.SubgraphState {
	s := f.shadow[sg]
	if s == nil {
		s = model.NewSubgraphState(sg, f.count, f.policy)
		f.shadow[sg] = s
	}
	return s
}

// LastHeartbeatMs is the last heartbeat the fold of sg's log holds.
func (f *Folds) LastHeartbeatMs(sg model.SubgraphID) int64 { return f.state(sg).LastHeartbeatMs }

// Compare checks a live state against the fold, when both stand at the same
// LSN (compared reports whether they did). A live state ahead of the log is a
// violation: it applied something that is not committed.
func (f *Folds) Compare(atUs int64, who string, live *model.SubgraphState) (v *Violation, compared bool) {
	s := f.shadow[live.ID]
	var lsn uint64
	if s != nil {
		lsn = s.AppliedLSN
	}
	switch {
	case live.AppliedLSN > lsn:
		return &Violation{StateIsFoldOfLog, atUs, fmt.Sprintf("%s subgraph %d: applied LSN %d beyond the committed log's %d", who, live.ID, live.AppliedLSN, lsn)}, true
	case live.AppliedLSN < lsn:
		return nil, false
	}
	want := model.NewSubgraphState(live.ID, f.count, f.policy).Digest()
	if s != nil {
		want = s.Digest()
	}
	if got := live.Digest(); got != want {
		return &Violation{StateIsFoldOfLog, atUs, fmt.Sprintf("%s subgraph %d at LSN %d: state digest %016x, fold of the log %016x", who, live.ID, lsn, got, want)}, true
	}
	return nil, true
}

// CheckDigests is the end-of-run cross-check of the incremental digests that
// Compare relies on: every fold's kept digest sums are recomputed from its
// maps, in subgraph order.
func (f *Folds) CheckDigests(atUs int64) {
	for _, sg := range slices.Sorted(maps.Keys(f.shadow)) {
		if err := f.shadow[sg].CheckDigest(); err != nil {
			f.errs = append(f.errs, Violation{StateIsFoldOfLog, atUs, "fold of the log: " + err.Error()})
		}
	}
}

// CheckDigest is CheckDigests for one live state.
func CheckDigest(atUs int64, who string, live *model.SubgraphState) *Violation {
	if err := live.CheckDigest(); err != nil {
		return &Violation{StateIsFoldOfLog, atUs, who + ": " + err.Error()}
	}
	return nil
}

// Violations found while folding.
func (f *Folds) Violations() []Violation { return f.errs }

// Sort orders violations by time then invariant, for stable reports.
func Sort(vs []Violation) {
	slices.SortStableFunc(vs, func(a, b Violation) int {
		if a.AtUs != b.AtUs {
			if a.AtUs < b.AtUs {
				return -1
			}
			return 1
		}
		if a.Invariant < b.Invariant {
			return -1
		}
		if a.Invariant > b.Invariant {
			return 1
		}
		return 0
	})
}
