package bad

import (
	"maps"
	"slices"
	"sort"
)

type byName map[string]int

func mapOrder(m map[string]int, n byName) []string {
	var out []string
	for k := range m { // want `range over a map without an order marker`
		out = append(out, k)
	}
	for k := range n { // want `range over a map without an order marker`
		out = append(out, k)
	}
	// order:
	for k := range m { // want `range over a map without an order marker`
		out = append(out, k)
	}
	// order: the marker must be on the line just above.
	out = append(out, "")
	for k := range m { // want `range over a map without an order marker`
		out = append(out, k)
	}
	/* order: a block comment is not the marker */
	for k := range m { // want `range over a map without an order marker`
		out = append(out, k)
	}
	out = slices.Collect(maps.Keys(m)) // want `maps.Keys \(map iteration order\) without an order marker`
	for v := range maps.Values(m) {    // want `maps.Values`
		_ = v
	}
	for k, v := range maps.All(m) { // want `maps.All`
		_, _ = k, v
	}
	sort.Strings(out)
	return out
}

func explained(m map[string]int) (int, []string) {
	sum := 0
	// order: summing is commutative.
	for _, v := range m {
		sum += v
	}
	for _, v := range m { // order: summing is commutative.
		sum += v
	}
	keys := make([]string, 0, len(m))
	// The keys are collected and then sorted, so
	// order: the result is sorted before it is returned.
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	sorted := slices.Sorted(maps.Keys(m))
	byLen := slices.SortedFunc(maps.Values(m), func(a, b int) int { return a - b })
	_ = byLen
	for _, s := range []string{"a"} { // a slice needs no marker
		_ = s
	}
	clear(m)
	return sum, append(keys, sorted...)
}
