// Package fidelity holds the differential fidelity tests of the simulated
// services (in its test files): seeded random operation sequences, the
// malformed inputs included, run against each simulated service and its real
// counterpart, every answer compared. The coordination store
// (sim/coordstore) runs against an embedded etcd server through
// runtime/etcdcoord, the object store (sim/blobstore) against a filesystem
// bucket through runtime/blob. With -short a few dozen sequences run (a few
// seconds); without, hundreds. Each test logs its agreement per class of
// operation.
package fidelity

import "sort"

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
