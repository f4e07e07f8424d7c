package model

import (
	"fmt"
	"hash/crc32"
	"slices"
)

// loader is the snapshot-loader component: a claim that starts from nothing
// lists the subgraph's snapshot records and tries the committed one, then
// superseded ones from the newest (the copy in the local disk cache first, if
// it is one of them), and falls back to the whole log when none is good. A
// blob that fails its checksum is never loaded. Then the claimer opens the log.
type loader struct {
	noHooks
	t    *Territory
	id   compID
	subs perSubgraph[loadState]
}

type loadState struct {
	cands     []SnapshotRecord // still to try, best first
	tries     int              // failed attempts of the current step
	rejected  int              // candidates whose blob was missing or corrupt
	fromCache bool
}

// The loader's calls and timers.
const (
	loadRange     uint8 = iota // list the snapshot records
	loadCacheRead              // read the local disk cache
	loadBlob                   // get a candidate's blob
	loadRetry                  // timer: list again, or get the blob again
)

func newLoader(t *Territory) *loader {
	k := &loader{t: t, subs: make(perSubgraph[loadState])}
	k.id = t.register(k)
	return k
}

func (k *loader) steppedDown(p *primary) { delete(k.subs, p.sg) }

// load starts loading p's latest good snapshot.
func (k *loader) load(p *primary) {
	s := k.subs.of(p)
	s.tries = 0
	k.listRecords(p)
}

func (k *loader) listRecords(p *primary) {
	k.t.coord(scoped(k.id, loadRange, p), CoordRequest{Kind: CoordRange, Key: SnapshotPrefix(p.sg)})
}

func (k *loader) onTimer(p *primary, c call) {
	if c.tag == loadRetry {
		k.listRecords(p) // list again: a record may have changed meanwhile
	}
}

func (k *loader) onResult(p *primary, c call, res *result) {
	s := k.subs.of(p)
	switch c.tag {
	case loadRange:
		k.onRange(p, s, res)
	case loadCacheRead:
		k.onCacheRead(p, s, res)
	case loadBlob:
		k.onBlob(p, s, res)
	default:
		panic(fmt.Sprintf("territory %d: load result for tag %d", k.t.cfg.ID, c.tag))
	}
}

func (k *loader) onRange(p *primary, s *loadState, res *result) {
	t := k.t
	if !res.ok() {
		s.tries++
		if s.tries >= t.cfg.LoadAttempts {
			k.loaded(p, s, nil)
			return
		}
		t.after(scoped(k.id, loadRetry, p), s.tries)
		return
	}
	s.cands = s.cands[:0]
	for _, kv := range res.Coord.KVs {
		r, err := ParseSnapshotRecord(kv)
		if err != nil {
			t.out.Add(badCoordValue(t.cfg.ID, kv.Key, err)) // not a candidate
			continue
		}
		if (r.State == SnapCommitted || r.State == SnapSuperseded) && r.Location != "" {
			s.cands = append(s.cands, r)
		}
	}
	slices.SortFunc(s.cands, func(a, b SnapshotRecord) int {
		if (a.State == SnapCommitted) != (b.State == SnapCommitted) {
			if a.State == SnapCommitted {
				return -1
			}
			return 1
		}
		switch {
		case a.LSN > b.LSN:
			return -1
		case a.LSN < b.LSN:
			return 1
		}
		return 0
	})
	s.tries, s.rejected = 0, 0
	if len(s.cands) == 0 {
		k.tryCandidate(p, s)
		return
	}
	t.disk(scoped(k.id, loadCacheRead, p), DiskRequest{Kind: DiskRead, Path: SnapshotCachePath(p.sg)})
}

// good decodes data if it is the snapshot cand names (SnapshotFor).
func (k *loader) good(p *primary, cand SnapshotRecord, data []byte) *SubgraphState {
	s, _ := SnapshotFor(cand, k.t.cfg.Subgraphs, data)
	return s
}

// SnapshotFor decodes data if it is the snapshot cand names: its size and
// checksum, its subgraph (of count) and LSN; else it says what failed.
func SnapshotFor(cand SnapshotRecord, count uint32, data []byte) (*SubgraphState, error) {
	if len(data) != cand.Size || crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) != cand.Checksum {
		return nil, fmt.Errorf("snapshot %s: %d bytes with checksum %08x, the record says %d and %08x", cand.UUID, len(data),
			crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)), cand.Size, cand.Checksum)
	}
	s, err := DecodeSnapshot(data)
	switch {
	case err != nil:
		return nil, fmt.Errorf("snapshot %s: %w", cand.UUID, err)
	case s.ID != cand.Subgraph || s.Count != count || s.AppliedLSN != cand.LSN:
		return nil, fmt.Errorf("snapshot %s: subgraph %d of %d at LSN %d, the record says %d of %d at %d", cand.UUID, s.ID, s.Count, s.AppliedLSN,
			cand.Subgraph, count, cand.LSN)
	}
	return s, nil
}

// onCacheRead: local disk may lose unsynced writes, tear a write or return
// corrupt bytes: a cached snapshot is used only if it is good for one of the
// candidates.
func (k *loader) onCacheRead(p *primary, s *loadState, res *result) {
	if p.phase != phaseLoading {
		return
	}
	if res.ok() {
		for _, cand := range s.cands {
			if st := k.good(p, cand, res.Disk.Data); st != nil {
				s.cands = []SnapshotRecord{cand}
				s.fromCache = true
				k.loaded(p, s, st)
				return
			}
		}
	}
	k.tryCandidate(p, s)
}

func (k *loader) tryCandidate(p *primary, s *loadState) {
	if len(s.cands) == 0 {
		k.loaded(p, s, nil)
		return
	}
	k.t.blob(scoped(k.id, loadBlob, p), BlobRequest{Kind: BlobGet, Key: s.cands[0].Location})
}

func (k *loader) onBlob(p *primary, s *loadState, res *result) {
	if len(s.cands) == 0 {
		return
	}
	cand := s.cands[0]
	// Retry what may pass on a retry; a missing object or a location that is
	// no valid key (ErrInvalid: a damaged record) never will.
	if res.Outcome == OutcomeTimeout || (res.Outcome == OutcomeFailed && res.Err != ErrNotFound && res.Err != ErrInvalid) {
		s.tries++
		if s.tries < k.t.cfg.LoadAttempts {
			k.t.after(scoped(k.id, loadRetry, p), s.tries)
			return
		}
	}
	if res.ok() {
		if st := k.good(p, cand, res.Blob.Data); st != nil {
			k.loaded(p, s, st)
			return
		}
	}
	// Missing, partial or corrupt: never loaded. Try the next one.
	s.cands = s.cands[1:]
	s.tries = 0
	s.rejected++
	k.tryCandidate(p, s)
}

// loaded finishes loading (st nil: start from the empty state at LSN 0) and
// has the claimer open the log.
func (k *loader) loaded(p *primary, s *loadState, st *SubgraphState) {
	t := k.t
	f := FactSnapshotLoaded{Territory: t.cfg.ID, Subgraph: p.sg, Rejected: s.rejected, FromCache: s.fromCache}
	s.fromCache = false
	if st != nil {
		p.state = st
		p.snapLSN = st.AppliedLSN
		f.UUID, f.LSN = s.cands[0].UUID, st.AppliedLSN
	}
	s.cands = nil
	t.observe(f)
	t.claims.open(p)
}
