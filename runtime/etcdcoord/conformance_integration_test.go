//go:build integration

package etcdcoord

import (
	"testing"

	"territory/conformance"
)

// TestConformanceCluster: the production store is etcd itself. Embedded etcd
// (runtime/etcdembed) runs etcd's own server code, so a 3-member cluster on
// loopback is the real service: raft replication, a leader, followers
// forwarding, lease expiry decided by the leader. Each client of a case talks
// to a different member.
func TestConformanceCluster(t *testing.T) {
	eps := startCluster(t, 3)
	conformance.Run(t, conformance.CoordCases(), nil, func(t *testing.T) conformance.CoordService {
		return &etcdCoord{t: t, eps: eps}
	})
}
