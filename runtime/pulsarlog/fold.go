package pulsarlog

import (
	"sort"

	"territory/model/logfence"
)

// The messages, the fold that defines a stream's contents, the sequence ids
// and the writer protocol are in territory/model/logfence (sans-IO, run by
// the simulator too). This file keeps the adapter's read index.

type (
	pos  = logfence.Pos
	ckpt = logfence.Ckpt
)

const (
	// MaxLSN is the highest LSN a stream can hold.
	MaxLSN = logfence.MaxLSN

	// checkpointProp is the topic property holding an advisory fold checkpoint.
	checkpointProp = "territory.checkpoint"
)

// index is the LSN→position index of one stream, learned from this
// process's own sends and reads: a sparse, sorted list of checkpoints (one
// every stride LSNs, plus every writer marker) and the latest checkpoint
// known. Committed positions never move, so an entry never goes stale.
type index struct {
	stride uint64
	cks    []ckpt // sorted by position; Tail is non-decreasing along it
	last   ckpt
	has    bool
}

func newIndex(stride uint64) *index { return &index{stride: max(stride, 1)} }

// add records c; keep forces it into the sparse list (markers).
func (ix *index) add(c ckpt, keep bool) {
	if !ix.has || ix.last.At.Less(c.At) {
		ix.last, ix.has = c, true
	}
	if !keep && c.St.Tail%ix.stride != 0 {
		return
	}
	i := sort.Search(len(ix.cks), func(i int) bool { return !ix.cks[i].At.Less(c.At) })
	if i < len(ix.cks) && ix.cks[i].At == c.At {
		return
	}
	ix.cks = append(ix.cks, ckpt{})
	copy(ix.cks[i+1:], ix.cks[i:])
	ix.cks[i] = c
}

// floor returns the checkpoint with the highest position whose tail is at most
// tail: a scan from it meets LSN tail+1 before any later LSN.
func (ix *index) floor(tail uint64) (ckpt, bool) {
	if ix.has && ix.last.St.Tail <= tail {
		return ix.last, true
	}
	i := sort.Search(len(ix.cks), func(i int) bool { return ix.cks[i].St.Tail > tail })
	if i == 0 {
		return ckpt{}, false
	}
	return ix.cks[i-1], true
}

// before returns the checkpoint with the highest position strictly before p.
func (ix *index) before(p pos) (ckpt, bool) {
	if ix.has && ix.last.At.Less(p) {
		return ix.last, true
	}
	i := sort.Search(len(ix.cks), func(i int) bool { return !ix.cks[i].At.Less(p) })
	if i == 0 {
		return ckpt{}, false
	}
	return ix.cks[i-1], true
}
