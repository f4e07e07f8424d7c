package model

import "testing"

// A proxy keeps a replica only of the subgraphs its territory is adjacent to;
// one newly adjacent is read again from its first record, one no longer
// adjacent is dropped (FactProxyDropped) and its stale reads go elsewhere.
func TestProxyKeepsOnlyAdjacentReplicas(t *testing.T) {
	const n = 3
	tr := proxyTerritory(t, n)
	own := adjacentTo(tr, 0, neuronIn(1, n))
	record := func(sg SubgraphID, from, to uint64) []byte {
		var es []LogEntry
		for l := from; l <= to; l++ {
			ev := Event{Type: EvStimulate, Neuron: neuronIn(sg, n), Value: 1, Subgraph: sg, LSN: l, UUID: EventUUID{Hi: 3 + uint64(sg), Lo: l}}
			if l == 1 {
				ev.Type = EvCreateNeuron
			}
			es = append(es, LogEntry{LSN: l, Data: ev.Encode()})
		}
		return EncodeEgressRecord(es)
	}
	stream := [][]byte{record(1, 1, 2), record(2, 1, 3), record(1, 3, 3)}
	d := newProxyDriver(t, tr, stream)
	step := d.step
	if from, facts := step(); from != 1 || len(snapshotFacts(facts)) != 1 {
		t.Fatalf("first record of subgraph 1: read again from %d, facts %v; want its load (no snapshot), then offset 1", from, facts)
	}
	if from, _ := step(); from != 4 {
		t.Fatalf("next read from offset %d, want 4", from)
	}
	if r := tr.Replica(1); r == nil || r.AppliedLSN != 3 {
		t.Fatalf("replica of the adjacent subgraph 1: %+v", r)
	}
	if tr.Replica(2) != nil || tr.Adjacent(2) {
		t.Fatal("a replica of subgraph 2, which no synapse of territory 7 touches")
	}
	// A committed in-slot of own's neuron whose pre is in subgraph 2: adjacent.
	own.saga.in[EventUUID{Hi: 2}] = InSlot{Pre: neuronIn(2, n), Post: neuronIn(0, n), Committed: true}
	if from, _ := step(); from != 2 {
		t.Fatalf("newly adjacent to subgraph 2: the read resumes at offset %d, want its first record at 2", from)
	}
	if _, _ = step(); tr.Replica(2) == nil || tr.Replica(2).AppliedLSN != 3 || tr.Replica(1).AppliedLSN != 3 {
		t.Fatalf("after the re-read: replica 2 %+v, replica 1 at %d", tr.Replica(2), tr.Replica(1).AppliedLSN)
	}
	clear(own.saga.cross)
	_, facts := step()
	dropped := false
	for _, f := range facts {
		if d, ok := f.(FactProxyDropped); ok && d.Subgraph == 1 && d.LSN == 3 {
			dropped = true
		}
	}
	if !dropped || tr.Replica(1) != nil || tr.Replica(2) == nil {
		t.Fatalf("no longer adjacent to subgraph 1: dropped=%v replica 1 %v, facts %v", dropped, tr.Replica(1), facts)
	}
	out := &Outbox{}
	tr.Step(d.now, MessageIn{From: 50, Msg: &Message{Request: &Request{ID: EventUUID{Hi: 9}, Op: OpReadNeuron, Neuron: neuronIn(1, n), Stale: true}}}, out)
	if s := effects[Send](out); len(s) != 1 || s[0].Msg.Reply == nil || s[0].Msg.Reply.Result.Status != StatusWrongTerritory {
		t.Fatalf("a stale read of a dropped replica: %v", out.Effects)
	}
}

// proxyTerritory is territory 7 of a cluster of n subgraphs, with a proxy.
func proxyTerritory(t *testing.T, n uint32) *Territory {
	t.Helper()
	cfg := DefaultTerritoryConfig(7, n)
	cfg.Proxy = true
	tr, err := NewTerritory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
