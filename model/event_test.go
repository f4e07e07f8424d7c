package model

import (
	"encoding/hex"
	"errors"
	"testing"
)

func sampleEvents() []Event {
	return []Event{
		{LSN: 1, UUID: EventUUID{1, 2}, Subgraph: 3, Type: EvCreateNeuron, WriterEpoch: 1, Neuron: 42},
		{LSN: 2, UUID: EventUUID{1, 3}, Subgraph: 3, Type: EvStimulate, WriterEpoch: 1, Neuron: 42, Value: -3 * FixedOne},
		{LSN: 300, UUID: EventUUID{^uint64(0), 1}, Subgraph: 4095, Type: EvConnect, WriterEpoch: 7, Pre: 1 << 60, Post: 9, Value: WeightMax},
		{LSN: 4, Subgraph: 0, Type: EvAdoptPolicy, WriterEpoch: 2, Policy: Policy{Epoch: 9, MaxOutDegree: 3, MaxInDegree: 4, DecayPerSecondPM: 5, SupernodeDegree: 6, SnapshotEvery: 7}},
		{LSN: 5, Subgraph: 1, Type: EvTerritoryRecovered, WriterEpoch: 2, TimestampMs: 1_700_000_000_000, Recovery: RecoveryBody{LastHeartbeatMs: 1_699_999_990_000}},
	}
}

func TestEventRoundTrip(t *testing.T) {
	for _, ev := range sampleEvents() {
		got, err := DecodeEvent(ev.Encode())
		if err != nil {
			t.Fatalf("%v: %v", ev.Type, err)
		}
		if got != ev {
			t.Fatalf("round trip changed the event:\n got %+v\nwant %+v", got, ev)
		}
	}
}

func TestDecodeRejectsEveryCorruption(t *testing.T) {
	data := sampleEvents()[2].Encode()
	for i := range data {
		for _, bit := range []byte{0x01, 0x80} {
			bad := append([]byte(nil), data...)
			bad[i] ^= bit
			if _, err := DecodeEvent(bad); !errors.Is(err, ErrCorruptEvent) {
				t.Fatalf("flipping bit %#x of byte %d: err %v", bit, i, err)
			}
		}
	}
	for n := 0; n < len(data); n++ {
		if _, err := DecodeEvent(data[:n]); !errors.Is(err, ErrCorruptEvent) {
			t.Fatalf("truncated to %d bytes: err %v", n, err)
		}
	}
	if _, err := DecodeEvent(append(data, 0)); !errors.Is(err, ErrCorruptEvent) {
		t.Fatalf("trailing byte accepted: %v", err)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, ev := range sampleEvents() {
		f.Add(ev.Encode())
	}
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4, 5, 6})
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data) // must never panic
		if err != nil {
			return
		}
		again, err := DecodeEvent(ev.Encode())
		if err != nil || again != ev {
			t.Fatalf("a decoded event does not round-trip: %+v -> %+v (%v)", ev, again, err)
		}
	})
}

// TestEventBytesAreStable: typed bodies did not change the encoding; these
// bytes were written by the version-1 codec before the recovery's last
// heartbeat moved from Value to Recovery, and logs hold them.
func TestEventBytesAreStable(t *testing.T) {
	for _, c := range []struct {
		ev  Event
		hex string
	}{
		{Event{LSN: 41, UUID: RecoveryUUID(3, 7), Subgraph: 3, Type: EvTerritoryRecovered, WriterEpoch: 7, TimestampMs: 1_700_000_123_456,
			Recovery: RecoveryBody{LastHeartbeatMs: 1_700_000_100_000}},
			"01072903000000000000a007000000000000000307000000c0bab7fef96280a9bafef962775b9d4e"},
		{Event{LSN: 42, UUID: EventUUID{Hi: 5, Lo: 9}, Subgraph: 3, Type: EvStimulate, WriterEpoch: 7, Neuron: 19, Value: -250, TimestampMs: 1_700_000_123_999},
			"01022a050000000000000009000000000000000307130000f303beb1bafef962cc88a614"},
	} {
		if got := hex.EncodeToString(c.ev.Encode()); got != c.hex {
			t.Errorf("%s: encoding %s, want %s", c.ev.Type, got, c.hex)
		}
		raw, _ := hex.DecodeString(c.hex)
		got, err := DecodeEvent(raw)
		if err != nil || got != c.ev {
			t.Errorf("%s: decoded %+v (%v), want %+v", c.ev.Type, got, err, c.ev)
		}
	}
}
