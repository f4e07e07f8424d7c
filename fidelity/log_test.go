package fidelity

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"territory/model"
	"territory/sim/kernel"
	"territory/sim/replog"
)

// The log's differential runs: each sequence is one stream, written by two
// writer processes (0 and 1, each with its own connection to the log, as two
// territories) and read by them and by an auditor process (2). The
// simulated log (sim/replog: one broker, 3 bookies) answers every call
// exactly; the real one (runtime/pulsarlog on Pulsar with 3 bookies, in the
// integration build) runs the same calls in the same order.
//
// Ambiguous calls. A call may be made with a short deadline (the caller
// stops waiting: an honest unknown outcome, the request possibly still in
// flight while the next calls run). The simulator cannot know when, or
// whether, the real request reached the log, so the comparison keeps every
// simulated world that agrees with what the real log answered so far. In a
// world an ambiguous call is either answered (the real caller got an answer)
// or held: it reaches the simulated log later, just before any later call
// (run to its end there, its answer lost), or never. Before each call every
// world forks once per number of its held calls delivered first (in the
// order they were made). Each world is rebuilt by replaying its history
// (the simulator is deterministic), and worlds whose state is the same are
// merged. A call agrees when some world answers it as the real log did; a
// sequence whose worlds all disagree is a difference, and it stops there.
// Every simulated call runs to its answer before the next starts, so no
// world's own timing decides anything.

const (
	maxWorlds  = 128 // simulated worlds kept per sequence
	logWriters = 2
	logAuditor = 2 // the process that only reads
	logOps     = 10
)

// logOp is one call of a sequence.
type logOp struct {
	Proc  int // 0, 1: writers; 2: the auditor
	Class string
	Req   model.LogRequest
	// AmbiguousMs > 0: the caller waits at most this long (an unknown
	// outcome if it gives up; the request may still land).
	AmbiguousMs int
}

func (o logOp) ambiguous() bool { return o.AmbiguousMs > 0 }

// logSide is the real log as one sequence's processes see it.
type logSide interface {
	do(op logOp) (model.LogResponse, model.ServiceErr, error)
}

// quiescer is a real side that can let the work of calls whose caller
// stopped waiting finish before the final contents are read (a request
// still in flight then is neither in nor out of the contents yet).
type quiescer interface{ quiesce() }

// logOut is the comparable part of an answer. A refusal's fields are not
// part of the contract (the core reads TailLSN and LSN only from an OK);
// an unknown outcome is only that.
type logOut struct {
	Unknown bool
	Err     model.ServiceErr
	LSN     uint64
	Tail    uint64
	Entries []string
}

func (o logOut) String() string {
	switch {
	case o.Unknown:
		return "unknown"
	case o.Err != model.ErrNone:
		return o.Err.String()
	}
	s := fmt.Sprintf("ok lsn %d tail %d", o.LSN, o.Tail)
	if o.LSN > 0 {
		s = fmt.Sprintf("ok lsn %d tail>=lsn %v", o.LSN, o.Tail == 1)
	}
	if len(o.Entries) > 0 {
		s += " [" + strings.Join(o.Entries, " ") + "]"
	}
	return s
}

func logOutOf(op logOp, r model.LogResponse, se model.ServiceErr, err error) logOut {
	if err != nil {
		return logOut{Unknown: true}
	}
	if se != model.ErrNone {
		return logOut{Err: se}
	}
	o := logOut{Tail: r.TailLSN}
	switch op.Req.Kind {
	case model.LogAppend:
		// The tail in an append's answer is the committed tail at the
		// instant of the answer: with other entries in flight it depends
		// on when they commit, on either side, and the core never reads
		// it. What the port promises is tail >= LSN: 1 if it holds.
		o.LSN = r.LSN
		o.Tail = 0
		if r.TailLSN >= r.LSN {
			o.Tail = 1
		}
	case model.LogRead:
		for _, e := range r.Entries {
			o.Entries = append(o.Entries, fmt.Sprintf("%d:%s", e.LSN, e.Data))
		}
	}
	return o
}

// fate is what happened to a call in one simulated world.
type fate uint8

const (
	fateAnswered fate = iota // the caller got the answer
	fateDone                 // it reached the log and ran to its end; the answer was lost
	fateInFlight             // it reached the log and is still pending there (the world's own timing resolves it)
	fateSettle               // not a call: every entry pending in the log resolves now
	fateLost                 // it never reached the log (the answer is unknown)
)

// simLogWorld is one simulated log: a kernel and sim/replog with 3 bookies.
type simLogWorld struct {
	k *kernel.Kernel
	l *replog.Log
}

func newSimLogWorld(seed uint64) *simLogWorld {
	k := kernel.New(seed, 10_000_000)
	cfg := replog.DefaultConfig()
	cfg.Bookies = 3
	l, err := replog.New(k, k.Stream("replog"), cfg)
	if err != nil {
		panic(err) // the configuration is a constant
	}
	return &simLogWorld{k: k, l: l}
}

// apply runs one call with the given fate and returns what its caller saw.
func (w *simLogWorld) apply(op logOp, f fate) logOut {
	r, se, err := w.applyRaw(op, f)
	return logOutOf(op, r, se, err)
}

// errAnswerLost is the unknown outcome of a call whose answer never came.
var errAnswerLost = errors.New("the answer was lost")

func (w *simLogWorld) applyRaw(op logOp, f fate) (model.LogResponse, model.ServiceErr, error) {
	switch f {
	case fateSettle:
		// Every bookie answers within the latency bound: whatever is in
		// flight commits (or fails) by then.
		if err := w.k.Run(w.k.NowUs() + w.l.Config().BookieLatencyMaxUs); err != nil {
			return model.LogResponse{}, model.ErrNone, err
		}
		return model.LogResponse{}, model.ErrNone, errAnswerLost
	case fateLost:
		return model.LogResponse{}, model.ErrNone, errAnswerLost
	case fateInFlight:
		w.l.Do(op.Req, func(model.LogResponse, model.ServiceErr) {})
		return model.LogResponse{}, model.ErrNone, errAnswerLost
	}
	var (
		resp model.LogResponse
		se   model.ServiceErr
		done bool
	)
	w.l.Do(op.Req, func(r model.LogResponse, e model.ServiceErr) {
		resp, se, done = r, e, true
		w.k.Stop()
	})
	var err error
	if rerr := w.k.Run(math.MaxInt64); rerr != nil {
		err = rerr
	} else if !done {
		err = errors.New("the simulated log ran dry without an answer")
	}
	if f == fateDone {
		return model.LogResponse{}, model.ErrNone, errAnswerLost
	}
	return resp, se, err
}

// fingerprint identifies a world's state as far as later calls can tell.
func (w *simLogWorld) fingerprint(stream uint32, held []int) string {
	h := sha256.New()
	for _, e := range w.l.Committed(stream) {
		fmt.Fprintf(h, "%d:%x;", e.LSN, e.Data)
	}
	return fmt.Sprintf("%x e%d p%d h%v", h.Sum(nil), w.l.Epoch(stream), w.l.Pending(stream), held)
}

// act is one step of a world's history: call ops[op] (answered), hold it,
// or deliver it (held before).
type act struct {
	op   int
	kind fate // fateAnswered: called; fateLost: held; fateDone, fateInFlight: delivered; fateSettle: resolve what is pending (op -1)
}

// world is one simulated world: its log, its history, its held calls.
type world struct {
	w    *simLogWorld
	acts []act
	held []int
}

func replayWorld(seed uint64, ops []logOp, acts []act) *simLogWorld {
	w := newSimLogWorld(seed)
	for _, a := range acts {
		switch a.kind {
		case fateLost:
		case fateSettle:
			w.apply(logOp{}, fateSettle)
		default:
			w.apply(ops[a.op], a.kind)
		}
	}
	return w
}

// forks returns the worlds wd becomes before a call: each of its held
// calls stays held, or reaches the log and runs to its end, or reaches the
// log and is still pending there when the call starts (the ones that reach
// it in the order they were made: requests of different processes may reach
// the log in either order, but one process's are pipelined in order, and
// the sequences make only a few ambiguous calls); and a world with entries
// pending in its log also forks into one where they have resolved.
func (wd world) forks(seed uint64, ops []logOp, stream uint32) []world {
	n := 1
	for range wd.held {
		n *= 3
	}
	out := make([]world, 0, n)
	for c := n - 1; c >= 0; c-- {
		f := world{acts: slices.Clone(wd.acts)}
		if c == 0 {
			f.w = wd.w // the last one takes the world itself
		} else {
			f.w = replayWorld(seed, ops, wd.acts)
		}
		for j, x := 0, c; j < len(wd.held); j, x = j+1, x/3 {
			i := wd.held[j]
			switch x % 3 {
			case 0:
				f.held = append(f.held, i)
			case 1:
				f.w.apply(ops[i], fateInFlight)
				f.acts = append(f.acts, act{op: i, kind: fateInFlight})
			case 2:
				f.w.apply(ops[i], fateDone)
				f.acts = append(f.acts, act{op: i, kind: fateDone})
			}
		}
		if f.w.l.Pending(stream) > 0 {
			settled := world{acts: append(slices.Clone(f.acts), act{op: -1, kind: fateSettle}), held: slices.Clone(f.held)}
			settled.w = replayWorld(seed, ops, settled.acts)
			out = append(out, settled)
		}
		out = append(out, f)
	}
	return out
}

// logGen draws a sequence's calls from what the processes know: their
// epochs (from the real log's answers, as a process would know them) and
// the stream's contents (from the first surviving simulated world, which
// agrees with every answer so far).
type logGen struct {
	r        *rand.Rand
	stream   uint32
	epoch    [logWriters]uint64 // the epoch each writer believes it holds
	has      [logWriters]bool   // whether it holds one (writer 0 starts at epoch 0)
	owned    [logWriters][]uint64
	maxEpoch uint64 // the highest epoch any open asked for
	opens    int    // opens that answered OK
	lastRead [3]int // opens (OK) when each process last read
	n        int
}

func newLogGen(seed uint64, stream uint32) *logGen {
	g := &logGen{r: rand.New(rand.NewPCG(seed, 0x106)), stream: stream}
	// Every epoch belongs to one process, as the core's claims do (an epoch
	// is won in the coordination store): writer 0 has the stream's initial
	// epoch 0, every other epoch goes to the writer that first opens it.
	// Two processes writing at one epoch is outside the port's contract
	// (each process answers from its own tenure there), so no sequence
	// makes one.
	g.has[0], g.owned[0] = true, []uint64{0}
	return g
}

func (g *logGen) data(w int, epoch, lsn uint64) []byte {
	return fmt.Appendf(nil, "w%d-e%d-l%d-%d", w, epoch, lsn, g.r.IntN(1000))
}

// next draws the next call given the committed entries of the world.
func (g *logGen) next(committed []model.LogEntry) logOp {
	g.n++
	tail := uint64(len(committed))
	w := g.r.IntN(logWriters)
	open := func(class string, epoch uint64) logOp {
		if epoch > g.maxEpoch {
			g.maxEpoch = epoch
			g.owned[w] = append(g.owned[w], epoch)
		}
		return logOp{Proc: w, Class: class, Req: model.LogRequest{Kind: model.LogOpen, Stream: g.stream, Epoch: epoch}}
	}
	app := func(class string, epoch, lsn uint64, data []byte) logOp {
		return logOp{Proc: w, Class: class, Req: model.LogRequest{Kind: model.LogAppend, Stream: g.stream, Epoch: epoch, LSN: lsn, Data: data}}
	}
	p := g.r.IntN(100)
	if g.n == 1 && p < 70 {
		p = 0 // most sequences start with an open
	}
	e := g.epoch[w]
	var stale []uint64
	for _, o := range g.owned[w] {
		if o < g.maxEpoch {
			stale = append(stale, o)
		}
	}
	switch {
	case p < 14 || !g.has[w]:
		return open("open/new-epoch", g.maxEpoch+1)
	case p < 17:
		return open("open/reopen", e)
	case p < 20 && len(stale) > 0:
		return open("open/stale-epoch", stale[g.r.IntN(len(stale))])
	case p < 23:
		op := open("open/ambiguous", g.maxEpoch+1)
		op.AmbiguousMs = ambiguousMs(g.r)
		return op
	case p < 50:
		class := "append/next"
		if e == 0 {
			class = "append/epoch-0"
		}
		return app(class, e, tail+1, g.data(w, e, tail+1))
	case p < 58:
		op := app("append/ambiguous", e, tail+1, g.data(w, e, tail+1))
		op.AmbiguousMs = ambiguousMs(g.r)
		return op
	case p < 62 && tail > 0:
		l := 1 + g.r.Uint64N(tail)
		return app("append/retry-same-data", e, l, bytes.Clone(committed[l-1].Data))
	case p < 65 && tail > 0:
		l := 1 + g.r.Uint64N(tail)
		return app("append/retry-other-data", e, l, g.data(w, e, l))
	case p < 68:
		return app("append/gap", e, tail+2+g.r.Uint64N(2), g.data(w, e, tail+2))
	case p < 71:
		return app("append/unopened-epoch", g.maxEpoch+1, tail+1, g.data(w, g.maxEpoch+1, tail+1))
	}
	// A read by a writer or the auditor.
	proc := g.r.IntN(3)
	class := "read/from-lsn"
	from := uint64(0)
	switch q := g.r.IntN(10); {
	case q < 2:
		from = 0
		class = "read/from-0"
	case q < 3:
		from = tail + 1 + g.r.Uint64N(3)
		class = "read/past-tail"
	default:
		from = 1 + g.r.Uint64N(tail+1)
	}
	if g.opens > g.lastRead[proc] && g.lastRead[proc] > 0 {
		class = "read/after-takeover" // its reader may reconnect and see messages again
	}
	g.lastRead[proc] = g.opens
	return logOp{Proc: proc, Class: class, Req: model.LogRequest{Kind: model.LogRead, Stream: g.stream, FromLSN: from, MaxEntries: []int{0, 1, 2, 5}[g.r.IntN(4)]}}
}

func ambiguousMs(r *rand.Rand) int { return []int{1, 3, 10, 30}[r.IntN(4)] }

// saw updates what the processes know from the real answer.
func (g *logGen) saw(op logOp, o logOut) {
	if op.Req.Kind != model.LogOpen || op.Proc >= logWriters {
		return
	}
	if !o.Unknown && o.Err == model.ErrNone {
		g.epoch[op.Proc], g.has[op.Proc] = op.Req.Epoch, true
		g.opens++
	}
	if o.Unknown && op.Req.Epoch > g.epoch[op.Proc] {
		// A process that does not know whether its open happened tries
		// its appends at that epoch (as the core retries the open).
		g.epoch[op.Proc], g.has[op.Proc] = op.Req.Epoch, true
		g.opens++
	}
}

// documentedLog: a difference the README lists as a deliberate abstraction,
// when the real answer and the world's differ in exactly that way.
func documentedLog(op logOp, real, sim logOut, w *simLogWorld) (string, bool) {
	// conformance.FencedRetryMayAnswerOK: a fenced process retries its
	// own append of an entry that is committed with the same data; Pulsar's
	// adapter may answer OK from its healthy-looking tenure, the simulator
	// answers fenced.
	if op.Req.Kind == model.LogAppend && !real.Unknown && real.Err == model.ErrNone && sim.Err == model.ErrFenced && !sim.Unknown {
		c := w.l.Committed(op.Req.Stream)
		if op.Req.LSN <= uint64(len(c)) && bytes.Equal(c[op.Req.LSN-1].Data, op.Req.Data) && real.LSN == op.Req.LSN {
			return "fenced-retry-may-answer-ok", true
		}
	}
	// A fenced process is refused from its own view of the stream: the
	// real adapter answers a gap or a conflict from its tenure's tail and
	// its cache of recent entries before it touches the topic (where it
	// would find the higher open); the simulator checks the epoch first.
	// Both refuse and write nothing; the core re-claims on a gap or a
	// conflict, and the re-claim's open is fenced.
	if !real.Unknown && (real.Err == model.ErrLSNGap || real.Err == model.ErrLSNConflict) && !sim.Unknown && sim.Err == model.ErrFenced {
		return "fenced-writer-refused-from-its-view", true
	}
	return "", false
}

// refusedWithoutEffect: a refusal of the real adapter that the README lists as
// a deliberate abstraction and that writes nothing, though the simulator,
// whose log has no per-process state, answers otherwise in every world. Its
// world is the one where the call never reached the log; the later reads and
// the final contents hold the real log to that. before and outs are the
// earlier calls and their real answers.
func refusedWithoutEffect(op logOp, real logOut, before []logOp, outs []logOut) (string, bool) {
	if op.Req.Kind != model.LogAppend || real.Unknown {
		return "", false
	}
	switch real.Err {
	case model.ErrUnavailable:
		// Another process's open at a higher epoch is still running (its
		// caller stopped waiting): its unload took this process's
		// producer, the re-attach found no higher open in the topic yet,
		// and the adapter answers unavailable (definitely not written).
		for k, o := range before {
			if outs[k].Unknown && o.Req.Kind == model.LogOpen && o.Proc != op.Proc && o.Req.Epoch > op.Req.Epoch {
				return "append-meets-a-takeover-in-flight", true
			}
		}
	case model.ErrLSNConflict:
		// The process's own append at this LSN with other data is still
		// in flight (its caller stopped waiting): the adapter refuses the
		// conflict against it, though that send may yet fail.
		for k, o := range before {
			if outs[k].Unknown && o.Proc == op.Proc && o.Req.Kind == model.LogAppend && o.Req.LSN == op.Req.LSN && !bytes.Equal(o.Req.Data, op.Req.Data) {
				return "conflict-with-an-append-in-flight", true
			}
		}
	}
	return "", false
}

// runLogSequence runs one sequence against the worlds and the real side and
// returns its tally and differences.
func runLogSequence(seed uint64, stream uint32, real logSide) (tally, []string) {
	tl := tally{}
	g := newLogGen(seed, stream)
	worlds := []world{{w: newSimLogWorld(seed)}}
	var ops []logOp
	var trace []string
	capped := false
	unknowns := 0
	var outs []logOut // the real answers, one per op
	step := func(op logOp) bool {
		r, se, err := real.do(op)
		ro := logOutOf(op, r, se, err)
		i := len(ops)
		ops = append(ops, op)
		outs = append(outs, ro)
		refusal, refused := refusedWithoutEffect(op, ro, ops[:i], outs[:i])
		var next []world
		var first logOut
		exact, doc := false, ""
		seen := map[string]bool{}
		keep := func(f world) {
			fp := f.w.fingerprint(stream, f.held)
			switch {
			case seen[fp]:
			case len(next) >= maxWorlds:
				capped = true
			default:
				seen[fp] = true
				next = append(next, f)
			}
		}
		for wi, wd := range worlds {
			for fi, f := range wd.forks(seed, ops[:i], stream) {
				if op.ambiguous() && ro.Unknown {
					// Held: it may reach the log before any later call, or never.
					h := world{w: replayWorld(seed, ops, f.acts), acts: append(slices.Clone(f.acts), act{op: i, kind: fateLost}), held: append(slices.Clone(f.held), i)}
					keep(h)
					exact = true
				}
				if refused {
					// The call never reached the log: its world is f
					// with the call lost and not held.
					keep(world{w: replayWorld(seed, ops, f.acts), acts: append(slices.Clone(f.acts), act{op: i, kind: fateLost}), held: slices.Clone(f.held)})
					doc = refusal
				}
				so := f.w.apply(op, fateAnswered)
				if wi == 0 && fi == 0 {
					first = so
				}
				if reflect.DeepEqual(so, ro) {
					exact = true
				} else if d, ok := documentedLog(op, ro, so, f.w); ok {
					doc = d
				} else {
					continue
				}
				f.acts = append(f.acts, act{op: i, kind: fateAnswered})
				keep(f)
			}
		}
		cls := op.Class + " -> ok"
		if ro.Err != model.ErrNone || ro.Unknown {
			cls = op.Class + " -> " + ro.String()
		}
		if ro.Unknown {
			unknowns++
		}
		line := fmt.Sprintf("p%d %s: real %s", op.Proc, describeLogReq(op), ro)
		if err != nil && !op.ambiguous() {
			line += fmt.Sprintf(" (%v)", err)
		}
		g.saw(op, ro)
		if len(next) == 0 {
			tl.add(cls, false, false)
			line += fmt.Sprintf(", sim %s  <-- differs", first)
			if capped {
				line += fmt.Sprintf(" (worlds were capped at %d: the agreeing one may have been dropped)", maxWorlds)
			}
			trace = append(trace, line)
			return false
		}
		if !exact {
			cls += " [documented: " + doc + "]"
		}
		tl.add(cls, exact, !exact)
		if !exact {
			line += fmt.Sprintf(", sim %s (documented: %s)", first, doc)
		}
		trace = append(trace, line)
		worlds = next
		return true
	}
	ok := true
	for range logOps {
		if ok = step(g.next(worlds[0].w.l.Committed(stream))); !ok {
			break
		}
	}
	if ok && unknowns > 0 {
		if q, isQ := real.(quiescer); isQ {
			q.quiesce()
		}
	}
	if ok {
		// The final contents, read by the auditor from the start.
		ok = step(logOp{Proc: logAuditor, Class: "final-contents", Req: model.LogRequest{Kind: model.LogRead, Stream: stream, FromLSN: 1}})
	}
	if f, isF := real.(interface{ finished(stream uint32) }); isF {
		f.finished(stream)
	}
	if ok {
		return tl, nil
	}
	return tl, []string{fmt.Sprintf("log seed %d (stream %d):\n  %s", seed, stream, strings.Join(trace, "\n  "))}
}

func describeLogReq(op logOp) string {
	r := op.Req
	amb := ""
	if op.ambiguous() {
		amb = fmt.Sprintf(" (waits %d ms)", op.AmbiguousMs)
	}
	switch r.Kind {
	case model.LogOpen:
		return fmt.Sprintf("open(e%d)%s", r.Epoch, amb)
	case model.LogAppend:
		return fmt.Sprintf("append(e%d, lsn %d, %q)%s", r.Epoch, r.LSN, r.Data, amb)
	}
	return fmt.Sprintf("read(from %d, max %d)", r.FromLSN, r.MaxEntries)
}

// runLogFidelity runs n sequences, workers at a time, stream i for seed i
// (offset by base), against real, reports, and returns the tally.
func runLogFidelity(t *testing.T, service, what string, n, workers int, base uint32, real logSide) tally {
	start := time.Now()
	var (
		mu    sync.Mutex
		all   = tally{}
		diffs []string
		seeds = make(chan uint64)
		wg    sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range seeds {
				tl, d := runLogSequence(seed, base+uint32(seed), real)
				mu.Lock()
				all.merge(tl)
				diffs = append(diffs, d...)
				mu.Unlock()
			}
		}()
	}
	for seed := range uint64(n) {
		mu.Lock()
		stop := len(diffs) > 10
		mu.Unlock()
		if stop {
			break
		}
		seeds <- seed
	}
	close(seeds)
	wg.Wait()
	report(t, service, what, n, time.Since(start), all, diffs)
	return all
}
