package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Snapshot blobs and their records in the coordination store.
//
// A snapshot is the whole state of one subgraph at an LSN, encoded with a
// CRC32C trailer. Its record lives at SnapshotKey(sg, uuid) and moves
// UPLOADING -> VERIFYING -> COMMITTED -> SUPERSEDED; the head key of the
// subgraph names the one COMMITTED snapshot, and every commit is a single
// transaction that compares the head, so at most one snapshot per subgraph is
// ever COMMITTED.

// SnapshotState is the life-cycle state of a snapshot record.
type SnapshotState uint8

const (
	SnapUploading SnapshotState = iota + 1
	SnapVerifying
	SnapCommitted
	SnapSuperseded
)

var snapStateNames = [...]string{"", "UPLOADING", "VERIFYING", "COMMITTED", "SUPERSEDED"}

func (s SnapshotState) String() string {
	if int(s) < len(snapStateNames) && s > 0 {
		return snapStateNames[s]
	}
	return "SNAPSHOT_STATE?"
}

// Coordination-store and object-store layout of snapshots.
const (
	SnapshotsPrefix     = "snapshots/"
	SnapshotHeadsPrefix = "snapshot-heads/"
	SnapshotBlobPrefix  = "snapshots/"
)

// SnapshotPrefix is the record prefix of one subgraph.
func SnapshotPrefix(sg SubgraphID) string { return fmt.Sprintf("%s%05d/", SnapshotsPrefix, sg) }

// SnapshotKey is the record key of one snapshot.
func SnapshotKey(sg SubgraphID, uuid string) string { return SnapshotPrefix(sg) + uuid }

// SnapshotHeadKey names the committed snapshot of a subgraph.
func SnapshotHeadKey(sg SubgraphID) string { return fmt.Sprintf("%s%05d", SnapshotHeadsPrefix, sg) }

// SnapshotBlobKey is where the blob of a snapshot is stored.
func SnapshotBlobKey(sg SubgraphID, uuid string) string {
	return fmt.Sprintf("%s%05d/%s.snap", SnapshotBlobPrefix, sg, uuid)
}

// SnapshotRecord is the value of a snapshot record.
type SnapshotRecord struct {
	Subgraph  SubgraphID
	UUID      string
	State     SnapshotState
	LSN       uint64
	Territory HostID
	Epoch     uint64
	Location  string // blob key, set from VERIFYING on
	Checksum  uint32 // CRC32C of the whole blob
	Size      int
	// ModRevision is the record's revision when read (not part of the value).
	ModRevision int64
}

// Encode is the record's value: name=value pairs a person can read.
func (r *SnapshotRecord) Encode() []byte {
	b := make([]byte, 0, 128)
	b = append(b, "state="...)
	b = append(b, r.State.String()...)
	b = append(b, " lsn="...)
	b = strconv.AppendUint(b, r.LSN, 10)
	b = append(b, " territory="...)
	b = strconv.AppendUint(b, uint64(r.Territory), 10)
	b = append(b, " epoch="...)
	b = strconv.AppendUint(b, r.Epoch, 10)
	if r.Location != "" {
		b = append(b, " location="...)
		b = append(b, r.Location...)
		b = append(b, " checksum="...)
		b = strconv.AppendUint(b, uint64(r.Checksum), 10)
		b = append(b, " size="...)
		b = strconv.AppendInt(b, int64(r.Size), 10)
	}
	return b
}

// ParseSnapshotRecordKey returns the subgraph and uuid a record key names.
func ParseSnapshotRecordKey(key string) (SubgraphID, string, error) {
	rest, ok := strings.CutPrefix(key, SnapshotsPrefix)
	if !ok {
		return 0, "", fmt.Errorf("snapshot record %q: missing prefix", key)
	}
	sgText, uuid, ok := strings.Cut(rest, "/")
	if !ok || uuid == "" {
		return 0, "", fmt.Errorf("snapshot record %q: want %s<subgraph>/<uuid>", key, SnapshotsPrefix)
	}
	sg, err := strconv.ParseUint(sgText, 10, 32)
	if err != nil {
		return 0, "", fmt.Errorf("snapshot record %q: subgraph: %w", key, err)
	}
	return SubgraphID(sg), uuid, nil
}

// ParseSnapshotRecord decodes a record KV.
func ParseSnapshotRecord(kv KV) (SnapshotRecord, error) {
	sg, uuid, err := ParseSnapshotRecordKey(kv.Key)
	if err != nil {
		return SnapshotRecord{}, err
	}
	r := SnapshotRecord{Subgraph: sg, UUID: uuid, ModRevision: kv.ModRevision}
	for _, f := range strings.Fields(string(kv.Value)) {
		name, val, ok := strings.Cut(f, "=")
		if !ok {
			return SnapshotRecord{}, fmt.Errorf("snapshot record %q: field %q is not name=value", kv.Key, f)
		}
		var n uint64
		if name != "state" && name != "location" {
			if n, err = strconv.ParseUint(val, 10, 64); err != nil {
				return SnapshotRecord{}, fmt.Errorf("snapshot record %q: field %s: %w", kv.Key, name, err)
			}
		}
		switch name {
		case "state":
			r.State = 0
			for i := SnapUploading; i <= SnapSuperseded; i++ {
				if i.String() == val {
					r.State = i
				}
			}
			if r.State == 0 {
				return SnapshotRecord{}, fmt.Errorf("snapshot record %q: unknown state %q", kv.Key, val)
			}
		case "lsn":
			r.LSN = n
		case "territory":
			r.Territory = HostID(n)
		case "epoch":
			r.Epoch = n
		case "location":
			r.Location = val
		case "checksum":
			r.Checksum = uint32(n)
		case "size":
			r.Size = int(n)
		default:
			return SnapshotRecord{}, fmt.Errorf("snapshot record %q: unknown field %q", kv.Key, name)
		}
	}
	if r.State == 0 {
		return SnapshotRecord{}, fmt.Errorf("snapshot record %q: no state", kv.Key)
	}
	return r, nil
}

// ---- the blob ----

const snapshotMagic = "TSNP"

// Version 1 has no saga records; version 2 appends them; version 3 stamps
// the dedup entries with their logged time and always has the saga
// section; version 4 (the only one written) keeps each reservation's client
// event_uuid beside its saga id (SagaBody). Versions 1 to 3 still decode
// (decodeLegacyDedup; a version 3 reservation's client id is its saga id).
const snapshotVersion = 1
const snapshotVersionSagas = 2
const snapshotVersionDedupTime = 3
const snapshotVersionSagaInstances = 4

// ErrCorruptSnapshot wraps every snapshot decoding failure.
var ErrCorruptSnapshot = errors.New("corrupt snapshot")

// EncodeSnapshot serializes a subgraph state: the copy-on-write image at its
// applied LSN. Keys are sorted, so equal states give equal bytes.
func EncodeSnapshot(s *SubgraphState) []byte {
	b := make([]byte, 0, 64+len(s.neurons)*24+len(s.synapses)*24+s.dedup.len()*40)
	b = append(b, snapshotMagic...)
	b = append(b, snapshotVersionSagaInstances)
	b = binary.AppendUvarint(b, uint64(s.ID))
	b = binary.AppendUvarint(b, uint64(s.Count))
	b = binary.AppendUvarint(b, s.AppliedLSN)
	p := &s.Policy
	for _, v := range []uint64{p.Epoch, uint64(p.MaxOutDegree), uint64(p.MaxInDegree), uint64(p.DecayPerSecondPM), uint64(p.SupernodeDegree), uint64(p.SnapshotEvery)} {
		b = binary.AppendUvarint(b, v)
	}
	b = binary.AppendVarint(b, s.LastHeartbeatMs)
	ids := slices.Sorted(maps.Keys(s.neurons))
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		n := s.neurons[id]
		b = binary.AppendUvarint(b, uint64(id))
		b = binary.AppendVarint(b, n.Potential)
		b = binary.AppendUvarint(b, uint64(n.InDegree))
		b = binary.AppendUvarint(b, uint64(n.OutDegree))
	}
	keys := slices.SortedFunc(maps.Keys(s.synapses), compareSynapse)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(k.Pre))
		b = binary.AppendUvarint(b, uint64(k.Post))
		b = binary.AppendVarint(b, s.synapses[k])
	}
	// The dedup table (version 3): its sequence base and clock, then the live
	// entries oldest first, each with its stamp and its id's result.
	b = binary.AppendUvarint(b, s.dedup.headSeq)
	b = binary.AppendVarint(b, s.dedup.maxTsMs)
	b = binary.AppendUvarint(b, uint64(s.dedup.len()))
	s.dedup.live(func(_ uint64, e dedupEntry, _ Result, _ bool) {
		r, _ := s.dedup.get(e.id) // an earlier entry of the id carries the latest result too: restore keeps the last
		b = binary.LittleEndian.AppendUint64(b, e.id.Hi)
		b = binary.LittleEndian.AppendUint64(b, e.id.Lo)
		b = binary.AppendVarint(b, e.tsMs)
		b = appendResult(b, r)
	})
	b = s.appendSagas(b)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// DecodeSnapshot parses a snapshot blob. It returns an error wrapping
// ErrCorruptSnapshot on any corrupt or truncated input and never panics: a
// blob that fails its checksum is never loaded.
func DecodeSnapshot(data []byte) (*SubgraphState, error) {
	if len(data) < len(snapshotMagic)+1+4 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrCorruptSnapshot, len(data))
	}
	body := data[:len(data)-4]
	if got, want := crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)), binary.LittleEndian.Uint32(data[len(data)-4:]); got != want {
		return nil, fmt.Errorf("%w: checksum %x, want %x", ErrCorruptSnapshot, got, want)
	}
	if string(body[:4]) != snapshotMagic || body[4] < snapshotVersion || body[4] > snapshotVersionSagaInstances {
		return nil, fmt.Errorf("%w: bad magic or version", ErrCorruptSnapshot)
	}
	d := decoder{buf: body[5:]}
	id := d.u32("subgraph")
	count := d.u32("count")
	if d.err == nil && (count == 0 || id >= count) {
		return nil, fmt.Errorf("%w: subgraph %d of %d", ErrCorruptSnapshot, id, count)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptSnapshot, d.err)
	}
	s := NewSubgraphState(SubgraphID(id), count, Policy{})
	s.AppliedLSN = d.uvarint("applied_lsn")
	s.Policy.Epoch = d.uvarint("policy.epoch")
	s.Policy.MaxOutDegree = d.u32("policy.max_out")
	s.Policy.MaxInDegree = d.u32("policy.max_in")
	s.Policy.DecayPerSecondPM = d.u32("policy.decay")
	s.Policy.SupernodeDegree = d.u32("policy.supernode")
	s.Policy.SnapshotEvery = d.u32("policy.snapshot_every")
	s.LastHeartbeatMs = d.varint("last_heartbeat_ms")
	n := d.count("neurons", len(d.buf)/4)
	for i := 0; i < n && d.err == nil; i++ {
		nid := NeuronID(d.uvarint("neuron"))
		s.setNeuron(nid, Neuron{Potential: d.varint("potential"), InDegree: d.u32("in_degree"), OutDegree: d.u32("out_degree")})
	}
	m := d.count("synapses", len(d.buf)/3)
	for i := 0; i < m && d.err == nil; i++ {
		k := SynapseKey{Pre: NeuronID(d.uvarint("pre")), Post: NeuronID(d.uvarint("post"))}
		s.setSynapse(k, d.varint("weight"))
	}
	if body[4] >= snapshotVersionDedupTime {
		s.decodeDedup(&d)
	} else {
		s.decodeLegacyDedup(&d)
	}
	if body[4] != snapshotVersion && d.err == nil {
		s.decodeSagas(&d, body[4] >= snapshotVersionSagaInstances)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptSnapshot, d.err)
	}
	if len(d.buf) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorruptSnapshot, len(d.buf))
	}
	// Degrees and supernode flags must agree with the synapses: a snapshot
	// that contradicts itself is corrupt even if its checksum matches.
	// The checks run in key order, so a snapshot with several faults always
	// reports the same one.
	in, out := map[NeuronID]uint32{}, map[NeuronID]uint32{}
	synapses := slices.SortedFunc(maps.Keys(s.synapses), compareSynapse)
	for _, k := range synapses {
		out[k.Pre]++
		if !s.crossKey(k) {
			in[k.Post]++
		}
	}
	if err := s.checkSagas(in, out); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
	}
	for _, id := range slices.Sorted(maps.Keys(s.neurons)) {
		nn := s.neurons[id]
		if nn.InDegree != in[id] || nn.OutDegree != out[id] {
			return nil, fmt.Errorf("%w: neuron n%d degrees %d/%d, synapses say %d/%d", ErrCorruptSnapshot, id, nn.InDegree, nn.OutDegree, in[id], out[id])
		}
		nn.Supernode = s.Policy.SupernodeDegree > 0 && nn.InDegree+nn.OutDegree >= s.Policy.SupernodeDegree
		s.setNeuron(id, nn)
	}
	for _, k := range synapses {
		if _, ok := s.neurons[k.Pre]; !ok {
			return nil, fmt.Errorf("%w: synapse n%d->n%d without its pre neuron", ErrCorruptSnapshot, k.Pre, k.Post)
		}
		if _, ok := s.neurons[k.Post]; !ok && !s.crossKey(k) {
			return nil, fmt.Errorf("%w: synapse n%d->n%d without its post neuron", ErrCorruptSnapshot, k.Pre, k.Post)
		}
	}
	return s, nil
}

// count reads a length and bounds it by what the remaining bytes could hold,
// so a corrupt length cannot make the decoder allocate without limit.
func (d *decoder) count(field string, limit int) int {
	v := d.uvarint(field)
	if d.err == nil && v > uint64(limit) {
		d.err = fmt.Errorf("field %s: count %d exceeds what %d bytes can hold", field, v, len(d.buf))
		return 0
	}
	return int(v)
}

// Clone returns an independent copy of the state (a copy-on-write image).
func (s *SubgraphState) Clone() *SubgraphState {
	c := *s
	c.neurons = make(map[NeuronID]Neuron, len(s.neurons))
	maps.Copy(c.neurons, s.neurons)
	c.synapses = make(map[SynapseKey]int64, len(s.synapses))
	maps.Copy(c.synapses, s.synapses)
	c.saga = s.saga.clone()
	c.dedup = s.dedup.clone()
	return &c
}
