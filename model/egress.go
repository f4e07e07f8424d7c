package model

import (
	"fmt"
	"strconv"
)

// The Log Egress Service (seed protocol 3, the Supernode Write Protocol).
//
// A supernode's write is committed once, synchronously, to its subgraph's
// log, and acknowledged after the quorum commit (the ordinary write path).
// The egress service tails the committed log of every subgraph that holds a
// supernode and publishes its events, byte for byte, to one shared durable
// stream, the egress stream, in records of consecutive entries
// (egress_record.go); proxy territories consume it (proxy_component.go).
//
// The egress stream is a log stream of the log port (EgressStream): appends at
// tail+1 under a writer epoch, reads from an offset. In simulation it is a
// simulated topic of its own, with the log's faults (stalls, lost
// acknowledgements) and redelivery on reads; in production it maps to one
// Pulsar topic through the same fencing protocol as the subgraph logs.
//
// One egress node leads at a time: it holds EgressLeaderKey under its lease.
// The leader takes a new stream epoch (EgressEpochKey, by compare-and-swap)
// and opens the stream with it, which fences a deposed leader's appends.
//
// Delivery is at least once and never skips: for each published subgraph the
// leader reads its committed log from cursor+1, appends each entry to the
// stream, and only once every append of the batch is acknowledged persists
// the cursor (the last LSN published), guarded by its leadership key. A crash
// between the publish and the cursor write publishes the batch again on
// resume: duplicates in the stream, which proxies drop by (subgraph, LSN).
//
// A subgraph is published from LSN 1 once its fold holds a supernode, and
// stays published (its cursor key exists). The leader folds the log of the
// subgraphs not yet published to find out.

// EgressStream is the log stream id of the egress stream. Subgraph streams
// are below MaxSubgraphs, so it never collides with one.
const EgressStream uint32 = 1 << 31

// Egress keys in the coordination store.
const (
	EgressLeaderKey    = "egress/leader"
	EgressEpochKey     = "egress/epoch"
	EgressCursorPrefix = "egress/cursor/"
)

// EgressCursorKey holds the last LSN of sg the egress stream acknowledged.
func EgressCursorKey(sg SubgraphID) string { return fmt.Sprintf("%s%05d", EgressCursorPrefix, sg) }

// EgressConfig configures an egress node.
type EgressConfig struct {
	ID             HostID
	Subgraphs      uint32
	CoordTimeoutMs int64
	LogTimeoutMs   int64
	TickMs         int64 // the lease keepalive and idle poll period
	LeaseTTLMs     int64
	Batch          int // entries read and published per step
}

// DefaultEgressConfig fills the periods and bounds.
func DefaultEgressConfig(id HostID, subgraphs uint32) EgressConfig {
	return EgressConfig{ID: id, Subgraphs: subgraphs, CoordTimeoutMs: 500, LogTimeoutMs: 1000, TickMs: 250, LeaseTTLMs: 2000, Batch: 32}
}

// Validate reports a configuration the egress node cannot run with.
func (c EgressConfig) Validate() error {
	switch {
	case c.ID == 0 || c.Subgraphs == 0:
		return fmt.Errorf("egress config: id and subgraphs are required")
	case c.CoordTimeoutMs <= 0 || c.LogTimeoutMs <= 0 || c.TickMs <= 0 || c.Batch <= 0:
		return fmt.Errorf("egress %d config: timeouts, tick and batch must be positive", c.ID)
	case c.LeaseTTLMs <= 2*c.TickMs:
		return fmt.Errorf("egress %d config: lease %dms must exceed two ticks of %dms", c.ID, c.LeaseTTLMs, c.TickMs)
	}
	return nil
}

// egress phases
type egressPhase uint8

const (
	egStandby egressPhase = iota // no lease or not the leader
	egEpoch                      // reading and bumping the stream epoch
	egOpening                    // opening the egress stream at the epoch
	egCursors                    // reading the persisted cursors
	egPumping                    // publishing
)

// egress call tags
const (
	egTagLease uint8 = iota + 1
	egTagKeepAlive
	egTagLeader
	egTagEpochGet
	egTagEpochPut
	egTagOpen
	egTagCursors
	egTagRead
	egTagAppend
	egTagCursorPut
)

// egressSub is the leader's view of one subgraph.
type egressSub struct {
	fold      *SubgraphState // folded to find the first supernode, until published
	published bool
	cursor    uint64 // last LSN acknowledged by the stream
}

// Egress is the log egress service's state machine.
type Egress struct {
	cfg       EgressConfig
	nowMs     int64
	out       *Outbox
	nextID    uint64
	calls     map[uint64]uint8 // call id -> tag, this leadership term only
	tickID    uint64
	phase     egressPhase
	lease     int64
	leaseBusy bool
	leaderRev int64 // ModRevision of our leader key: guards every cursor write
	epoch     uint64
	tail      uint64 // the egress stream's tail offset
	subs      []egressSub
	next      SubgraphID // the subgraph the pump serves next
	busy      bool       // a pump step is in flight
	idle      int        // subgraphs in a row with nothing new; a full round waits a tick
	// the batch being published
	batch     []LogEntry
	record    []byte // the batch, encoded (egress_record.go)
	batchSg   SubgraphID
	batchTail uint64 // sg's committed tail when the batch was read
	sent      bool   // the record is acknowledged
}

// NewEgress returns an egress node that starts on its first Start input.
func NewEgress(cfg EgressConfig) (*Egress, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Egress{cfg: cfg, calls: map[uint64]uint8{}}, nil
}

// Leader reports whether this node is publishing, and at which stream epoch.
func (e *Egress) Leader() (bool, uint64) { return e.phase == egPumping, e.epoch }

// Step feeds one input.
func (e *Egress) Step(nowMs int64, in Input, out *Outbox) {
	e.nowMs, e.out = nowMs, out
	switch in := in.(type) {
	case Start:
		e.setTick()
		e.grant()
	case TimerFired:
		if in.ID == e.tickID {
			e.tick()
		}
	case CoordResult:
		if tag, ok := e.take(in.ReqID); ok {
			e.onCoord(tag, in)
		}
	case LogResult:
		if tag, ok := e.take(in.ReqID); ok {
			e.onLog(tag, in)
		}
	case MessageIn, BlobResult, DiskResult, WatchEvent:
	default:
		panic(fmt.Sprintf("egress %d: unknown input", e.cfg.ID))
	}
	e.out = nil
}

func (e *Egress) take(id uint64) (uint8, bool) {
	tag, ok := e.calls[id]
	delete(e.calls, id)
	return tag, ok
}

func (e *Egress) setTick() {
	e.nextID++
	e.tickID = e.nextID
	e.out.Add(SetTimer{ID: e.tickID, AfterMs: e.cfg.TickMs})
}

func (e *Egress) coord(tag uint8, req CoordRequest) {
	e.nextID++
	e.calls[e.nextID] = tag
	e.out.Add(CoordCall{ReqID: e.nextID, Req: req, TimeoutMs: e.cfg.CoordTimeoutMs})
}

func (e *Egress) logCall(tag uint8, req LogRequest) {
	e.nextID++
	e.calls[e.nextID] = tag
	e.out.Add(LogCall{ReqID: e.nextID, Req: req, TimeoutMs: e.cfg.LogTimeoutMs})
}

func (e *Egress) grant() {
	e.leaseBusy = true
	e.coord(egTagLease, CoordRequest{Kind: CoordLeaseGrant, TTLMs: e.cfg.LeaseTTLMs})
}

func (e *Egress) tick() {
	e.setTick()
	switch {
	case e.leaseBusy:
	case e.lease == 0:
		e.grant()
	case e.phase == egStandby:
		// Try to lead: the key is ours only if absent (the old leader's lease expired).
		e.leaseBusy = true
		e.coord(egTagLeader, CoordRequest{Kind: CoordTxn, Compares: []Compare{{Key: EgressLeaderKey}},
			Then: []TxnOp{{Kind: TxnPut, Key: EgressLeaderKey, Value: []byte(strconv.FormatUint(uint64(e.cfg.ID), 10)), Lease: e.lease}}})
	default:
		e.leaseBusy = true
		e.coord(egTagKeepAlive, CoordRequest{Kind: CoordLeaseKeepAlive, Lease: e.lease})
	}
	if e.phase == egPumping && !e.busy {
		e.pump()
	} else if e.phase > egStandby && e.phase < egPumping && !e.busy {
		e.resume() // a failed step of the takeover: retry it
	}
}

// stepDown forgets the leadership term: its calls in flight are dropped.
func (e *Egress) stepDown(lostLease bool) {
	e.phase, e.busy, e.batch, e.record, e.subs = egStandby, false, nil, nil, nil
	clear(e.calls)
	e.leaseBusy = false
	if lostLease {
		e.lease = 0
	}
	e.observe(FactEgressLeader{Egress: e.cfg.ID, Leader: false})
}

func (e *Egress) observe(f Fact) { e.out.Add(Observe{Fact: f}) }

func (e *Egress) onCoord(tag uint8, res CoordResult) {
	ok := res.Outcome == OutcomeOK
	switch tag {
	case egTagLease:
		e.leaseBusy = false
		if ok {
			e.lease = res.Resp.Lease
		}
	case egTagKeepAlive:
		e.leaseBusy = false
		if !ok && (res.Err == ErrLeaseExpired || res.Err == ErrNotFound) {
			e.stepDown(true)
		}
	case egTagLeader:
		e.leaseBusy = false
		if !ok {
			if res.Err == ErrLeaseExpired || res.Err == ErrNotFound {
				e.lease = 0
			}
			return
		}
		if res.Resp.Succeeded {
			e.leaderRev = res.Resp.Revision
			e.phase = egEpoch
			e.resume()
		}
	case egTagEpochGet:
		e.busy = false
		if !ok {
			return
		}
		var cur uint64
		var rev int64
		if len(res.Resp.KVs) > 0 {
			kv := res.Resp.KVs[0]
			n, err := strconv.ParseUint(string(kv.Value), 10, 64)
			if err != nil {
				e.out.Add(badCoordValue(e.cfg.ID, EgressEpochKey, err))
				return
			}
			cur, rev = n, kv.ModRevision
		}
		e.epoch = cur + 1
		e.busy = true
		e.coord(egTagEpochPut, CoordRequest{Kind: CoordTxn,
			Compares: []Compare{{Key: EgressEpochKey, ModRevision: rev}, {Key: EgressLeaderKey, ModRevision: e.leaderRev}},
			Then:     []TxnOp{{Kind: TxnPut, Key: EgressEpochKey, Value: []byte(strconv.FormatUint(e.epoch, 10))}}})
	case egTagEpochPut:
		e.busy = false
		if !ok {
			return
		}
		if !res.Resp.Succeeded {
			e.stepDown(false) // another leader, or our key is gone
			return
		}
		e.phase = egOpening
		e.resume()
	case egTagCursors:
		e.busy = false
		if !ok {
			return
		}
		e.loadCursors(res.Resp.KVs)
	case egTagCursorPut:
		e.busy = false
		if !ok {
			return // the batch is published again: at least once
		}
		if !res.Resp.Succeeded {
			e.stepDown(false)
			return
		}
		last := e.batch[len(e.batch)-1].LSN
		e.subs[e.batchSg].cursor = last
		e.observe(FactEgressCursor{Egress: e.cfg.ID, Subgraph: e.batchSg, LSN: last, Tail: e.batchTail})
		e.batch, e.record = nil, nil
		e.pump()
	}
}

// resume runs the current takeover step.
func (e *Egress) resume() {
	e.busy = true
	switch e.phase {
	case egEpoch:
		e.coord(egTagEpochGet, CoordRequest{Kind: CoordGet, Key: EgressEpochKey})
	case egOpening:
		e.logCall(egTagOpen, LogRequest{Kind: LogOpen, Stream: EgressStream, Epoch: e.epoch})
	case egCursors:
		e.coord(egTagCursors, CoordRequest{Kind: CoordRange, Key: EgressCursorPrefix})
	default:
		e.busy = false
	}
}

func (e *Egress) loadCursors(kvs []KV) {
	e.subs = make([]egressSub, e.cfg.Subgraphs)
	for i := range e.subs {
		e.subs[i].fold = NewSubgraphState(SubgraphID(i), e.cfg.Subgraphs, GenesisPolicy())
	}
	for _, kv := range kvs {
		sg, err := strconv.ParseUint(kv.Key[len(EgressCursorPrefix):], 10, 32)
		lsn, err2 := strconv.ParseUint(string(kv.Value), 10, 64)
		if err != nil || err2 != nil || sg >= uint64(e.cfg.Subgraphs) {
			e.out.Add(badCoordValue(e.cfg.ID, kv.Key, fmt.Errorf("egress cursor %q", kv.Value)))
			continue
		}
		e.subs[sg] = egressSub{published: true, cursor: lsn}
	}
	e.phase, e.next, e.idle = egPumping, 0, 0
	e.observe(FactEgressLeader{Egress: e.cfg.ID, Leader: true, Epoch: e.epoch, TailOffset: e.tail})
	e.pump()
}
