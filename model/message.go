package model

import "fmt"

// OpKind is a client operation.
type OpKind uint8

const (
	OpCreateNeuron OpKind = iota + 1
	OpStimulate
	OpReadNeuron
	OpConnect
	OpAdjustWeight
	OpPrune
	OpReadSynapse
)

var opNames = [...]string{"op?", "create-neuron", "stimulate", "read-neuron", "connect", "adjust-weight", "prune", "read-synapse"}

func (k OpKind) String() string {
	if int(k) < len(opNames) {
		return opNames[k]
	}
	return "op?"
}

// IsRead reports operations that change nothing.
func (k OpKind) IsRead() bool { return k == OpReadNeuron || k == OpReadSynapse }

// Valid reports a known operation.
func (k OpKind) Valid() bool { return k >= OpCreateNeuron && k <= OpReadSynapse }

// Status is the outcome of a client operation.
type Status uint8

const (
	StatusOK Status = iota
	StatusNotFound
	StatusAlreadyExists
	// StatusRejected: a policy refused the write (Reason says which).
	StatusRejected
	// StatusBadRequest: the request itself is malformed.
	StatusBadRequest
	// StatusWrongTerritory: this territory is not the subgraph's primary; the
	// write was not applied here. Retry after refreshing routes.
	StatusWrongTerritory
	// StatusUnavailable: the primary is recovering or lost its log; retry.
	StatusUnavailable
	// StatusBusy: the subgraph's queue is full; retry after a backoff.
	StatusBusy
)

var statusNames = [...]string{"ok", "not-found", "already-exists", "rejected", "bad-request", "wrong-territory", "unavailable", "busy"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "status?"
}

// Final reports a status that ends an operation. The others ask the client to
// retry, with the same event_uuid.
func (s Status) Final() bool { return s <= StatusBadRequest }

// Reason qualifies a rejection (the mandate.fulfillment.failed reason codes).
type Reason uint8

const (
	ReasonNone Reason = iota
	ReasonMaxOutDegree
	ReasonMaxInDegree
	ReasonNoSuchNeuron
	// ReasonCrossSubgraph: logs written before the handshake saga refused
	// every cross-subgraph connect; their events still fold to it.
	ReasonCrossSubgraph
	// ReasonSagaInProgress: another connect of the same synapse is mid-saga.
	ReasonSagaInProgress
	// ReasonSagaTimeout: the saga's peer did not answer within the saga
	// timeout, and pre compensated: the synapse was not made.
	ReasonSagaTimeout
)

var reasonNames = [...]string{"", "MAX_OUT_DEGREE_POLICY_EXCEEDED", "MAX_IN_DEGREE_POLICY_EXCEEDED", "NO_SUCH_NEURON", "CROSS_SUBGRAPH_UNSUPPORTED", "SAGA_IN_PROGRESS", "SAGA_TIMEOUT"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "REASON?"
}

// Request is a client operation. Value is the stimulate delta, the connect
// weight, or the adjust-weight delta.
//
// Stale marks a read that may be stale (stale_read.go): it is answered from a
// committed state without the read barrier, by a proxy's replica or the
// primary, and only from a state at or past MinLSN of its subgraph (the
// client's floor, so that its stale reads never go backwards).
type Request struct {
	ID     EventUUID
	Op     OpKind
	Neuron NeuronID
	Pre    NeuronID
	Post   NeuronID
	Value  int64
	Stale  bool
	MinLSN uint64
}

// Validate rejects malformed requests before they reach a subgraph.
func (r *Request) Validate() error {
	if r.ID.IsZero() {
		return fmt.Errorf("request %s: zero event_uuid", r.Op)
	}
	if !r.Op.Valid() {
		return fmt.Errorf("request %s: unknown operation %d", r.ID, r.Op)
	}
	if (r.Stale || r.MinLSN != 0) && !r.Op.IsRead() {
		return fmt.Errorf("request %s: %s cannot be a stale read", r.ID, r.Op)
	}
	return nil
}

// RoutingNeuron is the neuron whose subgraph owns the request: the neuron
// itself, or the pre side of a synapse.
func (r *Request) RoutingNeuron() NeuronID {
	switch r.Op {
	case OpCreateNeuron, OpStimulate, OpReadNeuron:
		return r.Neuron
	}
	return r.Pre
}

func (r *Request) String() string {
	switch r.Op {
	case OpCreateNeuron, OpStimulate, OpReadNeuron:
		return fmt.Sprintf("%s(n%d, %d)", r.Op, r.Neuron, r.Value)
	}
	return fmt.Sprintf("%s(n%d->n%d, %d)", r.Op, r.Pre, r.Post, r.Value)
}

// Result is what an operation returned. Value is the new potential or weight
// (stimulate, adjust) or the read value. A read's answer says which LSN of
// its subgraph the state it read reflects (LSN), and a stale read whether a
// proxy's replica answered it (Proxy) rather than the primary. InDegree and
// OutDegree are set by a read-neuron only: the degrees as the policy counts
// them (committed synapses, plus the slots sagas in flight hold). Writes leave
// all four zero (their results are kept in the dedup table, which has none).
type Result struct {
	Status    Status
	Reason    Reason
	Value     int64
	Exists    bool
	LSN       uint64
	Proxy     bool
	InDegree  uint32
	OutDegree uint32
}

// Reply answers a Request.
type Reply struct {
	ID     EventUUID
	Result Result
}

// Message is what hosts exchange over the transport. Exactly one field is set.
type Message struct {
	Request        *Request
	Reply          *Reply
	Recovered      *Recovered
	CommitRecovery *CommitRecovery
	Saga           *SagaMsg
	Migration      *MigMsg
}

// SagaMsgKind is a message of the handshake saga (saga_component.go).
type SagaMsgKind uint8

const (
	// SagaAccept: pre asks post to take an in-slot for the synapse.
	SagaAccept SagaMsgKind = iota + 1
	// SagaAcceptReply: post's logged answer (ok, or rejected with a reason),
	// or a non-final status (wrong territory, unavailable): pre retries.
	SagaAcceptReply
	// SagaSettle: pre's decision (Release false: committed; true: released),
	// or with Unlink the release of a pruned synapse, which post acknowledges.
	SagaSettle
	// SagaSettled: post released the slot of an unlink.
	SagaSettled
	// SagaQuery: post asks pre what became of a saga it holds a slot for.
	SagaQuery
	// SagaQueryReply: pre's answer (Outcome).
	SagaQueryReply
)

// SagaOutcome is what pre's log says of a saga.
type SagaOutcome uint8

const (
	SagaPending SagaOutcome = iota + 1
	SagaCommitted
	SagaReleased // compensated, pruned, or never reserved
)

// SagaMsg is one message of the handshake saga. ID is the saga's id (the
// client's connect event_uuid).
type SagaMsg struct {
	Kind      SagaMsgKind
	ID        EventUUID
	Pre, Post NeuronID
	Weight    int64
	Status    Status // SagaAcceptReply
	Reason    Reason // SagaAcceptReply
	Release   bool   // SagaSettle
	Unlink    bool   // SagaSettle
	Outcome   SagaOutcome
}

// Mandate reason codes of mandate.fulfillment.failed.
const (
	MandatePeerRejection = "PEER_REJECTION"
	MandateTimeout       = "TIMEOUT"
)

// FactMandateFailed is a mandate.fulfillment.failed event: pre's log
// compensated a saga. EventID is fixed per saga, so a report repeated after
// a re-claim is recognisable as the same event.
type FactMandateFailed struct {
	EventID         EventUUID
	SourceTerritory HostID
	Subgraph        SubgraphID
	Saga            EventUUID // the connect's event_uuid (the client's id of the synapse, not the saga's instance id)
	Pre, Post       NeuronID
	ReasonCode      string
	Reason          Reason
	Details         string
}

func (FactMandateFailed) isFact() {}

// Recovered: a territory became the operational primary of a subgraph by a
// claim that replaced an earlier epoch (a restart, a host loss, a re-claim).
type Recovered struct {
	Territory HostID
	Subgraph  SubgraphID
	Epoch     uint64
}

// CommitRecovery: the control plane asks the primary to commit the
// TerritoryRecovered event of its epoch, stamped with the control plane's clock.
type CommitRecovery struct {
	Subgraph    SubgraphID
	Epoch       uint64
	TimestampMs int64
}

// Fact is a protocol fact reported through an Observe effect.
type Fact interface{ isFact() }

// FactCommitted: a territory applied an event it appended, after the log
// reported it committed.
type FactCommitted struct {
	Territory HostID
	Subgraph  SubgraphID
	LSN       uint64
	UUID      EventUUID
	Epoch     uint64
	Type      EventType
	Result    Result
}

// FactSnapshotStarted: a territory started a snapshot attempt (it records
// UPLOADING next); the attempt ends with FactSnapshotCommitted or is abandoned.
type FactSnapshotStarted struct {
	Territory HostID
	Subgraph  SubgraphID
	UUID      string
	LSN       uint64
}

// FactSnapshotCommitted: a territory committed a snapshot (and superseded
// the previous one, if Superseded is set).
type FactSnapshotCommitted struct {
	Territory  HostID
	Subgraph   SubgraphID
	UUID       string
	LSN        uint64
	Superseded string
}

// FactSnapshotLoaded: a recovering territory loaded a snapshot (UUID empty:
// none was good, it replays the whole log).
type FactSnapshotLoaded struct {
	Territory HostID
	Subgraph  SubgraphID
	UUID      string
	LSN       uint64
	Rejected  int  // snapshots skipped because their blob was missing or corrupt
	FromCache bool // read from the local disk cache, not the object store
}

// FactReplayed: a territory applied the log entries FromLSN..ToLSN of a
// subgraph, read back from the log during a claim's replay (the catch-up of
// a recovery, and of a migration's destination). With FactCommitted it is
// every application a host makes, which exactly-once-apply counts.
type FactReplayed struct {
	Territory      HostID
	Subgraph       SubgraphID
	FromLSN, ToLSN uint64
}

func (FactReplayed) isFact() {}

// FactOperational: a territory became the operational primary of a subgraph.
type FactOperational struct {
	Territory  HostID
	Subgraph   SubgraphID
	Epoch      uint64
	AppliedLSN uint64
}

// FactAdopted: a territory started taking over a subgraph (its recovery
// starts here: claim, load, open, replay).
type FactAdopted struct {
	Territory HostID
	Subgraph  SubgraphID
}

// FactSteppedDown: a territory stopped serving a subgraph. For the route
// reasons, Primary and RouteEpoch are what the route said.
type FactSteppedDown struct {
	Territory  HostID
	Subgraph   SubgraphID
	Epoch      uint64
	Reason     StepDownReason
	Barrier    bool // the route was seen by a read barrier (not a poll or a claim)
	Primary    HostID
	RouteEpoch uint64
}

// StepDownReason says why a territory stopped serving a subgraph.
type StepDownReason uint8

const (
	// StepDownFenced: a writer at a higher epoch opened the subgraph's log.
	StepDownFenced StepDownReason = iota + 1
	// StepDownRouteMoved: the route names another primary or a newer epoch.
	StepDownRouteMoved
	// StepDownRouteDeleted: the route is gone.
	StepDownRouteDeleted
)

var stepDownNames = [...]string{"step-down?", "fenced", "route-moved", "route-deleted"}

func (r StepDownReason) String() string {
	if int(r) < len(stepDownNames) {
		return stepDownNames[r]
	}
	return "step-down?"
}

// Why describes the step-down in words, for logs.
func (f FactSteppedDown) Why() string {
	var why string
	switch f.Reason {
	case StepDownFenced:
		why = "fenced by a newer writer"
	case StepDownRouteDeleted:
		why = "route deleted"
	case StepDownRouteMoved:
		why = fmt.Sprintf("route names territory %d at epoch %d", f.Primary, f.RouteEpoch)
	default:
		why = f.Reason.String()
	}
	if f.Barrier {
		return "read barrier: " + why
	}
	return why
}

// FactOpDone: a client finished an operation. Unknown means the client gave up
// without a final answer: the write may or may not have happened.
type FactOpDone struct {
	Client  HostID
	Request Request
	Result  Result
	Unknown bool
	Tries   int
}

func (FactCommitted) isFact()         {}
func (FactOperational) isFact()       {}
func (FactSteppedDown) isFact()       {}
func (FactOpDone) isFact()            {}
func (FactSnapshotCommitted) isFact() {}
func (FactSnapshotLoaded) isFact()    {}

func (FactAdopted) isFact() {}

func (FactSnapshotStarted) isFact() {}
