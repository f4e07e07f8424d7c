package linearizability

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

// EntryKind is what a committed log entry holds.
type EntryKind uint8

const (
	// EntryWrite is a client write; Op is its request.
	EntryWrite EntryKind = iota + 1
	// EntryDecay is a recovery (TerritoryRecovered); Op is a Decay input
	// with the logged recovery timestamp and last heartbeat.
	EntryDecay
	// EntryHeartbeat changes nothing a client can see.
	EntryHeartbeat
	// EntryAdoptPolicy adopts Policy if its epoch is newer.
	EntryAdoptPolicy
	// EntrySaga is a step of a handshake saga; Op is its SagaEffect.
	EntrySaga
)

// Entry is one committed log entry in a form that does not depend on the
// store: the simulator converts its log into these.
type Entry struct {
	LSN      uint64
	CommitUs int64 // virtual time the log committed it
	Kind     EntryKind
	ID       UUID
	Op       Input  // EntryWrite, EntryDecay
	Policy   Policy // EntryAdoptPolicy
}

// SubgraphLog is the committed log of one subgraph, LSN 1, 2, ... in order.
type SubgraphLog struct {
	Subgraph uint32
	Entries  []Entry
}

// The names of the log checker's checks, as they appear in [LogViolation].
const (
	CheckLogGap    = "log-gap"    // the log is not LSN 1, 2, ... in order
	CheckLogOnce   = "log-once"   // an event_uuid at two LSNs
	CheckLogLost   = "log-lost"   // an acknowledged write not in the log
	CheckLogMatch  = "log-match"  // the entry under a write's uuid is another operation
	CheckLogOrphan = "log-orphan" // a client write in the log that no client made
	CheckLogOrder  = "log-order"  // the LSN order contradicts real time
	CheckLogAnswer = "log-answer" // an answer differs from the specification's at its LSN
	CheckLogRead   = "log-read"   // a read matches no state it may see
	CheckLogInput  = "log-input"  // an operation the checker cannot read
)

// LogViolation is one finding of [LogCheck].
type LogViolation struct {
	Check    string
	Subgraph uint32
	LSN      uint64 // 0 when the finding is not about one entry
	Op       int    // index in the history, -1 if none
	Detail   string
}

func (v LogViolation) String() string {
	return fmt.Sprintf("%s sg%d lsn %d: %s", v.Check, v.Subgraph, v.LSN, v.Detail)
}

// LogResult is the outcome of [LogCheck]. Its verdict is never unknown.
type LogResult struct {
	Verdict    Verdict
	Ops        int // operations checked
	Entries    int // log entries folded
	Resolved   int // unknown-outcome writes found in the log: they happened
	Vanished   int // unknown-outcome writes not in the log: they did not
	Violations []LogViolation
}

func (r LogResult) String() string {
	s := fmt.Sprintf("%s: %d ops, %d entries, %d unknown writes resolved, %d vanished", r.Verdict, r.Ops, r.Entries, r.Resolved, r.Vanished)
	if n := len(r.Violations); n > 0 {
		s += fmt.Sprintf("; %d violation(s), first: %s", n, r.Violations[0])
	}
	return s
}

// Checks lists the distinct checks that failed, sorted.
func (r LogResult) Checks() []string {
	var names []string
	for _, v := range r.Violations {
		names = append(names, v.Check)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// LogCheck checks a history against the committed logs, taking the log as the
// truth. The specification ([Apply]) is folded over each log from the empty
// state and the zero policy, adopting the policies the log holds; then:
//
//   - every write and decay of the history is in its subgraph's log at
//     exactly one LSN, as the same operation, or nowhere; an acknowledged one
//     must be there; an unknown-outcome one is resolved by it (in the log: it
//     happened there; not: it did not). No client write is in the log
//     without an operation of the history.
//   - each operation in the log has a higher LSN than every operation that
//     returned before it was called (writes at their LSN, reads at the state
//     they were given);
//   - each acknowledged answer equals the specification's answer at its LSN;
//   - each read returns the state after some LSN L with: L at least the
//     position of every operation that returned before the read was called,
//     L below the LSN of every write called after it returned, and L
//     committed (LSNs 1..L) before it returned. Reads are placed at the
//     smallest such L, which leaves the most room to everything after them.
//
// This is exact for histories whose write order is the log's, runs in
// O(n log n) plus the versions a read skips, and never times out.
func LogCheck(b Bounds, ops []porcupine.Operation, logs []SubgraphLog) LogResult {
	b = b.normalize()
	res := LogResult{Ops: len(ops)}
	bySG := map[uint32][]int{}
	for i, op := range ops {
		in, ok1 := op.Input.(Input)
		_, ok2 := op.Output.(Output)
		if !ok1 || !ok2 || !in.Kind.Valid() {
			res.Violations = append(res.Violations, LogViolation{Check: CheckLogInput, Op: i, Detail: fmt.Sprintf("operation %d: %v -> %v", i, op.Input, op.Output)})
			continue
		}
		bySG[in.Subgraph] = append(bySG[in.Subgraph], i)
	}
	seen := map[uint32]bool{}
	var sgs []uint32
	for _, l := range logs {
		if seen[l.Subgraph] {
			res.Violations = append(res.Violations, LogViolation{Check: CheckLogGap, Subgraph: l.Subgraph, Op: -1, Detail: "two logs for one subgraph"})
			continue
		}
		seen[l.Subgraph] = true
	}
	for sg := range bySG {
		sgs = append(sgs, sg)
	}
	for sg := range seen {
		if _, ok := bySG[sg]; !ok {
			sgs = append(sgs, sg)
		}
	}
	slices.Sort(sgs)
	logOf := map[uint32][]Entry{}
	for _, l := range logs {
		if _, ok := logOf[l.Subgraph]; !ok {
			logOf[l.Subgraph] = l.Entries
		}
	}
	for _, sg := range sgs {
		c := subgraphCheck{b: b, sg: sg, ops: ops, idx: bySG[sg], entries: logOf[sg], res: &res}
		c.run()
	}
	res.Verdict = VerdictOK
	if len(res.Violations) > 0 {
		res.Verdict = VerdictViolation
	}
	return res
}

// version is a key's value from an LSN on.
type version struct {
	lsn    uint64
	exists bool
	value  int64
}

type vkey struct {
	synapse bool
	a, b    uint64
}

type subgraphCheck struct {
	b       Bounds
	sg      uint32
	ops     []porcupine.Operation
	idx     []int // indices into ops of this subgraph's operations
	entries []Entry
	res     *LogResult

	answers   []Output // by LSN-1
	versions  map[vkey][]version
	commitMax []int64 // prefix maximum of commit times, by LSN-1
	byID      map[UUID]uint64
}

func (c *subgraphCheck) violate(check string, lsn uint64, op int, format string, args ...any) {
	c.res.Violations = append(c.res.Violations, LogViolation{Check: check, Subgraph: c.sg, LSN: lsn, Op: op, Detail: fmt.Sprintf(format, args...)})
}

func (c *subgraphCheck) run() {
	if !c.fold() {
		return
	}
	pos := c.place()
	c.sweep(pos)
}

// fold applies the specification to the log, keeping each entry's answer and
// every key's versions.
func (c *subgraphCheck) fold() bool {
	cfg := Config{Bounds: c.b}
	var st State
	c.answers = make([]Output, len(c.entries))
	c.commitMax = make([]int64, len(c.entries))
	c.versions = map[vkey][]version{}
	c.byID = make(map[UUID]uint64, len(c.entries))
	c.res.Entries += len(c.entries)
	for i := range c.entries {
		e := &c.entries[i]
		lsn := uint64(i + 1)
		if e.LSN != lsn {
			c.violate(CheckLogGap, e.LSN, -1, "entry %d of the log has LSN %d", i+1, e.LSN)
			return false
		}
		c.commitMax[i] = e.CommitUs
		if i > 0 {
			c.commitMax[i] = max(e.CommitUs, c.commitMax[i-1])
		}
		if !e.ID.IsZero() {
			if first, dup := c.byID[e.ID]; dup {
				c.violate(CheckLogOnce, lsn, -1, "event %s is at LSN %d and again at LSN %d", e.ID, first, lsn)
				continue // applied once, as the store's dedup would
			}
			c.byID[e.ID] = lsn
		}
		switch e.Kind {
		case EntryWrite, EntryDecay:
			if (e.Kind == EntryDecay) != (e.Op.Kind == Decay) || !e.Op.Kind.Valid() || e.Op.Kind.IsRead() || e.Op.Subgraph != c.sg {
				c.violate(CheckLogGap, lsn, -1, "entry of kind %d holds %s of subgraph %d", e.Kind, e.Op, e.Op.Subgraph)
				return false
			}
			st, c.answers[i] = Apply(&cfg, st, e.Op)
			c.record(lsn, st, e.Op)
		case EntryAdoptPolicy:
			if e.Policy.Epoch > cfg.Policy.Epoch {
				cfg.Policy = e.Policy
			}
			c.answers[i] = Output{Status: StatusOK}
		case EntryHeartbeat:
			c.answers[i] = Output{Status: StatusOK}
		case EntrySaga:
			if e.Op.Kind != SagaEffect || e.Op.Subgraph != c.sg || e.Op.ID != e.ID {
				c.violate(CheckLogGap, lsn, -1, "saga entry holds %s of subgraph %d", e.Op, e.Op.Subgraph)
				return false
			}
			st, c.answers[i] = Apply(&cfg, st, e.Op)
			if e.Op.Neuron == 0 {
				c.record(lsn, st, Input{Kind: Connect, Pre: e.Op.Pre, Post: e.Op.Post})
			}
		default:
			c.violate(CheckLogGap, lsn, -1, "entry of unknown kind %d", e.Kind)
			return false
		}
	}
	return true
}

// record appends the versions an entry created.
func (c *subgraphCheck) record(lsn uint64, next State, op Input) {
	put := func(k vkey, exists bool, v int64) {
		vs := c.versions[k]
		if n := len(vs); n > 0 && vs[n-1].exists == exists && vs[n-1].value == v {
			return
		}
		if len(vs) == 0 && !exists {
			return // absent from LSN 0 on is the default
		}
		c.versions[k] = append(vs, version{lsn: lsn, exists: exists, value: v})
	}
	switch op.Kind {
	case CreateNeuron, Stimulate:
		if i, ok := next.neuron(op.Neuron); ok {
			put(vkey{a: op.Neuron}, true, next.neurons[i].potential)
		}
	case Decay:
		for _, n := range next.neurons {
			put(vkey{a: n.id}, true, n.potential)
		}
	case Connect, AdjustWeight, Prune:
		i, ok := next.synapse(op.Pre, op.Post)
		k := vkey{synapse: true, a: op.Pre, b: op.Post}
		if ok {
			put(k, true, next.synapses[i].weight)
		} else {
			put(k, false, 0)
		}
	}
}

// valueAt is a key's value after LSN lsn, and the index of that version.
func (c *subgraphCheck) valueAt(k vkey, lsn uint64) (int, bool, int64) {
	vs := c.versions[k]
	j := sort.Search(len(vs), func(j int) bool { return vs[j].lsn > lsn }) - 1
	if j < 0 {
		return -1, false, 0
	}
	return j, vs[j].exists, vs[j].value
}

// place finds each write's LSN and checks its answer; it returns each
// operation's position (2*LSN for writes, -1 for operations that are not in
// the order: vanished writes and unknown reads; reads are placed later).
func (c *subgraphCheck) place() []int64 {
	pos := make([]int64, len(c.idx))
	used := make(map[uint64]bool, len(c.idx))
	for j, i := range c.idx {
		op := &c.ops[i]
		in, out := op.Input.(Input), op.Output.(Output)
		pos[j] = -1
		if in.Kind.IsRead() {
			continue
		}
		lsn, ok := c.byID[in.ID]
		if in.ID.IsZero() || !ok {
			if out.Status == StatusUnknown {
				c.res.Vanished++
				continue
			}
			c.violate(CheckLogLost, 0, i, "op %d %s answered %s but event %s is not in the log", i, in, describeOutput(in.Kind, out), in.ID)
			continue
		}
		e := &c.entries[lsn-1]
		if !sameOp(e.Op, in) {
			c.violate(CheckLogMatch, lsn, i, "op %d %s, but its event %s in the log is %s", i, in, in.ID, e.Op)
			used[lsn] = true
			continue
		}
		if used[lsn] {
			c.violate(CheckLogOnce, lsn, i, "op %d: event %s belongs to two operations of the history", i, in.ID)
			continue
		}
		used[lsn] = true
		pos[j] = 2 * int64(lsn)
		if out.Status == StatusUnknown {
			c.res.Resolved++
			continue
		}
		if want := c.answers[lsn-1]; want != out {
			c.violate(CheckLogAnswer, lsn, i, "op %d %s answered %s, the specification at LSN %d says %s", i, in, describeOutput(in.Kind, out), lsn, describeOutput(in.Kind, want))
		}
	}
	for i := range c.entries {
		e := &c.entries[i]
		if e.Kind == EntryWrite && !used[e.LSN] {
			if _, dup := c.byID[e.ID]; dup && c.byID[e.ID] == e.LSN {
				c.violate(CheckLogOrphan, e.LSN, -1, "%s (event %s) is in the log, but no client asked for it", e.Op, e.ID)
			}
		}
	}
	return pos
}

// sameOp: the logged operation is the requested one.
func sameOp(a, b Input) bool {
	return a.Kind == b.Kind && a.ID == b.ID && a.Neuron == b.Neuron && a.Pre == b.Pre && a.Post == b.Post &&
		a.Delta == b.Delta && a.Weight == b.Weight && a.PostSubgraph == b.PostSubgraph &&
		a.RecoveryMs == b.RecoveryMs && a.HeartbeatMs == b.HeartbeatMs
}

type timed struct {
	t   int64
	ret bool
	j   int // index into c.idx
}

// sweep walks calls and returns in time order (calls first at equal times:
// they are concurrent) and checks real-time order, placing each read.
func (c *subgraphCheck) sweep(pos []int64) {
	var evs []timed
	type call struct {
		t   int64
		lsn uint64
	}
	var calls []call // in-log writes by call time, for the ceiling of reads
	for j, i := range c.idx {
		op := &c.ops[i]
		in := op.Input.(Input)
		out := op.Output.(Output)
		if pos[j] < 0 && !(in.Kind.IsRead() && out.Status != StatusUnknown) {
			continue
		}
		evs = append(evs, timed{t: op.Call, j: j})
		if out.Status != StatusUnknown && op.Return != Open {
			evs = append(evs, timed{t: op.Return, ret: true, j: j})
		}
		if pos[j] >= 0 {
			calls = append(calls, call{op.Call, uint64(pos[j] / 2)})
		}
	}
	slices.SortFunc(evs, func(x, y timed) int {
		if c := cmp.Compare(x.t, y.t); c != 0 {
			return c
		}
		if x.ret != y.ret {
			if x.ret {
				return 1
			}
			return -1
		}
		return cmp.Compare(x.j, y.j)
	})
	slices.SortFunc(calls, func(x, y call) int { return cmp.Compare(x.t, y.t) })
	// ceil[k] = min LSN of calls[k:]
	ceil := make([]uint64, len(calls)+1)
	ceil[len(calls)] = ^uint64(0)
	for k := len(calls) - 1; k >= 0; k-- {
		ceil[k] = min(calls[k].lsn, ceil[k+1])
	}
	var floor int64 // position of the latest-placed operation that returned
	floorOp := -1
	floorAt := make([]int64, len(c.idx))
	floorOpAt := make([]int, len(c.idx))
	for _, ev := range evs {
		i := c.idx[ev.j]
		op := &c.ops[i]
		in := op.Input.(Input)
		if !ev.ret {
			floorAt[ev.j], floorOpAt[ev.j] = floor, floorOp
			if p := pos[ev.j]; p >= 0 && p <= floor {
				c.violate(CheckLogOrder, uint64(p/2), i, "op %d %s is at LSN %d, but op %d, which returned before it was called, is at %s",
					i, in, p/2, floorOp, describePos(floor))
			}
			continue
		}
		if in.Kind.IsRead() {
			k := sort.Search(len(calls), func(k int) bool { return calls[k].t > op.Return })
			hi := c.committedBy(op.Return)
			if ceil[k] != ^uint64(0) {
				hi = min(hi, ceil[k]-1)
			}
			lo := uint64(floorAt[ev.j] / 2)
			l, ok := c.placeRead(in, op.Output.(Output), lo, hi)
			if !ok {
				c.violate(CheckLogRead, 0, i, "op %d %s returned %s, which no state at LSN %d..%d holds (floor from op %d)",
					i, in, describeOutput(in.Kind, op.Output.(Output)), lo, hi, floorOpAt[ev.j])
				continue
			}
			pos[ev.j] = 2*int64(l) + 1
		}
		if pos[ev.j] > floor {
			floor, floorOp = pos[ev.j], i
		}
	}
}

func describePos(p int64) string {
	if p%2 == 1 {
		return fmt.Sprintf("the state after LSN %d", p/2)
	}
	return fmt.Sprintf("LSN %d", p/2)
}

// committedBy is the largest L with LSNs 1..L all committed by t.
func (c *subgraphCheck) committedBy(t int64) uint64 {
	return uint64(sort.Search(len(c.commitMax), func(i int) bool { return c.commitMax[i] > t }))
}

// placeRead finds the smallest L in [lo, hi] whose state answers the read as
// it was answered.
func (c *subgraphCheck) placeRead(in Input, out Output, lo, hi uint64) (uint64, bool) {
	if out.Status != StatusOK || out.Reason != ReasonNone || lo > hi {
		return 0, false
	}
	k := vkey{a: in.Neuron}
	if in.Kind == ReadSynapse {
		k = vkey{synapse: true, a: in.Pre, b: in.Post}
	}
	match := func(exists bool, v int64) bool {
		if !exists {
			return !out.Exists && out.Value == 0
		}
		return out.Exists && out.Value == v
	}
	j, exists, v := c.valueAt(k, lo)
	if match(exists, v) {
		return lo, true
	}
	vs := c.versions[k]
	for j++; j < len(vs) && vs[j].lsn <= hi; j++ {
		if match(vs[j].exists, vs[j].value) {
			return vs[j].lsn, true
		}
	}
	return 0, false
}

// LogSummary renders the distinct failed checks, e.g. "log-answer,log-read".
func (r LogResult) LogSummary() string {
	if r.Verdict == VerdictOK {
		return string(VerdictOK)
	}
	return strings.Join(r.Checks(), ",")
}
