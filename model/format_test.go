package model

import (
	"errors"
	"strings"
	"testing"
)

// The core formats with fmt now. The hand-written formatter it replaced
// printed a Stringer's String() for %d ("op?" for an unknown operation).
func TestUnknownOperationPrintsItsNumber(t *testing.T) {
	r := Request{ID: EventUUID{Hi: 1, Lo: 2}, Op: OpKind(99)}
	err := r.Validate()
	if err == nil || !strings.Contains(err.Error(), "unknown operation 99") {
		t.Fatalf("Validate of op 99: %v", err)
	}
	if got := r.ID.String(); got != "0000000000000001-0000000000000002" {
		t.Fatalf("uuid: %q", got)
	}
}

// Decoding errors wrap their sentinel through two %w verbs.
func TestCorruptSnapshotWrapsTheCause(t *testing.T) {
	data := EncodeSnapshot(sampleState(t))
	data[len(data)-1] ^= 1
	_, err := DecodeSnapshot(data)
	if !errors.Is(err, ErrCorruptSnapshot) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("corrupt snapshot: %v", err)
	}
}

func TestRouteKeyFormatsTheSubgraph(t *testing.T) {
	if got := RouteKey(12); got != "routes/subgraphs/00012" {
		t.Fatalf("RouteKey(12) = %q", got)
	}
	sg, err := ParseRouteKey(RouteKey(4095))
	if err != nil || sg != 4095 {
		t.Fatalf("ParseRouteKey round trip: %d %v", sg, err)
	}
}
