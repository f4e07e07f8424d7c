package model

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// An egress record is one message of the egress stream: a batch of committed
// entries of one subgraph, consecutive LSNs, each the log entry's bytes
// verbatim (an encoded Event, which names its subgraph and LSN). Encoding: a
// version byte, the count as a uvarint, each entry as a uvarint length and
// its bytes, then a CRC32C of everything before it, little-endian.

const egressRecordVersion byte = 1

// maxEgressRecordEntries bounds the entries of one record.
const maxEgressRecordEntries = 1024

// EncodeEgressRecord encodes a batch of committed entries' data.
func EncodeEgressRecord(entries []LogEntry) []byte {
	buf := []byte{egressRecordVersion}
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
	if len(data) < 1+1+4 {
		return nil, nil, fmt.Errorf("egress record: %d bytes is too short", len(data))
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if got := crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)); got != sum {
		return nil, nil, fmt.Errorf("egress record: checksum %08x, want %08x", got, sum)
	}
	if body[0] != egressRecordVersion {
		return nil, nil, fmt.Errorf("egress record: unknown version %d", body[0])
	}
	d := decoder{buf: body[1:]}
	n := d.uvarint("count")
	if d.err == nil && (n == 0 || n > maxEgressRecordEntries) {
		return nil, nil, fmt.Errorf("egress record: %d entries", n)
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
			return nil, nil, fmt.Errorf("egress record: entry %d: %w", i, err)
		}
		evs, raws = append(evs, ev), append(raws, raw)
	}
	if d.err != nil {
		return nil, nil, d.err
	}
	if len(d.buf) != 0 {
		return nil, nil, fmt.Errorf("egress record: %d trailing bytes", len(d.buf))
	}
	return evs, raws, nil
}
