// Package faults defines the fault kinds and the fault schedule: plain data
// (JSON) that is generated from a seed, carried by a replay file, shrunk by
// removing entries, and editable by hand. The simulator executes a schedule;
// the chaos driver will execute the same schedule against real processes.
package faults

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Kind names a fault.
type Kind string

const (
	// NetPartition cuts every link between Hosts and Peers, both ways, for DurationMs.
	NetPartition Kind = "net.partition"
	// NetPartitionOneWay drops messages from Hosts to Peers only.
	NetPartitionOneWay Kind = "net.partition-one-way"
	// NetDegrade sets drop, duplicate, reorder and delay-spike odds (per
	// million) on every link for DurationMs.
	NetDegrade Kind = "net.degrade"
	// HostCrash crashes Hosts (all volatile state gone) and restarts them after DurationMs.
	HostCrash Kind = "host.crash"
	// HostLoss loses Hosts for good: crashed, disk wiped, never restarted
	// (DurationMs is ignored). Their subgraphs must be recovered elsewhere
	// from the object store and the log alone.
	HostLoss Kind = "host.loss"
	// HostPause freezes Hosts for DurationMs (a stop-the-world pause): nothing
	// runs, inputs wait; then it resumes as if nothing happened.
	HostPause Kind = "host.pause"
	// ClockSkew offsets the wall clock of Hosts by ExtraMs (either sign) for DurationMs.
	ClockSkew Kind = "clock.skew"
	// ClockDrift makes the clocks of Hosts run RatePM parts per million fast
	// for DurationMs (their timers fire early by as much).
	ClockDrift Kind = "clock.drift"
	// ClockJump steps the wall clock of Hosts by ExtraMs (either sign), for good.
	ClockJump Kind = "clock.jump"
	// CoordSlow adds ExtraMs to every coordination-store operation.
	CoordSlow Kind = "coord.slow"
	// CoordUnreachable makes the coordination store unreachable from Hosts.
	CoordUnreachable Kind = "coord.unreachable"
	// CoordSessionExpiry expires every lease the Hosts hold.
	CoordSessionExpiry Kind = "coord.session-expiry"
	// LogBookieCrash crashes bookie Bookie and restarts it after DurationMs (its disk survives).
	LogBookieCrash Kind = "log.bookie-crash"
	// LogBookieStall stalls bookie Bookie for DurationMs.
	LogBookieStall Kind = "log.bookie-stall"
	// LogAckLoss loses the acknowledgement of RatePM appends: committed, but the
	// writer hears nothing (an ambiguous append).
	LogAckLoss Kind = "log.ack-loss"
	// BlobErrors fails RatePM object-store operations.
	BlobErrors Kind = "blob.errors"
	// BlobSlow adds ExtraMs to every object-store operation.
	BlobSlow Kind = "blob.slow"
	// BlobAmbiguousPut stores RatePM puts but loses their answer.
	BlobAmbiguousPut Kind = "blob.ambiguous-put"
	// DiskTornWrite makes RatePM local-disk syncs persist only a prefix of
	// the write (a torn write).
	DiskTornWrite Kind = "disk.torn-write"
	// DiskCorruptRead makes RatePM local-disk reads return corrupted bytes.
	DiskCorruptRead Kind = "disk.corrupt-read"
	// BlobCorrupt corrupts or truncates one stored snapshot blob (bit rot, a
	// partial object): its checksum must catch it.
	BlobCorrupt Kind = "blob.corrupt"
)

// Kinds lists every fault kind, sorted.
func Kinds() []Kind {
	k := []Kind{NetPartition, NetPartitionOneWay, NetDegrade, HostCrash, HostLoss, HostPause,
		ClockSkew, ClockDrift, ClockJump, CoordSlow, CoordUnreachable,
		CoordSessionExpiry, LogBookieCrash, LogBookieStall, LogAckLoss, BlobErrors, BlobSlow, BlobAmbiguousPut, BlobCorrupt,
		DiskTornWrite, DiskCorruptRead}
	slices.Sort(k)
	return k
}

// Fault is one entry of a schedule. Fields that a kind does not use stay zero.
type Fault struct {
	AtMs        int64    `json:"at_ms"`
	DurationMs  int64    `json:"duration_ms"`
	Kind        Kind     `json:"kind"`
	Hosts       []string `json:"hosts,omitempty"`
	Peers       []string `json:"peers,omitempty"`
	Bookie      int      `json:"bookie,omitempty"`
	RatePM      int64    `json:"rate_pm,omitempty"`
	DropPM      int64    `json:"drop_pm,omitempty"`
	DuplicatePM int64    `json:"duplicate_pm,omitempty"`
	ReorderPM   int64    `json:"reorder_pm,omitempty"`
	SpikePM     int64    `json:"spike_pm,omitempty"`
	ExtraMs     int64    `json:"extra_ms,omitempty"`
	// BandwidthKBps caps a net.degrade link's throughput (sim chaos only:
	// the simulator's links have no bandwidth, and it refuses the field).
	BandwidthKBps int64 `json:"bandwidth_kbps,omitempty"`
}

// EndMs is when the fault heals.
func (f Fault) EndMs() int64 { return f.AtMs + f.DurationMs }

func (f Fault) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "@%dms+%dms %s", f.AtMs, f.DurationMs, f.Kind)
	if len(f.Hosts) > 0 {
		fmt.Fprintf(&b, " hosts=%s", strings.Join(f.Hosts, ","))
	}
	if len(f.Peers) > 0 {
		fmt.Fprintf(&b, " peers=%s", strings.Join(f.Peers, ","))
	}
	switch f.Kind {
	case LogBookieCrash, LogBookieStall:
		fmt.Fprintf(&b, " bookie=%d", f.Bookie)
	case LogAckLoss, BlobErrors, BlobAmbiguousPut, DiskTornWrite, DiskCorruptRead:
		fmt.Fprintf(&b, " rate=%dppm", f.RatePM)
	case NetDegrade:
		fmt.Fprintf(&b, " drop=%d dup=%d reorder=%d spike=%d (ppm)", f.DropPM, f.DuplicatePM, f.ReorderPM, f.SpikePM)
		if f.ExtraMs != 0 {
			fmt.Fprintf(&b, " extra=%dms", f.ExtraMs)
		}
		if f.BandwidthKBps != 0 {
			fmt.Fprintf(&b, " bandwidth=%dKB/s", f.BandwidthKBps)
		}
	case CoordSlow, BlobSlow, ClockSkew, ClockJump:
		fmt.Fprintf(&b, " extra=%dms", f.ExtraMs)
	case ClockDrift:
		fmt.Fprintf(&b, " rate=%dppm", f.RatePM)
	}
	return b.String()
}

// Topology is what a schedule may name: hosts by name, and the bookie count.
type Topology struct {
	Hosts   []string
	Bookies int
}

func ratePM(name string, v int64) error {
	if v < 0 || v > 1_000_000 {
		return fmt.Errorf("%s %d is not within 0..1000000 per million", name, v)
	}
	return nil
}

// Validate checks one fault against a topology.
func (f Fault) Validate(top Topology) error {
	if f.AtMs < 0 || f.DurationMs < 0 {
		return fmt.Errorf("fault %s: negative time", f)
	}
	needHosts := func(min int) error {
		if len(f.Hosts) < min {
			return fmt.Errorf("fault %s: needs at least %d host(s)", f, min)
		}
		return nil
	}
	for _, h := range append(slices.Clone(f.Hosts), f.Peers...) {
		if !slices.Contains(top.Hosts, h) {
			return fmt.Errorf("fault %s: unknown host %q (hosts: %s)", f, h, strings.Join(top.Hosts, ","))
		}
	}
	var err error
	if f.BandwidthKBps < 0 || (f.BandwidthKBps != 0 && f.Kind != NetDegrade) {
		return fmt.Errorf("fault %s: bandwidth_kbps %d: only a non-negative cap of a net.degrade", f, f.BandwidthKBps)
	}
	switch f.Kind {
	case NetPartition, NetPartitionOneWay:
		if err = needHosts(1); err == nil && len(f.Peers) == 0 {
			err = fmt.Errorf("fault %s: needs peers", f)
		}
	case NetDegrade:
		for _, c := range []struct {
			n string
			v int64
		}{{"drop_pm", f.DropPM}, {"duplicate_pm", f.DuplicatePM}, {"reorder_pm", f.ReorderPM}, {"spike_pm", f.SpikePM}} {
			if err == nil {
				err = ratePM(c.n, c.v)
			}
		}
	case HostCrash, HostLoss, HostPause, CoordUnreachable, CoordSessionExpiry, BlobCorrupt:
		if f.Kind != BlobCorrupt {
			err = needHosts(1)
		}
	case ClockSkew, ClockJump:
		if err = needHosts(1); err == nil && (f.ExtraMs < -3_600_000 || f.ExtraMs > 3_600_000) {
			err = fmt.Errorf("fault %s: extra_ms beyond an hour either way", f)
		}
	case ClockDrift:
		if err = needHosts(1); err == nil && (f.RatePM <= -1_000_000 || f.RatePM > 1_000_000) {
			err = fmt.Errorf("fault %s: rate_pm must be within (-1000000, 1000000]", f)
		}
	case CoordSlow, BlobSlow:
		if f.ExtraMs <= 0 {
			err = fmt.Errorf("fault %s: extra_ms must be positive", f)
		}
	case LogBookieCrash, LogBookieStall:
		if f.Bookie < 0 || f.Bookie >= top.Bookies {
			err = fmt.Errorf("fault %s: bookie %d out of range 0..%d", f, f.Bookie, top.Bookies-1)
		}
	case LogAckLoss, BlobErrors, BlobAmbiguousPut, DiskTornWrite, DiskCorruptRead:
		err = ratePM("rate_pm", f.RatePM)
	default:
		err = fmt.Errorf("unknown fault kind %q (known: %v)", f.Kind, Kinds())
	}
	return err
}

// Schedule is an ordered list of faults.
type Schedule struct {
	Faults []Fault `json:"faults"`
}

// Sort orders faults by start time, then kind, so that a hand-edited schedule
// runs the same whatever order its lines were written in.
func (s *Schedule) Sort() {
	slices.SortStableFunc(s.Faults, func(a, b Fault) int {
		if a.AtMs != b.AtMs {
			if a.AtMs < b.AtMs {
				return -1
			}
			return 1
		}
		return strings.Compare(string(a.Kind), string(b.Kind))
	})
}

// Validate checks every fault, and that faults which compose stay in range
// while they overlap: the drifts of one host add up, and their sum must stay
// within (-1000000, 1000000] ppm.
func (s Schedule) Validate(top Topology) error {
	for i, f := range s.Faults {
		if err := f.Validate(top); err != nil {
			return fmt.Errorf("schedule entry %d: %w", i, err)
		}
	}
	for _, h := range top.Hosts {
		if err := s.validateDrift(h); err != nil {
			return err
		}
	}
	return nil
}

// validateDrift sweeps one host's drifts in time: at every start, the sum of
// the drifts active then (those that started and have not ended) must stay
// in range. A fault ends before one that starts at the same instant.
func (s Schedule) validateDrift(host string) error {
	for i, f := range s.Faults {
		if f.Kind != ClockDrift || !slices.Contains(f.Hosts, host) {
			continue
		}
		var sum int64
		for _, g := range s.Faults {
			if g.Kind == ClockDrift && slices.Contains(g.Hosts, host) && g.AtMs <= f.AtMs && g.EndMs() > f.AtMs {
				sum += g.RatePM
			}
		}
		if sum <= -1_000_000 || sum > 1_000_000 {
			return fmt.Errorf("schedule entry %d: fault %s: the overlapping drifts of %s add up to %d ppm, beyond (-1000000, 1000000]", i, f, host, sum)
		}
	}
	return nil
}

// LastEndMs is when the last fault heals.
func (s Schedule) LastEndMs() int64 {
	var end int64
	for _, f := range s.Faults {
		end = max(end, f.EndMs())
	}
	return end
}

// Parse reads a schedule from JSON, rejecting unknown fields, and validates it.
func Parse(data []byte, top Topology) (Schedule, error) {
	var s Schedule
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Schedule{}, fmt.Errorf("parse fault schedule: %w", err)
	}
	if err := s.Validate(top); err != nil {
		return Schedule{}, err
	}
	s.Sort()
	return s, nil
}

// Rand is the randomness a generator is handed.
type Rand interface {
	Int63n(n int64) int64
	Chance(perMillion int64) bool
}

// Spec says which faults a generated schedule may contain and how often: the
// scenario's fault budget. Count faults are placed in [StartMs, EndMs).
type Spec struct {
	Kinds       []Kind
	Count       int
	StartMs     int64
	EndMs       int64
	MinDurMs    int64
	MaxDurMs    int64
	MaxRatePM   int64 // for rate faults and degradations
	Territories []string
	Clients     []string
	Services    []string // service endpoints that may be partitioned from hosts
	Managers    []string // control-plane hosts (clock faults may hit them)
	MaxClockMs  int64    // bound of clock skews and jumps, either way
	MaxDriftPM  int64    // bound of clock drift, either way
	MaxLost     int      // host losses allowed in one schedule (the rest become crashes)
	// SplitBrainPM is the odds (per million) that a net.partition is a split
	// brain: a territory and some clients (each with odds one half, at least
	// one) cut from the coordination store and the managers (and, half the
	// time each, from the log and the object store), for
	// SplitBrainMinMs..SplitBrainMaxMs. Longer than the lease plus the
	// host-loss timeout, the territory is deposed while the clients on its
	// side, unable to read the routes, still ask it.
	SplitBrainPM    int64
	SplitBrainMinMs int64
	SplitBrainMaxMs int64
	Coord           string // the coordination store's host
	Log             string // the log's host
	Blob            string // the object store's host
}

func between(r Rand, lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + r.Int63n(hi-lo+1)
}

func pick(r Rand, from []string) string { return from[r.Int63n(int64(len(from)))] }

// Generate draws a schedule from a spec. Same randomness, same schedule.
func Generate(r Rand, spec Spec, top Topology) (Schedule, error) {
	if len(spec.Kinds) == 0 || spec.Count == 0 {
		return Schedule{}, nil
	}
	if spec.EndMs <= spec.StartMs || spec.MaxDurMs < spec.MinDurMs || len(spec.Territories) == 0 {
		return Schedule{}, fmt.Errorf("fault spec: bad window %d..%d, durations %d..%d, or no territories", spec.StartMs, spec.EndMs, spec.MinDurMs, spec.MaxDurMs)
	}
	if spec.SplitBrainPM > 0 && (spec.Coord == "" || spec.SplitBrainMinMs <= 0 || spec.SplitBrainMaxMs < spec.SplitBrainMinMs) {
		return Schedule{}, fmt.Errorf("fault spec: split brain needs the coordination store's host and durations, got %q, %d..%d", spec.Coord, spec.SplitBrainMinMs, spec.SplitBrainMaxMs)
	}
	var s Schedule
	lost := map[string]bool{}
	for i := 0; i < spec.Count; i++ {
		f := Fault{
			Kind:       spec.Kinds[r.Int63n(int64(len(spec.Kinds)))],
			AtMs:       between(r, spec.StartMs, spec.EndMs-1),
			DurationMs: between(r, spec.MinDurMs, spec.MaxDurMs),
		}
		rate := func() int64 { return between(r, spec.MaxRatePM/10, spec.MaxRatePM) }
		switch f.Kind {
		case NetPartition, NetPartitionOneWay:
			if f.Kind == NetPartition && spec.SplitBrainPM > 0 && r.Chance(spec.SplitBrainPM) {
				f.Hosts, f.Peers = splitBrainSide(r, spec), splitBrainPeers(r, spec)
				f.DurationMs = between(r, spec.SplitBrainMinMs, spec.SplitBrainMaxMs)
				break
			}
			// A territory against a part of the rest: clients, another territory, or a service.
			f.Hosts = []string{pick(r, spec.Territories)}
			others := append(append(slices.Clone(spec.Clients), spec.Services...), spec.Territories...)
			for _, o := range others {
				if o != f.Hosts[0] && r.Chance(500_000) {
					f.Peers = append(f.Peers, o)
				}
			}
			if len(f.Peers) == 0 {
				f.Peers = []string{pick(r, append(slices.Clone(spec.Services), spec.Clients...))}
			}
		case NetDegrade:
			f.DropPM, f.DuplicatePM, f.ReorderPM, f.SpikePM = rate(), rate(), rate(), rate()
		case HostCrash, HostPause, CoordSessionExpiry, CoordUnreachable:
			f.Hosts = []string{pick(r, spec.Territories)}
		case HostLoss:
			f.Hosts = []string{pick(r, spec.Territories)}
			if lost[f.Hosts[0]] || len(lost) >= spec.MaxLost {
				f.Kind = HostCrash // a host is lost once, and enough must survive
				break
			}
			lost[f.Hosts[0]] = true
			f.DurationMs = 0
		case ClockSkew, ClockJump:
			f.Hosts = []string{pick(r, append(slices.Clone(spec.Territories), spec.Managers...))}
			f.ExtraMs = between(r, -spec.MaxClockMs, spec.MaxClockMs)
		case ClockDrift:
			f.Hosts = []string{pick(r, append(slices.Clone(spec.Territories), spec.Managers...))}
			f.RatePM = between(r, -spec.MaxDriftPM, spec.MaxDriftPM)
		case CoordSlow, BlobSlow:
			f.ExtraMs = between(r, 5, 200)
		case LogBookieCrash, LogBookieStall:
			f.Bookie = int(r.Int63n(int64(top.Bookies)))
		case LogAckLoss, BlobErrors, BlobAmbiguousPut:
			f.RatePM = rate()
		case DiskTornWrite, DiskCorruptRead:
			f.RatePM = between(r, 200_000, 1_000_000) // a cache is read rarely: make it count
		}
		s.Faults = append(s.Faults, f)
	}
	s.Sort()
	return s, s.Validate(top)
}

// splitBrainSide is the minority side of a split brain: one territory and
// some of the clients (at least one, if there are clients). Those clients
// reach the territory but not the coordination store, so they cannot learn
// that it was deposed: they keep asking it.
func splitBrainSide(r Rand, spec Spec) []string {
	side := []string{pick(r, spec.Territories)}
	for _, c := range spec.Clients {
		if r.Chance(500_000) {
			side = append(side, c)
		}
	}
	if len(side) == 1 && len(spec.Clients) > 0 {
		side = append(side, pick(r, spec.Clients))
	}
	return side
}

// splitBrainPeers: the control plane always, the log and the object store
// half the time each. Cut from the log too, a deposed primary's appends hang
// instead of being fenced, and it goes on answering what it can.
func splitBrainPeers(r Rand, spec Spec) []string {
	peers := append([]string{spec.Coord}, spec.Managers...)
	for _, svc := range []string{spec.Log, spec.Blob} {
		if svc != "" && r.Chance(500_000) {
			peers = append(peers, svc)
		}
	}
	return peers
}

// IsSplitBrain reports whether a fault is a split brain as the generator
// draws them with Spec.SplitBrainPM: a territory and some clients cut from
// the coordination store, and from no client.
func (f Fault) IsSplitBrain(coord string, territories, clients []string) bool {
	if f.Kind != NetPartition || len(f.Hosts) < 2 || !slices.Contains(territories, f.Hosts[0]) || !slices.Contains(f.Peers, coord) {
		return false
	}
	for _, h := range f.Hosts[1:] {
		if !slices.Contains(clients, h) {
			return false
		}
	}
	for _, p := range f.Peers {
		if slices.Contains(clients, p) {
			return false
		}
	}
	return true
}
