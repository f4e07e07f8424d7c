package model

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
)

// The saga records of a snapshot (version 2): reservations, committed cross
// synapses, pending unlinks and in-slots, each sorted, each length-prefixed.
// Since version 4 a reservation holds its client's event_uuid after its id.

func (g *sagaState) records() int { return len(g.out) + len(g.cross) + len(g.unlinks) + len(g.in) }

func appendUUID(b []byte, id EventUUID) []byte {
	b = binary.LittleEndian.AppendUint64(b, id.Hi)
	return binary.LittleEndian.AppendUint64(b, id.Lo)
}

func (s *SubgraphState) appendSagas(b []byte) []byte {
	g := &s.saga
	b = binary.AppendUvarint(b, g.seq)
	ids := s.OutSagas()
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		o := g.out[id]
		b = appendUUID(b, id)
		b = appendUUID(b, o.Client)
		b = binary.AppendUvarint(b, uint64(o.Pre))
		b = binary.AppendUvarint(b, uint64(o.Post))
		b = binary.AppendVarint(b, o.Weight)
		b = binary.AppendVarint(b, o.ReservedAtMs)
	}
	keys := s.CrossSynapses()
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(k.Pre))
		b = binary.AppendUvarint(b, uint64(k.Post))
		b = appendUUID(b, g.cross[k])
	}
	ids = s.Unlinks()
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		k := g.unlinks[id]
		b = appendUUID(b, id)
		b = binary.AppendUvarint(b, uint64(k.Pre))
		b = binary.AppendUvarint(b, uint64(k.Post))
	}
	ids = s.InSlots()
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		x := g.in[id]
		b = appendUUID(b, id)
		b = binary.AppendUvarint(b, uint64(x.Pre))
		b = binary.AppendUvarint(b, uint64(x.Post))
		if x.Committed {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	return b
}

func (d *decoder) uuid(field string) EventUUID {
	return EventUUID{Hi: d.fixed64(field + ".hi"), Lo: d.fixed64(field + ".lo")}
}

func (d *decoder) flag(field string) bool {
	if d.err != nil {
		return false
	}
	if len(d.buf) < 1 || d.buf[0] > 1 {
		d.err = fmt.Errorf("field %s: truncated or not 0/1", field)
		return false
	}
	v := d.buf[0] == 1
	d.buf = d.buf[1:]
	return v
}

func (s *SubgraphState) decodeSagas(d *decoder, instances bool) {
	g := &s.saga
	g.seq = d.uvarint("saga.seq")
	n := d.count("saga.out", len(d.buf)/19)
	for i := 0; i < n && d.err == nil; i++ {
		id := d.uuid("saga.out.id")
		client := id // before version 4 a saga was named by its client's event_uuid
		if instances {
			client = d.uuid("saga.out.client")
		}
		o := OutSaga{Client: client, Pre: NeuronID(d.uvarint("pre")), Post: NeuronID(d.uvarint("post")), Weight: d.varint("weight"), ReservedAtMs: d.varint("reserved_at_ms")}
		if _, dup := g.open[client]; dup && d.err == nil {
			d.err = fmt.Errorf("field saga.out: client %s holds two reservations", client)
		}
		g.out[id] = o
		g.reserved[SynapseKey{o.Pre, o.Post}] = id
		g.open[client] = id
	}
	n = d.count("saga.cross", len(d.buf)/18)
	for i := 0; i < n && d.err == nil; i++ {
		k := SynapseKey{Pre: NeuronID(d.uvarint("pre")), Post: NeuronID(d.uvarint("post"))}
		g.cross[k] = d.uuid("saga.cross.id")
	}
	n = d.count("saga.unlinks", len(d.buf)/18)
	for i := 0; i < n && d.err == nil; i++ {
		id := d.uuid("saga.unlink.id")
		g.unlinks[id] = SynapseKey{Pre: NeuronID(d.uvarint("pre")), Post: NeuronID(d.uvarint("post"))}
	}
	n = d.count("saga.in", len(d.buf)/19)
	for i := 0; i < n && d.err == nil; i++ {
		id := d.uuid("saga.in.id")
		g.in[id] = InSlot{Pre: NeuronID(d.uvarint("pre")), Post: NeuronID(d.uvarint("post")), Committed: d.flag("committed")}
	}
}

// checkSagas adds the saga records to the degree counts a snapshot is
// checked against, and checks the records agree with the synapses: every
// committed cross synapse has its record and no record lacks its synapse,
// reservations and in-slots name neurons of the right side.
func (s *SubgraphState) checkSagas(in, out map[NeuronID]uint32) error {
	g := &s.saga
	for _, id := range s.OutSagas() {
		o := g.out[id]
		k := SynapseKey{o.Pre, o.Post}
		if _, ok := s.neurons[o.Pre]; !ok || !s.crossKey(k) {
			return fmt.Errorf("reservation %s n%d->n%d: pre not here or post not elsewhere", id, o.Pre, o.Post)
		}
		if _, ok := s.synapses[k]; ok {
			return fmt.Errorf("reservation %s n%d->n%d of a synapse that exists", id, o.Pre, o.Post)
		}
		out[o.Pre]++
	}
	if len(g.reserved) != len(g.out) {
		return fmt.Errorf("%d reservations hold %d keys", len(g.out), len(g.reserved))
	}
	for _, k := range s.CrossSynapses() {
		if _, ok := s.synapses[k]; !ok || !s.crossKey(k) {
			return fmt.Errorf("cross synapse record n%d->n%d without its synapse", k.Pre, k.Post)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(s.synapses), compareSynapse) {
		if _, ok := g.cross[k]; s.crossKey(k) && !ok {
			return fmt.Errorf("cross synapse n%d->n%d without its saga record", k.Pre, k.Post)
		}
	}
	for _, id := range s.InSlots() {
		x := g.in[id]
		if _, ok := s.neurons[x.Post]; !ok {
			return fmt.Errorf("in-slot %s n%d->n%d without its post neuron", id, x.Pre, x.Post)
		}
		in[x.Post]++
	}
	return nil
}
