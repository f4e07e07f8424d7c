package model

// This file is the vocabulary between the protocol core and its drivers (the
// simulator and the production runtime). A state machine takes an Input and
// appends Effects to an Outbox; a driver carries the effects out and feeds their
// results back as Inputs. Nothing in this package performs I/O.

// HostID names a process: a territory, a client, or a control-plane role.
type HostID uint32

// Outcome says what a driver knows about an effect it carried out.
type Outcome uint8

const (
	// OutcomeOK: the operation happened and this is its result.
	OutcomeOK Outcome = iota
	// OutcomeFailed: the operation definitely did not happen (Err says why).
	OutcomeFailed
	// OutcomeTimeout: no answer in time. The operation may or may not have
	// happened; the core must handle both.
	OutcomeTimeout
)

func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeFailed:
		return "failed"
	case OutcomeTimeout:
		return "timeout"
	}
	return "outcome?"
}

// ServiceErr is a definite error reported by a service.
type ServiceErr uint8

const (
	ErrNone ServiceErr = iota
	// ErrFenced: a writer at a higher epoch opened the stream.
	ErrFenced
	// ErrLSNConflict: another entry already holds this LSN.
	ErrLSNConflict
	// ErrLSNGap: the LSN is beyond tail+1.
	ErrLSNGap
	// ErrUnavailable: the service refused (not enough bookies, unreachable, ...).
	ErrUnavailable
	// ErrNotFound: no such object or key.
	ErrNotFound
	// ErrCorrupt: data failed its checksum.
	ErrCorrupt
	// ErrLeaseExpired: the session's lease is gone.
	ErrLeaseExpired
	// ErrInvalid: the service refused the request itself as malformed or
	// over a limit (etcd's InvalidArgument: an empty key, one key written
	// twice in a transaction branch, too many operations, a request too
	// large; a blob key that is not a flat object name). Retrying the same
	// request cannot succeed.
	ErrInvalid
)

var serviceErrNames = [...]string{"none", "fenced", "lsn-conflict", "lsn-gap", "unavailable", "not-found", "corrupt", "lease-expired", "invalid"}

func (e ServiceErr) String() string {
	if int(e) < len(serviceErrNames) {
		return serviceErrNames[e]
	}
	return "service-err?"
}

// ---- Coordination store (RCS) ----

// KV is one key of the coordination store. ModRevision is the store revision
// of the key's last change; 0 means the key does not exist.
type KV struct {
	Key         string
	Value       []byte
	ModRevision int64
	Lease       int64
}

// CoordOpKind selects a coordination operation.
type CoordOpKind uint8

const (
	CoordGet            CoordOpKind = iota // Key
	CoordRange                             // every key with prefix Key, sorted
	CoordTxn                               // Compares; if all hold Then else Else (put/CAS/multi-key)
	CoordLeaseGrant                        // TTLMs -> Lease
	CoordLeaseKeepAlive                    // Lease
	CoordLeaseRevoke                       // Lease
	CoordWatch                             // prefix Key: changes arrive as WatchEvent inputs
)

// Compare holds when the key's ModRevision equals ModRevision (0: absent).
type Compare struct {
	Key         string
	ModRevision int64
}

// TxnOpKind is a write inside a transaction.
type TxnOpKind uint8

const (
	TxnPut TxnOpKind = iota
	TxnDelete
)

// TxnOp is one write of a transaction.
type TxnOp struct {
	Kind  TxnOpKind
	Key   string
	Value []byte
	Lease int64
}

// CoordRequest is one coordination operation.
type CoordRequest struct {
	Kind     CoordOpKind
	Key      string
	Compares []Compare
	Then     []TxnOp
	Else     []TxnOp
	Lease    int64
	TTLMs    int64
}

// CoordResponse is the answer to a CoordRequest.
type CoordResponse struct {
	Revision  int64 // store revision after the operation
	KVs       []KV  // Get / Range
	Succeeded bool  // Txn: compares held
	Lease     int64 // LeaseGrant
}

// PutIfVersion builds the compare-and-swap: write value to key if its
// ModRevision is still expect (0: the key must not exist).
func PutIfVersion(key string, value []byte, expect int64) CoordRequest {
	return CoordRequest{
		Kind:     CoordTxn,
		Compares: []Compare{{Key: key, ModRevision: expect}},
		Then:     []TxnOp{{Kind: TxnPut, Key: key, Value: value}},
	}
}

// ---- Replicated log (RLS) ----

// LogOpKind selects a log operation.
type LogOpKind uint8

const (
	// LogOpen opens Stream for writing at Epoch: it fences every writer with a
	// lower epoch and returns the tail LSN.
	LogOpen LogOpKind = iota
	// LogAppend appends Data at LSN; it succeeds only if Epoch is the stream's
	// current writer epoch and LSN == tail+1 (or LSN already holds identical
	// Data, which makes a retried append idempotent).
	LogAppend
	// LogRead returns committed entries from FromLSN, at most MaxEntries.
	LogRead
)

// LogRequest is one replicated-log operation.
type LogRequest struct {
	Kind       LogOpKind
	Stream     uint32 // one stream per subgraph
	Epoch      uint64
	LSN        uint64
	Data       []byte
	FromLSN    uint64
	MaxEntries int
}

// LogEntry is one committed entry of a stream.
type LogEntry struct {
	LSN  uint64
	Data []byte
}

// LogResponse is the answer to a LogRequest.
type LogResponse struct {
	TailLSN uint64
	LSN     uint64
	Entries []LogEntry
}

// ---- Object store (DSS) ----

// BlobOpKind selects an object-store operation.
type BlobOpKind uint8

const (
	BlobPut BlobOpKind = iota
	BlobGet
	BlobExists
	BlobDelete
	BlobList
)

// BlobRequest is one object-store operation. Key is the prefix for BlobList.
type BlobRequest struct {
	Kind BlobOpKind
	Key  string
	Data []byte
}

// BlobResponse is the answer to a BlobRequest.
type BlobResponse struct {
	Data   []byte
	Exists bool
	Keys   []string
}

// ---- Local disk ----

// DiskOpKind selects a local-disk operation. Only caches live on local disk:
// everything on it may be lost, torn or corrupted, and the core must check
// what it reads back.
type DiskOpKind uint8

const (
	// DiskWrite replaces a file's content; it is not durable until DiskSync.
	DiskWrite DiskOpKind = iota
	// DiskSync makes the file's last write durable (fsync).
	DiskSync
	// DiskRead returns a file's content (ErrNotFound if none).
	DiskRead
	// DiskDelete removes a file.
	DiskDelete
)

// DiskRequest is one local-disk operation.
type DiskRequest struct {
	Kind DiskOpKind
	Path string
	Data []byte
}

// DiskResponse is the answer to a DiskRequest.
type DiskResponse struct {
	Data []byte
}

// ---- Effects: what a state machine asks its driver to do ----

// Effect is implemented by every effect type below.
type Effect interface{ isEffect() }

// Send delivers Msg to host To over the transport (may be lost, delayed,
// duplicated or reordered: the protocols tolerate all four).
type Send struct {
	To  HostID
	Msg *Message
}

// CoordCall runs Req against the coordination store; the result comes back as
// a CoordResult with the same ReqID.
type CoordCall struct {
	ReqID     uint64
	Req       CoordRequest
	TimeoutMs int64
}

// LogCall runs Req against the replicated log; result: LogResult.
type LogCall struct {
	ReqID     uint64
	Req       LogRequest
	TimeoutMs int64
}

// BlobCall runs Req against the object store; result: BlobResult.
type BlobCall struct {
	ReqID     uint64
	Req       BlobRequest
	TimeoutMs int64
}

// DiskCall runs Req against the host's local disk; result: DiskResult.
type DiskCall struct {
	ReqID     uint64
	Req       DiskRequest
	TimeoutMs int64
}

// SetTimer asks for a TimerFired input with ID after AfterMs of the host's
// clock. Timers are not cancelled: a state machine ignores a stale ID.
type SetTimer struct {
	ID      uint64
	AfterMs int64
}

// Observe reports a protocol fact to whoever watches (invariant checkers,
// metrics, traces). Drivers never act on it.
type Observe struct{ Fact Fact }

func (Send) isEffect()      {}
func (CoordCall) isEffect() {}
func (LogCall) isEffect()   {}
func (BlobCall) isEffect()  {}
func (DiskCall) isEffect()  {}
func (SetTimer) isEffect()  {}
func (Observe) isEffect()   {}

// Outbox collects effects; drivers reuse one per state machine to avoid
// allocating on every step.
type Outbox struct{ Effects []Effect }

// Add appends an effect.
func (o *Outbox) Add(e Effect) { o.Effects = append(o.Effects, e) }

// Reset empties the outbox, keeping its capacity.
func (o *Outbox) Reset() {
	clear(o.Effects)
	o.Effects = o.Effects[:0]
}

// ---- Inputs: what a driver feeds back ----

// Input is implemented by every input type below.
type Input interface{ isInput() }

// Start is the first input of a process incarnation (boot or restart).
type Start struct{}

// MessageIn is a message that arrived from host From.
type MessageIn struct {
	From HostID
	Msg  *Message
}

// CoordResult answers a CoordCall.
type CoordResult struct {
	ReqID   uint64
	Outcome Outcome
	Err     ServiceErr
	Resp    CoordResponse
}

// LogResult answers a LogCall.
type LogResult struct {
	ReqID   uint64
	Outcome Outcome
	Err     ServiceErr
	Resp    LogResponse
}

// BlobResult answers a BlobCall.
type BlobResult struct {
	ReqID   uint64
	Outcome Outcome
	Err     ServiceErr
	Resp    BlobResponse
}

// DiskResult answers a DiskCall.
type DiskResult struct {
	ReqID   uint64
	Outcome Outcome
	Err     ServiceErr
	Resp    DiskResponse
}

// TimerFired is a timer set by SetTimer.
type TimerFired struct{ ID uint64 }

// WatchEvent reports a change under a watched prefix (Deleted: the key is gone).
type WatchEvent struct {
	KV      KV
	Deleted bool
}

func (Start) isInput()       {}
func (MessageIn) isInput()   {}
func (CoordResult) isInput() {}
func (LogResult) isInput()   {}
func (BlobResult) isInput()  {}
func (DiskResult) isInput()  {}
func (TimerFired) isInput()  {}
func (WatchEvent) isInput()  {}

// Node is a protocol state machine. nowMs is the host's clock, which may be
// skewed or jump: it is an input like any other.
type Node interface {
	Step(nowMs int64, in Input, out *Outbox)
}
