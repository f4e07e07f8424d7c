package model

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// An egress record is one message of the egress stream: a batch of committed
// entries of one subgraph, consecutive LSNs, each the log entry's bytes
// verbatim (an encoded Event, which names its subgraph and LSN), and the
// subgraph's committed tail when the egress read them (a proxy's replica lag
// in events is that tail minus its LSN). Encoding: a version byte (2), the
// tail as a uvarint, the count as a uvarint, each entry as a uvarint length
// and its bytes, then a CRC32C of everything before it, little-endian.
// Version 1 had no tail (it decodes with the last entry's LSN as the tail).

const egressRecordVersion byte = 2

// maxEgressRecordEntries bounds the entries of one record.
const maxEgressRecordEntries = 1024

// EncodeEgressRecord encodes a batch of committed entries' data, with the
// last entry's LSN as the tail.
func EncodeEgressRecord(entries []LogEntry) []byte {
	var tail uint64
	if len(entries) > 0 {
		tail = entries[len(entries)-1].LSN
	}
	return EncodeEgressRecordTail(entries, tail)
}

// EncodeEgressRecordTail encodes a batch and the subgraph's committed tail.
func EncodeEgressRecordTail(entries []LogEntry, tail uint64) []byte {
	buf := []byte{egressRecordVersion}
	buf = binary.AppendUvarint(buf, tail)
	buf = binary.AppendUvarint(buf, uint64(len(entries)))
	for i := range entries {
		buf = binary.AppendUvarint(buf, uint64(len(entries[i].Data)))
		buf = append(buf, entries[i].Data...)
	}
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, crc32.MakeTable(crc32.Castagnoli)))
}

// DecodeEgressRecord decodes a record into its events, in order; the raw
// bytes of each come back too. It never panics on bad input.
func DecodeEgressRecord(data []byte) ([]Event, [][]byte, error) {
	evs, raws, _, err := DecodeEgressRecordTail(data)
	return evs, raws, err
}

// DecodeEgressRecordTail is DecodeEgressRecord and the record's tail.
func DecodeEgressRecordTail(data []byte) ([]Event, [][]byte, uint64, error) {
	evs, raws, tail, err := decodeEgressRecord(data)
	if err == nil && len(evs) > 0 {
		tail = max(tail, evs[len(evs)-1].LSN)
	}
	return evs, raws, tail, err
}

func decodeEgressRecord(data []byte) ([]Event, [][]byte, uint64, error) {
	if len(data) < 1+1+4 {
		return nil, nil, 0, fmt.Errorf("egress record: %d bytes is too short", len(data))
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if got := crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)); got != sum {
		return nil, nil, 0, fmt.Errorf("egress record: checksum %08x, want %08x", got, sum)
	}
	if body[0] != 1 && body[0] != egressRecordVersion {
		return nil, nil, 0, fmt.Errorf("egress record: unknown version %d", body[0])
	}
	d := decoder{buf: body[1:]}
	var tail uint64
	if body[0] >= 2 {
		tail = d.uvarint("tail")
	}
	n := d.uvarint("count")
	if d.err == nil && (n == 0 || n > maxEgressRecordEntries) {
		return nil, nil, 0, fmt.Errorf("egress record: %d entries", n)
	}
	evs, raws := make([]Event, 0, n), make([][]byte, 0, n)
	for i := uint64(0); d.err == nil && i < n; i++ {
		size := d.uvarint("size")
		if d.err == nil && size > uint64(len(d.buf)) {
			d.err = fmt.Errorf("egress record: entry %d of %d bytes, %d left", i, size, len(d.buf))
		}
		if d.err != nil {
			break
		}
		raw := d.buf[:size]
		d.buf = d.buf[size:]
		ev, err := DecodeEvent(raw)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("egress record: entry %d: %w", i, err)
		}
		evs, raws = append(evs, ev), append(raws, raw)
	}
	if d.err != nil {
		return nil, nil, 0, d.err
	}
	if len(d.buf) != 0 {
		return nil, nil, 0, fmt.Errorf("egress record: %d trailing bytes", len(d.buf))
	}
	return evs, raws, tail, nil
}
