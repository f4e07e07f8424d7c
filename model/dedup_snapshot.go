package model

import (
	"encoding/binary"
	"fmt"
)

// The dedup table in a snapshot blob (snapshot.go).

func appendResult(b []byte, r Result) []byte {
	b = append(b, byte(r.Status), byte(r.Reason))
	b = binary.AppendVarint(b, r.Value)
	if r.Exists {
		return append(b, 1)
	}
	return append(b, 0)
}

func (d *decoder) result() Result {
	var r Result
	if d.err != nil {
		return r
	}
	if len(d.buf) < 2 {
		d.err = fmt.Errorf("field result: truncated")
		return r
	}
	r.Status, r.Reason = Status(d.buf[0]), Reason(d.buf[1])
	d.buf = d.buf[2:]
	r.Value = d.varint("result.value")
	if d.err != nil {
		return r
	}
	if len(d.buf) < 1 {
		d.err = fmt.Errorf("field result.exists: truncated")
		return r
	}
	r.Exists = d.buf[0] == 1
	d.buf = d.buf[1:]
	return r
}

// decodeDedup reads a version 3 table (EncodeSnapshot) and restores it.
func (s *SubgraphState) decodeDedup(d *decoder) {
	headSeq := d.uvarint("dedup.head_seq")
	maxTsMs := d.varint("dedup.max_ts_ms")
	q := d.count("dedup", len(d.buf)/20)
	if d.err == nil && q > DedupMaxEntries {
		d.err = fmt.Errorf("dedup table of %d exceeds %d", q, DedupMaxEntries)
	}
	entries, results := make([]dedupEntry, 0, q), make([]Result, 0, q)
	for i := 0; i < q && d.err == nil; i++ {
		e := dedupEntry{id: EventUUID{Hi: d.fixed64("uuid.hi"), Lo: d.fixed64("uuid.lo")}}
		e.tsMs = d.varint("dedup.ts_ms")
		r := d.result()
		entries, results = append(entries, e), append(results, r)
	}
	if d.err == nil {
		if err := s.dedup.restore(headSeq, maxTsMs, entries, results); err != nil {
			d.err = err
		}
	}
}

// decodeLegacyDedup reads a version 1 or 2 table: ids and results in
// eviction order, without stamps. Each entry is stamped with the state's
// last heartbeat (the newest time it folded), so it lives a whole window
// from the snapshot on: never shorter than it would have.
func (s *SubgraphState) decodeLegacyDedup(d *decoder) {
	q := d.count("dedup", len(d.buf)/20)
	if d.err == nil && q > DedupMaxEntries {
		d.err = fmt.Errorf("dedup table of %d exceeds %d", q, DedupMaxEntries)
	}
	entries, results := make([]dedupEntry, 0, q), make([]Result, 0, q)
	for i := 0; i < q && d.err == nil; i++ {
		e := dedupEntry{id: EventUUID{Hi: d.fixed64("uuid.hi"), Lo: d.fixed64("uuid.lo")}, tsMs: s.LastHeartbeatMs}
		r := d.result()
		entries, results = append(entries, e), append(results, r)
	}
	if d.err == nil {
		if err := s.dedup.restore(0, s.LastHeartbeatMs, entries, results); err != nil {
			d.err = err
		}
	}
}
