package sim

import (
	"fmt"
	"slices"

	"territory/faults"
	"territory/model"
	"territory/sim/invariants"
)

// The checker bus.
//
// The world runs hosts and services and says what happened; checkers judge.
// Every fact the world can see is published as one BusEvent, synchronously, to
// every registered Checker in registration order:
//
//   - OpCalled, OpReturned: a client operation was submitted / finished, with
//     its request and its final (or unknown) answer;
//   - ReplySeen: a territory's reply reached a client (busy and unavailable
//     ones included, which the client retries);
//   - FactObserved: a protocol fact a host reported (model.Fact, other than
//     FactOpDone, which is OpReturned);
//   - CoordApplied: the coordination store applied a request (get, put,
//     transaction...), with the request and its result;
//   - LogSent: a host sent an append or an open to the log;
//   - LogAnswered: the log answered a request (before the answer travels back;
//     a lost acknowledgement is published all the same, with Lost set);
//   - EntryCommitted: the log committed an entry (stream, LSN, writer epoch,
//     data, the host that first sent it and when);
//   - EntryFolded: the reference fold applied a committed entry (published
//     by the fold checker while it handles EntryCommitted, for checkers that
//     reason about decoded events and their results);
//   - BlobApplied, BlobCorrupted: the object store applied a put / get /
//     delete / list, or a fault damaged a stored blob;
//   - HostChanged: a host booted, crashed, was lost, paused or resumed (crash,
//     loss and pause are published before the host stops, so the view still
//     shows what it served);
//   - FaultChanged: a scheduled fault started or ended;
//   - Tick: a periodic check (every Config.CheckEvery while the workload runs)
//     or the healed check (Config.LivenessMs after the last fault ended).
//
// A checker reads the world through a View (read-only: the committed log per
// stream, the coordination store, the object store, the operational primary of
// a subgraph, host states, the configuration, virtual time), reports a
// violation found while the run goes with View.Violate, and returns the
// violations of the final state from Final. A checker that also has figures
// for the report implements Reporter.
//
// Adding a protocol adds its checkers without editing the world: append a
// constructor to checkerRegistry (checkers.go) or call World.AddChecker
// before Run. A checker that depends on another's derived state (the fold)
// subscribes to the events that one publishes (EntryFolded) and is registered
// after it.
type Checker interface {
	// Name is the checker's name (the invariant names it reports may differ:
	// one checker can guard several invariants).
	Name() string
	// Observe sees one event, at the virtual instant it happened.
	Observe(v *View, e BusEvent)
	// Final judges the final state; the world has stopped.
	Final(v *View) []invariants.Violation
}

// Reporter is a checker with figures for the run's Outcome.
type Reporter interface {
	Report(o *Outcome)
}

// BusEvent is one thing that happened in the world.
type BusEvent interface{ isBusEvent() }

// OpCalled: a client submitted an operation.
type OpCalled struct {
	Client      model.HostID
	ClientIndex int
	Req         model.Request
}

// OpReturned: a client finished an operation (Done.Unknown: without a final answer).
type OpReturned struct {
	Client      model.HostID
	ClientIndex int
	Done        model.FactOpDone
}

// ReplySeen: a reply from a territory was delivered to a client.
type ReplySeen struct {
	Client, From model.HostID
	Reply        model.Reply
}

// FactObserved: a host reported a protocol fact.
type FactObserved struct {
	Host model.HostID
	Fact model.Fact
}

// CoordApplied: the coordination store applied a request.
type CoordApplied struct {
	Caller model.HostID
	Req    model.CoordRequest
	Resp   model.CoordResponse
	Err    model.ServiceErr
}

// LogSent: a host sent an append or an open to the log.
type LogSent struct {
	Host model.HostID
	Req  model.LogRequest
}

// LogAnswered: the log answered a request from Host. Lost: the answer is
// dropped on the way back (an ambiguous append).
type LogAnswered struct {
	Host model.HostID
	Req  model.LogRequest
	Resp model.LogResponse
	Err  model.ServiceErr
	Lost bool
}

// EntryCommitted: the log committed an entry. Writer is the host that first
// sent it at FirstSentUs (0, 0: unknown).
type EntryCommitted struct {
	Stream      uint32
	LSN, Epoch  uint64
	Data        []byte // the log's copy: read-only
	Writer      model.HostID
	FirstSentUs int64
}

// EntryFolded: the reference fold applied a committed entry of Subgraph.
// Applied is false for a duplicate or an entry that does not decode.
type EntryFolded struct {
	Entry           EntryCommitted
	Subgraph        model.SubgraphID
	Event           model.Event
	Result          model.Result
	Applied         bool
	LastHeartbeatMs int64 // the fold's last heartbeat after this entry
	// Fold is the reference fold of Subgraph's log after this entry; shared,
	// read it during the event only, never change it.
	Fold *model.SubgraphState
}

// BlobApplied: the object store applied a request.
type BlobApplied struct {
	Req  model.BlobRequest
	Resp model.BlobResponse
	Err  model.ServiceErr
}

// BlobCorrupted: a fault damaged the stored blob at Key.
type BlobCorrupted struct{ Key string }

// HostChange is what happened to a host.
type HostChange uint8

const (
	HostBooted HostChange = iota + 1
	HostCrashed
	HostLost
	HostPaused
	HostResumed
)

// HostChanged: a host's life changed.
type HostChanged struct {
	Host   model.HostID
	Change HostChange
}

// FaultChanged: a fault of the schedule started (Started) or ended.
type FaultChanged struct {
	Fault   faults.Fault
	Started bool
}

// TickKind says why a Tick fired.
type TickKind uint8

const (
	TickPeriodic TickKind = iota + 1 // every CheckEvery while the workload runs
	TickHealed                       // LivenessMs after the last fault ended
)

// Tick: time to check.
type Tick struct{ Kind TickKind }

func (OpCalled) isBusEvent()       {}
func (OpReturned) isBusEvent()     {}
func (ReplySeen) isBusEvent()      {}
func (FactObserved) isBusEvent()   {}
func (CoordApplied) isBusEvent()   {}
func (LogSent) isBusEvent()        {}
func (LogAnswered) isBusEvent()    {}
func (EntryCommitted) isBusEvent() {}
func (EntryFolded) isBusEvent()    {}
func (BlobApplied) isBusEvent()    {}
func (BlobCorrupted) isBusEvent()  {}
func (HostChanged) isBusEvent()    {}
func (FaultChanged) isBusEvent()   {}
func (Tick) isBusEvent()           {}

// AddChecker registers a checker; it sees every event from now on. Call it
// before Run.
func (w *World) AddChecker(c Checker) { w.checkers = append(w.checkers, c) }

// publish hands one event to every checker, in registration order.
func (w *World) publish(e BusEvent) {
	for _, c := range w.checkers {
		c.Observe(w.view, e)
	}
}

// View is a checker's read-only window on the world. Slices and states it
// returns are the world's own: read them, never change them.
type View struct{ w *World }

// NowUs is the virtual time.
func (v *View) NowUs() int64 { return v.w.k.NowUs() }

// Config is the run's configuration.
func (v *View) Config() *Config { return &v.w.cfg }

// Publish hands a derived event to every checker (see EntryFolded).
func (v *View) Publish(e BusEvent) { v.w.publish(e) }

// Violate records a violation found now.
func (v *View) Violate(name, format string, args ...any) {
	v.Report(invariants.Violation{Invariant: name, AtUs: v.w.k.NowUs(), Detail: fmt.Sprintf(format, args...)})
}

// Report records a violation as built by a checker.
func (v *View) Report(vi invariants.Violation) { v.w.violations = append(v.w.violations, vi) }

// Committed is the committed log of a stream, LSN i at index i-1.
func (v *View) Committed(stream uint32) []model.LogEntry { return v.w.log.Committed(stream) }

// Streams lists the log streams used so far, sorted.
func (v *View) Streams() []uint32 { return v.w.log.Streams() }

// CoordPeek reads one key of the coordination store, outside any protocol.
func (v *View) CoordPeek(key string) (model.KV, bool) { return v.w.coord.Peek(key) }

// CoordPeekPrefix reads every key under prefix, sorted.
func (v *View) CoordPeekPrefix(prefix string) []model.KV { return v.w.coord.PeekPrefix(prefix) }

// Blob is the stored object at key.
func (v *View) Blob(key string) ([]byte, bool) { return v.w.blob.Object(key) }

// BlobKeys lists the stored objects under prefix, sorted.
func (v *View) BlobKeys(prefix string) []string { return v.w.blob.Keys(prefix) }

// HostName is a host's name (t1, c2, m1, coord...).
func (v *View) HostName(id model.HostID) string {
	if int(id) <= 0 || int(id) >= len(v.w.hosts) {
		return fmt.Sprintf("host%d", id)
	}
	return v.w.hosts[id].name
}

// Territories lists the territory hosts; Clients the client hosts.
func (v *View) Territories() []model.HostID { return v.w.territoryIDs() }
func (v *View) Clients() []model.HostID {
	ids := make([]model.HostID, len(v.w.clients))
	for i, h := range v.w.clients {
		ids[i] = h.id
	}
	return ids
}

// Running reports a host that is up and not paused.
func (v *View) Running(id model.HostID) bool {
	h := v.w.hosts[id]
	return h.up && !h.paused
}

// Operational lists the subgraphs a territory serves as operational primary
// (none when it is down or not a territory).
func (v *View) Operational(id model.HostID) []model.SubgraphID {
	h := v.w.hosts[id]
	if !h.up || h.territory == nil {
		return nil
	}
	return h.territory.Operational()
}

// State is a territory's state of a subgraph and its writer epoch (nil: none).
func (v *View) State(id model.HostID, sg model.SubgraphID) (*model.SubgraphState, uint64) {
	h := v.w.hosts[id]
	if !h.up || h.territory == nil {
		return nil, 0
	}
	return h.territory.State(sg)
}

// PrimaryOf is the territory serving sg as operational primary at the route's
// epoch, and the LSN it applied (ok=false: none).
func (v *View) PrimaryOf(sg model.SubgraphID) (id model.HostID, appliedLSN uint64, ok bool) {
	kv, found := v.w.coord.Peek(model.RouteKey(sg))
	if !found {
		return 0, 0, false
	}
	r, err := model.ParseRoute(kv)
	if err != nil || int(r.Primary) <= 0 || int(r.Primary) >= len(v.w.hosts) {
		return 0, 0, false
	}
	st, epoch := v.State(r.Primary, sg)
	if st == nil || epoch != r.Epoch || !slices.Contains(v.Operational(r.Primary), sg) {
		return 0, 0, false
	}
	return r.Primary, st.AppliedLSN, true
}
