package model

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

func TestEgressRecordRoundTrip(t *testing.T) {
	var entries []LogEntry
	for lsn := uint64(1); lsn <= 5; lsn++ {
		ev := Event{LSN: lsn, UUID: EventUUID{Hi: 1, Lo: lsn}, Subgraph: 3, Type: EvStimulate, Neuron: 7, Value: int64(lsn)}
		entries = append(entries, LogEntry{LSN: lsn, Data: ev.Encode()})
	}
	rec := EncodeEgressRecord(entries)
	evs, raws, err := DecodeEgressRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 5 {
		t.Fatalf("%d events", len(evs))
	}
	for i := range evs {
		if evs[i].LSN != uint64(i+1) || evs[i].Subgraph != 3 || !bytes.Equal(raws[i], entries[i].Data) {
			t.Fatalf("event %d: %+v", i, evs[i])
		}
	}
	// Every truncation and every flipped byte is refused, never a panic.
	for n := 0; n < len(rec); n++ {
		if _, _, err := DecodeEgressRecord(rec[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: decoded", n)
		}
	}
	for i := range rec {
		bad := bytes.Clone(rec)
		bad[i] ^= 0x41
		if _, _, err := DecodeEgressRecord(bad); err == nil {
			t.Fatalf("byte %d flipped: decoded", i)
		}
	}
}

func TestEgressConfigValidate(t *testing.T) {
	if err := DefaultEgressConfig(1, 4).Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultEgressConfig(1, 4)
	c.LeaseTTLMs = c.TickMs
	if c.Validate() == nil {
		t.Fatal("a lease of one tick accepted")
	}
}

// A record carries the subgraph's committed tail at the egress read; a
// version-1 record (no tail) decodes with its last LSN as the tail.
func TestEgressRecordTail(t *testing.T) {
	ev := Event{LSN: 4, UUID: EventUUID{Hi: 1, Lo: 4}, Subgraph: 2, Type: EvStimulate, Neuron: 7, Value: 1}
	entries := []LogEntry{{LSN: 4, Data: ev.Encode()}}
	if _, _, tail, err := DecodeEgressRecordTail(EncodeEgressRecordTail(entries, 90)); err != nil || tail != 90 {
		t.Fatalf("tail %d, %v; want 90", tail, err)
	}
	// version 1: version byte, count, entry, checksum
	v1 := []byte{1}
	v1 = binary.AppendUvarint(v1, 1)
	v1 = binary.AppendUvarint(v1, uint64(len(entries[0].Data)))
	v1 = append(v1, entries[0].Data...)
	v1 = binary.LittleEndian.AppendUint32(v1, crc32.Checksum(v1, crc32.MakeTable(crc32.Castagnoli)))
	if evs, _, tail, err := DecodeEgressRecordTail(v1); err != nil || len(evs) != 1 || tail != 4 {
		t.Fatalf("version 1: %d events, tail %d, %v", len(evs), tail, err)
	}
}
