package model

import (
	"bytes"
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
