// Package good uses everything the core may use: no diagnostics.
package good

import (
	"bytes"
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"iter"
	"maps"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"territory/model/helper"
)

// ErrBad is a sentinel.
var ErrBad = errors.New("bad")

var kindNames = [...]string{"a", "b"}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Seq yields 0..n-1.
func Seq(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

// Use touches each allowed package.
func Use(m map[string]int) (string, error) {
	var b bytes.Buffer
	b.WriteString(strings.ToUpper(kindNames[0]))
	b.WriteString(strconv.Itoa(cmp.Compare(1, 2)))
	h := &intHeap{3, 1}
	heap.Init(h)
	buf := binary.AppendUvarint(nil, uint64(bits.OnesCount(7)))
	sum := crc32.Checksum(buf, crc32.MakeTable(crc32.Castagnoli))
	keys := slices.Sorted(maps.Keys(m))
	sort.Strings(keys)
	_ = math.MaxInt64
	_ = utf8.RuneLen('x')
	_ = helper.Table[0]
	if errors.Is(helper.ErrHelper, ErrBad) {
		return "", fmt.Errorf("use: %w", ErrBad)
	}
	return fmt.Sprintf("%s %d %v", b.String(), sum, keys), nil
}
