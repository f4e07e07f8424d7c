package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// EventType is the kind of a logged event.
type EventType uint8

const (
	EvCreateNeuron EventType = iota + 1
	EvStimulate
	EvConnect
	EvAdjustWeight
	EvPrune
	// EvAdoptPolicy: the subgraph adopts a new policy epoch.
	EvAdoptPolicy
	// EvTerritoryRecovered: committed by the control plane after a recovery;
	// its handler applies decay for the downtime (TimestampMs - last heartbeat).
	EvTerritoryRecovered
	// EvHeartbeat: the primary records its clock, the base of decay on recovery.
	EvHeartbeat
	// The handshake saga's steps (saga_state.go): Reserve, Commit,
	// Compensate and Unlinked in pre's log, Accept and Settle in post's.
	EvSagaReserve
	EvSagaAccept
	EvSagaCommit
	EvSagaCompensate
	EvSagaUnlinked
	EvSagaSettle
	evTypeEnd
)

var evNames = [...]string{"ev?", "create-neuron", "stimulate", "connect", "adjust-weight", "prune", "adopt-policy", "territory-recovered", "heartbeat",
	"saga-reserve", "saga-accept", "saga-commit", "saga-compensate", "saga-unlinked", "saga-settle"}

func (t EventType) String() string {
	if int(t) < len(evNames) {
		return evNames[t]
	}
	return "ev?"
}

// Event is one state change of a subgraph, as stored in its log stream.
// TimestampMs is the writer's clock (the control plane's for
// EvTerritoryRecovered). The body depends on the type: Neuron, Pre, Post and
// Value are a client write's arguments (Value: stimulate delta, connect
// weight, adjust delta), Policy is the body of EvAdoptPolicy, and Recovery the
// body of EvTerritoryRecovered.
type Event struct {
	LSN         uint64
	UUID        EventUUID
	Subgraph    SubgraphID
	Type        EventType
	WriterEpoch uint64
	Neuron      NeuronID
	Pre         NeuronID
	Post        NeuronID
	Value       int64
	TimestampMs int64
	Policy      Policy
	Recovery    RecoveryBody
	Saga        SagaBody
}

// RecoveryBody is the body of EvTerritoryRecovered.
type RecoveryBody struct {
	// LastHeartbeatMs is the subgraph's last heartbeat before the recovery:
	// decay runs from it to the event's TimestampMs.
	LastHeartbeatMs int64
}

// valueSlot is what the encoding's value field holds: the write argument, or
// for EvTerritoryRecovered the last heartbeat (the byte layout of version 1,
// which predates typed bodies).
func (ev *Event) valueSlot() int64 {
	if ev.Type == EvTerritoryRecovered {
		return ev.Recovery.LastHeartbeatMs
	}
	return ev.Value
}

// EventFromRequest builds the event a write request logs.
func EventFromRequest(req *Request, sg SubgraphID, lsn, epoch uint64) (Event, error) {
	ev := Event{LSN: lsn, UUID: req.ID, Subgraph: sg, WriterEpoch: epoch, Neuron: req.Neuron, Pre: req.Pre, Post: req.Post, Value: req.Value}
	switch req.Op {
	case OpCreateNeuron:
		ev.Type = EvCreateNeuron
	case OpStimulate:
		ev.Type = EvStimulate
	case OpConnect:
		ev.Type = EvConnect
	case OpAdjustWeight:
		ev.Type = EvAdjustWeight
	case OpPrune:
		ev.Type = EvPrune
	default:
		return Event{}, fmt.Errorf("event from request %s: %s is not a write", req.ID, req.Op)
	}
	return ev, nil
}

// Encoding: a version byte, the fields as varints, then a CRC32C (Castagnoli)
// of everything before it, little-endian. Version 1 is the only version.
const (
	eventCodecVersion byte = 1
	// maxEventBytes bounds one encoded event; anything larger is corrupt.
	maxEventBytes = 256
)

// sagaFlagInstance is SagaBody.Instance in a saga event's flags (bit 0 is
// Release, bits 1-8 the reason): a bit older events never set.
const sagaFlagInstance = 1 << 9

// ErrCorruptEvent wraps every decoding failure.
var ErrCorruptEvent = errors.New("corrupt event")

// AppendEncode appends the encoding of ev to buf.
func (ev *Event) AppendEncode(buf []byte) []byte {
	start := len(buf)
	buf = append(buf, eventCodecVersion, byte(ev.Type))
	buf = binary.AppendUvarint(buf, ev.LSN)
	buf = binary.LittleEndian.AppendUint64(buf, ev.UUID.Hi)
	buf = binary.LittleEndian.AppendUint64(buf, ev.UUID.Lo)
	buf = binary.AppendUvarint(buf, uint64(ev.Subgraph))
	buf = binary.AppendUvarint(buf, ev.WriterEpoch)
	buf = binary.AppendUvarint(buf, uint64(ev.Neuron))
	buf = binary.AppendUvarint(buf, uint64(ev.Pre))
	buf = binary.AppendUvarint(buf, uint64(ev.Post))
	buf = binary.AppendVarint(buf, ev.valueSlot())
	buf = binary.AppendVarint(buf, ev.TimestampMs)
	if ev.Type == EvAdoptPolicy {
		p := &ev.Policy
		buf = binary.AppendUvarint(buf, p.Epoch)
		buf = binary.AppendUvarint(buf, uint64(p.MaxOutDegree))
		buf = binary.AppendUvarint(buf, uint64(p.MaxInDegree))
		buf = binary.AppendUvarint(buf, uint64(p.DecayPerSecondPM))
		buf = binary.AppendUvarint(buf, uint64(p.SupernodeDegree))
		buf = binary.AppendUvarint(buf, uint64(p.SnapshotEvery))
	}
	if ev.Type.IsSaga() {
		g := &ev.Saga
		buf = binary.LittleEndian.AppendUint64(buf, g.ID.Hi)
		buf = binary.LittleEndian.AppendUint64(buf, g.ID.Lo)
		flags := uint64(g.Reason) << 1
		if g.Release {
			flags |= 1
		}
		if g.Instance {
			flags |= sagaFlagInstance
		}
		buf = binary.AppendUvarint(buf, flags)
	}
	crc := crc32.Checksum(buf[start:], crc32.MakeTable(crc32.Castagnoli))
	return binary.LittleEndian.AppendUint32(buf, crc)
}

// Encode returns the encoding of ev.
func (ev *Event) Encode() []byte { return ev.AppendEncode(make([]byte, 0, 64)) }

// decoder reads fields and remembers the first error, so a truncated input
// yields one clear error instead of a panic.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = fmt.Errorf("%w: field %s: bad varint", ErrCorruptEvent, field)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.err = fmt.Errorf("%w: field %s: bad varint", ErrCorruptEvent, field)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) u32(field string) uint32 {
	v := d.uvarint(field)
	if v > 1<<32-1 && d.err == nil {
		d.err = fmt.Errorf("%w: field %s: %d overflows 32 bits", ErrCorruptEvent, field, v)
	}
	return uint32(v)
}

func (d *decoder) fixed64(field string) uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.buf) < 8 {
		d.err = fmt.Errorf("%w: field %s: truncated", ErrCorruptEvent, field)
		return 0
	}
	v := binary.LittleEndian.Uint64(d.buf)
	d.buf = d.buf[8:]
	return v
}

// DecodeEvent parses one encoded event. It returns an error wrapping
// ErrCorruptEvent on any corrupt, truncated or oversized input, never panics.
func DecodeEvent(data []byte) (Event, error) {
	if len(data) > maxEventBytes {
		return Event{}, fmt.Errorf("%w: %d bytes exceeds %d", ErrCorruptEvent, len(data), maxEventBytes)
	}
	if len(data) < 2+4 {
		return Event{}, fmt.Errorf("%w: %d bytes is too short", ErrCorruptEvent, len(data))
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if got := crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)); got != sum {
		return Event{}, fmt.Errorf("%w: checksum %08x, want %08x", ErrCorruptEvent, got, sum)
	}
	if body[0] != eventCodecVersion {
		return Event{}, fmt.Errorf("%w: unknown codec version %d", ErrCorruptEvent, body[0])
	}
	ev := Event{Type: EventType(body[1])}
	if ev.Type == 0 || ev.Type >= evTypeEnd {
		return Event{}, fmt.Errorf("%w: unknown event type %d", ErrCorruptEvent, body[1])
	}
	d := decoder{buf: body[2:]}
	ev.LSN = d.uvarint("lsn")
	ev.UUID.Hi = d.fixed64("uuid.hi")
	ev.UUID.Lo = d.fixed64("uuid.lo")
	ev.Subgraph = SubgraphID(d.u32("subgraph"))
	ev.WriterEpoch = d.uvarint("writer_epoch")
	ev.Neuron = NeuronID(d.uvarint("neuron"))
	ev.Pre = NeuronID(d.uvarint("pre"))
	ev.Post = NeuronID(d.uvarint("post"))
	if v := d.varint("value"); ev.Type == EvTerritoryRecovered {
		ev.Recovery.LastHeartbeatMs = v
	} else {
		ev.Value = v
	}
	ev.TimestampMs = d.varint("timestamp_ms")
	if ev.Type == EvAdoptPolicy {
		ev.Policy.Epoch = d.uvarint("policy.epoch")
		ev.Policy.MaxOutDegree = d.u32("policy.max_out_degree")
		ev.Policy.MaxInDegree = d.u32("policy.max_in_degree")
		ev.Policy.DecayPerSecondPM = d.u32("policy.decay_per_second_pm")
		ev.Policy.SupernodeDegree = d.u32("policy.supernode_degree")
		ev.Policy.SnapshotEvery = d.u32("policy.snapshot_every")
	}
	if ev.Type.IsSaga() {
		ev.Saga.ID.Hi = d.fixed64("saga.id.hi")
		ev.Saga.ID.Lo = d.fixed64("saga.id.lo")
		flags := d.uvarint("saga.flags")
		if flags>>10 != 0 && d.err == nil {
			d.err = fmt.Errorf("%w: field saga.flags: unknown bits %#x", ErrCorruptEvent, flags)
		}
		if flags&sagaFlagInstance != 0 && ev.Type != EvSagaReserve && d.err == nil {
			d.err = fmt.Errorf("%w: field saga.flags: the instance flag on %s", ErrCorruptEvent, ev.Type)
		}
		ev.Saga.Reason, ev.Saga.Release = Reason(flags>>1&0xff), flags&1 == 1
		ev.Saga.Instance = flags&sagaFlagInstance != 0
		if ev.Saga.ID.IsZero() && d.err == nil {
			d.err = fmt.Errorf("%w: saga event without a saga id", ErrCorruptEvent)
		}
	}
	if d.err != nil {
		return Event{}, d.err
	}
	if len(d.buf) != 0 {
		return Event{}, fmt.Errorf("%w: %d trailing bytes", ErrCorruptEvent, len(d.buf))
	}
	return ev, nil
}
