package model

import "fmt"

// The dedup table: the results of recent requests by event_uuid, so that a
// retried request gets its original answer instead of a second application.
// It is part of the subgraph state: rebuilt by the fold, snapshotted, and
// digested.
//
// An entry lives for a window of logged time, not for a number of writes. A
// table of the last N writes (what came before: 4,096) lets a retry apply
// twice as soon as a subgraph takes N writes within one client deadline
// (about 820 writes/s against 5 s); a window of time does not depend on the
// write rate. The clock is the events' own TimestampMs, carried in the log,
// so a replay rebuilds exactly the same table: an entry is evicted when the
// newest timestamp folded so far is more than DedupWindowMs past its own.

// DedupWindowMs is how long, in logged time, a request's result is kept. It
// is four times the longest client deadline that ClientConfig.Validate
// accepts (MaxOpDeadlineMs), so a retry sent just before its deadline is
// still recognised when the writers' clocks disagree by up to
// DedupWindowMs - MaxOpDeadlineMs (15 s): successive events of a subgraph
// can be stamped by different hosts after a failover.
const DedupWindowMs = 20_000

// MaxOpDeadlineMs is the longest operation deadline a client may have.
const MaxOpDeadlineMs = DedupWindowMs / 4

// DedupMaxEntries bounds the table's memory whatever the write rate: when a
// subgraph holds more than this within the window, the oldest entries go
// early. At 65,536 over 20 s that is above 3,200 writes/s on one subgraph,
// more than 5 times what one subgraph commits today (one append in flight,
// about 560/s); TestDedupAtTenTimesTheRate checks a retry at 8,200 writes/s.
const DedupMaxEntries = 1 << 16

type dedupEntry struct {
	id   EventUUID
	tsMs int64
}

type dedupResult struct {
	r   Result
	seq uint64 // the entry that recorded it; an older entry of the id evicts nothing
}

type dedupTable struct {
	queue   []dedupEntry // insertion order; queue[head:] are live
	head    int
	headSeq uint64 // sequence number of queue[head]; entries are numbered from 0
	maxTsMs int64  // newest timestamp put: the clock of eviction
	results map[EventUUID]dedupResult
	sum     uint64 // set hash of the live entries and the results (entryHash, resultHash)
}

func newDedupTable() dedupTable {
	return dedupTable{results: make(map[EventUUID]dedupResult)}
}

func (d *dedupTable) len() int { return len(d.queue) - d.head }

func (d *dedupTable) get(id EventUUID) (Result, bool) {
	r, ok := d.results[id]
	return r.r, ok
}

// put records id's result, stamped tsMs, and evicts what fell out of the
// window (or beyond DedupMaxEntries).
func (d *dedupTable) put(id EventUUID, r Result, tsMs int64) {
	seq := d.headSeq + uint64(d.len())
	d.queue = append(d.queue, dedupEntry{id: id, tsMs: tsMs})
	d.sum += entryHash(seq, id, tsMs)
	if old, ok := d.results[id]; ok {
		d.sum -= resultHash(id, old.r)
	}
	d.results[id] = dedupResult{r: r, seq: seq}
	d.sum += resultHash(id, r)
	d.maxTsMs = max(d.maxTsMs, tsMs)
	d.evict()
}

// evict drops entries from the front: those older than the window, and any
// beyond DedupMaxEntries. The front is the oldest inserted; an entry stamped
// earlier than one in front of it (a writer whose clock is behind) waits for
// that one, so it only lives longer than its window, never shorter.
func (d *dedupTable) evict() {
	for d.len() > 0 {
		e := d.queue[d.head]
		if d.len() <= DedupMaxEntries && e.tsMs >= d.maxTsMs-DedupWindowMs {
			break
		}
		d.sum -= entryHash(d.headSeq, e.id, e.tsMs)
		if res, ok := d.results[e.id]; ok && res.seq == d.headSeq {
			d.sum -= resultHash(e.id, res.r)
			delete(d.results, e.id)
		}
		d.queue[d.head] = dedupEntry{}
		d.head++
		d.headSeq++
	}
	// Compact once the dead prefix is most of the slice: amortised O(1).
	if d.head > 1024 && d.head > len(d.queue)/2 {
		n := copy(d.queue, d.queue[d.head:])
		clear(d.queue[n:])
		d.queue = d.queue[:n]
		d.head = 0
	}
}

// restore is put for a decoded snapshot: the entries in order from headSeq,
// the results of the entries that recorded them, and the clock. The table is
// rebuilt exactly as it was, eviction included, so it digests the same.
func (d *dedupTable) restore(headSeq uint64, maxTsMs int64, entries []dedupEntry, results []Result) error {
	if d.len() != 0 {
		panic("model: restore into a non-empty dedup table")
	}
	d.headSeq, d.maxTsMs = headSeq, maxTsMs
	for i, e := range entries {
		if e.tsMs > maxTsMs {
			return fmt.Errorf("dedup entry %d stamped %d, after the table's clock %d", i, e.tsMs, maxTsMs)
		}
		seq := headSeq + uint64(i)
		d.queue = append(d.queue, e)
		d.sum += entryHash(seq, e.id, e.tsMs)
		if old, ok := d.results[e.id]; ok {
			d.sum -= resultHash(e.id, old.r)
		}
		d.results[e.id] = dedupResult{r: results[i], seq: seq}
		d.sum += resultHash(e.id, results[i])
	}
	if d.len() > DedupMaxEntries {
		return fmt.Errorf("dedup table of %d entries exceeds %d", d.len(), DedupMaxEntries)
	}
	if d.len() > 0 && d.queue[d.head].tsMs < maxTsMs-DedupWindowMs {
		return fmt.Errorf("dedup entry stamped %d is older than the window at %d", d.queue[d.head].tsMs, maxTsMs)
	}
	return nil
}

// live calls fn for each live entry, oldest first, with the result it
// recorded (ok=false: a later entry of the same id holds the result).
func (d *dedupTable) live(fn func(seq uint64, e dedupEntry, r Result, ok bool)) {
	for i, e := range d.queue[d.head:] {
		seq := d.headSeq + uint64(i)
		res := d.results[e.id]
		fn(seq, e, res.r, res.seq == seq)
	}
}

func (d *dedupTable) clone() dedupTable {
	c := dedupTable{queue: append([]dedupEntry(nil), d.queue[d.head:]...), headSeq: d.headSeq, maxTsMs: d.maxTsMs,
		results: make(map[EventUUID]dedupResult, len(d.results)), sum: d.sum}
	for id, r := range d.results { // order: a map copy
		c.results[id] = r
	}
	return c
}

// fullSum recomputes the table's set hash from its entries and results.
func (d *dedupTable) fullSum() uint64 {
	var sum uint64
	for i, e := range d.queue[d.head:] {
		sum += entryHash(d.headSeq+uint64(i), e.id, e.tsMs)
	}
	for id, r := range d.results { // order: a sum, the same in any order
		sum += resultHash(id, r.r)
	}
	return sum
}

// entryHash is one live entry: its place in insertion order (which decides
// eviction), its id and its stamp.
func entryHash(seq uint64, id EventUUID, tsMs int64) uint64 {
	return hash3(0x64^seq<<8, id.Hi, id.Lo, uint64(tsMs))
}
