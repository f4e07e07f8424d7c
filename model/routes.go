package model

import (
	"fmt"
	"strconv"
	"strings"
)

// Coordination-store layout. Keys sort in subgraph order because the id is
// zero-padded.
const (
	RoutesPrefix = "routes/subgraphs/"
	PolicyKey    = "policy/current"
)

// RouteKey is the key of a subgraph's route.
func RouteKey(sg SubgraphID) string { return fmt.Sprintf("%s%05d", RoutesPrefix, sg) }

// Route is the value of a route key: the subgraph's primary and its writer
// epoch. A territory that claims a subgraph bumps the epoch by compare-and-swap
// before it opens the log stream at that epoch, so the epoch in the route is
// also the log's fencing epoch.
type Route struct {
	Subgraph SubgraphID
	Primary  HostID
	Epoch    uint64
	// ModRevision is the key's revision when read (not part of the value).
	ModRevision int64
}

// EncodeRoute is the value stored under RouteKey. It is plain text so that
// `etcdctl get` shows something a person can read.
func EncodeRoute(primary HostID, epoch uint64) []byte {
	return []byte(fmt.Sprintf("primary=%d epoch=%d", primary, epoch))
}

// ParseRouteKey returns the subgraph of a route key.
func ParseRouteKey(key string) (SubgraphID, error) {
	rest, ok := strings.CutPrefix(key, RoutesPrefix)
	if !ok {
		return 0, fmt.Errorf("route key %q: missing prefix %q", key, RoutesPrefix)
	}
	n, err := strconv.ParseUint(rest, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("route key %q: %w", key, err)
	}
	return SubgraphID(n), nil
}

// ParseRoute decodes one route KV.
func ParseRoute(kv KV) (Route, error) {
	sg, err := ParseRouteKey(kv.Key)
	if err != nil {
		return Route{}, err
	}
	r := Route{Subgraph: sg, ModRevision: kv.ModRevision}
	var sawPrimary, sawEpoch bool
	for _, field := range strings.Fields(string(kv.Value)) {
		name, val, ok := strings.Cut(field, "=")
		if !ok {
			return Route{}, fmt.Errorf("route %s: field %q is not name=value", kv.Key, field)
		}
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return Route{}, fmt.Errorf("route %s: field %s: %w", kv.Key, name, err)
		}
		switch name {
		case "primary":
			if n > 1<<32-1 {
				return Route{}, fmt.Errorf("route %s: primary %d out of range", kv.Key, n)
			}
			r.Primary, sawPrimary = HostID(n), true
		case "epoch":
			r.Epoch, sawEpoch = n, true
		default:
			return Route{}, fmt.Errorf("route %s: unknown field %q", kv.Key, name)
		}
	}
	if !sawPrimary || !sawEpoch {
		return Route{}, fmt.Errorf("route %s: value %q lacks primary or epoch", kv.Key, kv.Value)
	}
	return r, nil
}

// EncodePolicy is the value of PolicyKey.
func EncodePolicy(p Policy) []byte {
	return []byte(fmt.Sprintf("epoch=%d max_out_degree=%d max_in_degree=%d decay_per_second_pm=%d supernode_degree=%d snapshot_every=%d",
		p.Epoch, p.MaxOutDegree, p.MaxInDegree, p.DecayPerSecondPM, p.SupernodeDegree, p.SnapshotEvery))
}

// ParsePolicy decodes the value of PolicyKey and validates it.
func ParsePolicy(value []byte) (Policy, error) {
	var p Policy
	seen := map[string]bool{}
	for _, field := range strings.Fields(string(value)) {
		name, val, ok := strings.Cut(field, "=")
		if !ok {
			return Policy{}, fmt.Errorf("policy: field %q is not name=value", field)
		}
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return Policy{}, fmt.Errorf("policy: field %s: %w", name, err)
		}
		if name != "epoch" && n > 1<<32-1 {
			return Policy{}, fmt.Errorf("policy: field %s: %d out of range", name, n)
		}
		switch name {
		case "epoch":
			p.Epoch = n
		case "max_out_degree":
			p.MaxOutDegree = uint32(n)
		case "max_in_degree":
			p.MaxInDegree = uint32(n)
		case "decay_per_second_pm":
			p.DecayPerSecondPM = uint32(n)
		case "supernode_degree":
			p.SupernodeDegree = uint32(n)
		case "snapshot_every":
			p.SnapshotEvery = uint32(n)
		default:
			return Policy{}, fmt.Errorf("policy: unknown field %q", name)
		}
		seen[name] = true
	}
	if !seen["epoch"] {
		return Policy{}, fmt.Errorf("policy: missing epoch in %q", value)
	}
	return p, p.Validate()
}
