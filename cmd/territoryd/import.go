package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"territory/connectome"
	"territory/model"
	"territory/runtime/daemon"
	"territory/runtime/driver"
)

// importSession is the high half of every event_uuid territoryd import
// sends ("importv1"). The low half is a hash of the operation itself with the
// top bit set (importID), so the same operation always carries the same id, in
// every process and on every re-run, and the store answers a repeat from its
// dedup table instead of applying it twice. Ids the client makes itself for
// --verify's reads (NewID: a counter from 1) have the top bit clear, so they
// never meet an import id.
const importSession uint64 = 0x696d706f72747631

// importID is the event_uuid of an import operation: a hash of its kind,
// neurons and value; for an attempt after the first, also of the attempt and
// of this run's nonce (see transientReasons).
func importID(req model.Request, attempt int, nonce uint64) model.EventUUID {
	h := fnv.New64a()
	var b [33]byte
	b[0] = byte(req.Op)
	binary.BigEndian.PutUint64(b[1:], uint64(req.Neuron))
	binary.BigEndian.PutUint64(b[9:], uint64(req.Pre))
	binary.BigEndian.PutUint64(b[17:], uint64(req.Post))
	binary.BigEndian.PutUint64(b[25:], uint64(req.Value))
	h.Write(b[:])
	if attempt > 0 {
		var a [10]byte
		a[1] = byte(attempt)
		binary.BigEndian.PutUint64(a[2:], nonce)
		h.Write(a[:])
	}
	return model.EventUUID{Hi: importSession, Lo: h.Sum64() | 1<<63}
}

// transientReasons are refusals that say nothing about the synapse: the saga's
// peer did not answer in time, or another connect of it was mid-saga. The
// store's dedup table would answer a repeat of the same event_uuid with the
// same refusal, so the import sends these again, up to maxAttempts-1 times,
// each under a fresh id (the attempt and a random nonce of this run): the
// first refusal was final, so a retry is a new operation, and a connect is
// idempotent by its synapse key anyway (a second one answers already-exists).
// A re-run gets the first attempt's refusal back from the dedup table and
// retries under ids of its own.
var transientReasons = []string{model.ReasonSagaTimeout.String(), model.ReasonSagaInProgress.String()}

const maxAttempts = 16

// doer runs one operation under a chosen event_uuid (a daemon.Client; a fake
// store in the tests).
type doer interface {
	DoID(ctx context.Context, req model.Request) (model.Request, model.Result, error)
	Do(ctx context.Context, req model.Request) (model.Request, model.Result, error)
}

// outcome is what an import operation came to.
type outcome uint8

const (
	outPending outcome = iota
	outDone            // ok: created or connected (or the store's replayed answer to an earlier run's same request)
	outPresent         // already-exists: there before this operation
	outRefused         // rejected by the store's policy (Reason)
	outUnknown         // no final answer before the client's deadline: it may or may not have happened
	outFailed          // another final answer (not-found, bad-request) or an error
)

type opResult struct {
	out    outcome
	reason string // refused: the reason code; failed: the status or error
}

// tally counts one phase's outcomes.
type tally struct {
	Total   int            `json:"total"`
	Done    int            `json:"done"`
	Present int            `json:"already_present"`
	Refused map[string]int `json:"refused"`
	Unknown int            `json:"unknown"`
	Failed  map[string]int `json:"failed"`
	// RetriedUnknown: operations whose outcome was unknown and that were
	// sent again (same event_uuid) in the second pass.
	RetriedUnknown int `json:"retried_unknown"`
	// RetriedTransient: sends under a new attempt's event_uuid after a
	// transient refusal (transientReasons).
	RetriedTransient int     `json:"retried_transient"`
	Seconds          float64 `json:"seconds"`
}

func (t *tally) refusedTotal() int {
	n := 0
	for _, v := range t.Refused { // order: a sum
		n += v
	}
	return n
}

func countOf(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	n := 0
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		n += m[k]
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return fmt.Sprintf("%d (%s)", n, strings.Join(parts, ", "))
}

// verifyReport is --verify's comparison of the store with the file.
type verifyReport struct {
	NeuronsPresent  int `json:"neurons_present"`
	NeuronsMissing  int `json:"neurons_missing"`
	SynapsesMatch   int `json:"synapses_match"`   // present with the file's weight
	SynapsesAbsent  int `json:"synapses_absent"`  // absent, as their refusal says
	ResolvedUnknown int `json:"resolved_unknown"` // unknown outcomes the read settled (present with the weight, or absent)
	// DegreesMatch: neurons whose in- and out-degree (as read-neuron reports
	// them) equal the number of the file's synapses read present into and out
	// of them. A saga that compensated gives post's in-slot back
	// asynchronously, so a neuron that differs is read again for up to
	// degreeSettle before it counts as a mismatch.
	DegreesMatch int      `json:"degrees_match"`
	Mismatches   []string `json:"mismatches"` // everything else, one line each
	ReadErrors   int      `json:"read_errors"`
}

// degreeSettle bounds how long --verify waits for a neuron's degrees to
// settle (a compensated saga's in-slot release at post): well above the
// saga timeout plus post's inquiry period.
var degreeSettle = 30 * time.Second

// importSummary is the whole run (printed, and written by --json).
type importSummary struct {
	File       string        `json:"file"`
	SHA256     string        `json:"sha256"`
	Rows       int           `json:"rows"`
	Stats      any           `json:"parse"`
	Neurons    tally         `json:"neurons"`
	Synapses   tally         `json:"synapses"`
	Verify     *verifyReport `json:"verify,omitempty"`
	Seconds    float64       `json:"seconds"`
	SynapsesPS float64       `json:"synapses_per_second"` // connect phase
	Stopped    bool          `json:"stopped"`             // interrupted before the end
	GaveUp     bool          `json:"gave_up"`             // stopped because too many outcomes in a row were unknown
	// outcomes: each synapse's, in the file's (c.Synapses') order
	// (--outcomes writes them).
	outcomes []opResult
}

type importer struct {
	c           doer
	concurrency int
	progress    *progressLine
	// giveUp stops the import after this many unknown outcomes in a row
	// (a cluster that answers nothing); cancel does it.
	giveUp int64
	inARow atomic.Int64
	cancel context.CancelFunc
	gaveUp atomic.Bool
	nonce  uint64 // of this run's retry ids (transientReasons)
}

// run sends every request with at most concurrency in flight and records
// each outcome at its index.
func (im *importer) run(ctx context.Context, reqs []model.Request, res []opResult, todo []int, done *atomic.Int64) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(im.concurrency, max(1, len(todo))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				res[i] = classify(im.c.DoID(ctx, reqs[i]))
				done.Add(1)
				if res[i].out != outUnknown {
					im.inARow.Store(0)
				} else if im.inARow.Add(1) >= im.giveUp && im.giveUp > 0 && im.cancel != nil {
					im.gaveUp.Store(true)
					im.cancel()
				}
			}
		}()
	}
	for _, i := range todo {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
}

func classify(_ model.Request, r model.Result, err error) opResult {
	switch {
	case errors.Is(err, driver.ErrUnknownOutcome), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, driver.ErrStopped):
		return opResult{out: outUnknown}
	case err != nil:
		return opResult{out: outFailed, reason: err.Error()}
	}
	switch r.Status {
	case model.StatusOK:
		return opResult{out: outDone}
	case model.StatusAlreadyExists:
		return opResult{out: outPresent}
	case model.StatusRejected:
		return opResult{out: outRefused, reason: r.Reason.String()}
	}
	return opResult{out: outFailed, reason: r.Status.String()}
}

// phase runs reqs, then sends the unknown ones once more (same ids), and
// tallies the outcomes.
func (im *importer) phase(ctx context.Context, name string, reqs []model.Request) ([]opResult, tally) {
	start := time.Now()
	res := make([]opResult, len(reqs))
	all := make([]int, len(reqs))
	for i := range all {
		all[i] = i
	}
	var done atomic.Int64
	im.progress.setPhase(name, len(reqs), &done)
	im.run(ctx, reqs, res, all, &done)
	var unknown []int
	for i, r := range res {
		if r.out == outUnknown || r.out == outPending {
			unknown = append(unknown, i)
		}
	}
	t := tally{Total: len(reqs), Refused: map[string]int{}, Failed: map[string]int{}}
	if len(unknown) > 0 && ctx.Err() == nil {
		t.RetriedUnknown = len(unknown)
		done.Add(-int64(len(unknown)))
		im.run(ctx, reqs, res, unknown, &done)
	}
	for attempt := 1; attempt < maxAttempts && ctx.Err() == nil; attempt++ {
		var again []int
		for i, r := range res {
			if r.out == outRefused && slices.Contains(transientReasons, r.reason) {
				again = append(again, i)
				reqs[i].ID = importID(reqs[i], attempt, im.nonce)
			}
		}
		if len(again) == 0 {
			break
		}
		t.RetriedTransient += len(again)
		done.Add(-int64(len(again)))
		im.run(ctx, reqs, res, again, &done)
	}
	for _, r := range res {
		switch r.out {
		case outDone:
			t.Done++
		case outPresent:
			t.Present++
		case outRefused:
			t.Refused[r.reason]++
		case outFailed:
			t.Failed[r.reason]++
		default:
			t.Unknown++
		}
	}
	t.Seconds = time.Since(start).Seconds()
	im.progress.endPhase()
	return res, t
}

// verify reads every neuron and synapse back and compares with the file and
// with each operation's outcome.
func (im *importer) verify(ctx context.Context, c *connectome.Connectome, neuronRes, synRes []opResult) *verifyReport {
	rep := &verifyReport{}
	var mu sync.Mutex
	reqs := make([]model.Request, 0, len(c.Neurons)+len(c.Synapses))
	for _, n := range c.Neurons {
		reqs = append(reqs, model.Request{Op: model.OpReadNeuron, Neuron: n.ID})
	}
	for _, s := range c.Synapses {
		reqs = append(reqs, model.Request{Op: model.OpReadSynapse, Pre: s.Pre, Post: s.Post})
	}
	var done atomic.Int64
	got := make([]model.Result, len(reqs))
	im.progress.setPhase("verify", len(reqs), &done)
	defer im.progress.endPhase()
	work := make(chan int)
	var wg sync.WaitGroup
	for range im.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				_, r, err := im.c.Do(ctx, reqs[i])
				done.Add(1)
				mu.Lock()
				im.check(rep, c, i, r, err, neuronRes, synRes)
				if err == nil && r.Status == model.StatusOK {
					got[i] = r
				}
				mu.Unlock()
			}
		}()
	}
	for i := range reqs {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if ctx.Err() == nil {
		im.checkDegrees(ctx, rep, c, got)
	}
	slices.Sort(rep.Mismatches)
	return rep
}

// checkDegrees compares every neuron's degrees with the synapses read present
// (got holds the first reads: neurons, then synapses, in verify's order), and
// reads a neuron that differs again until it agrees or degreeSettle passes.
func (im *importer) checkDegrees(ctx context.Context, rep *verifyReport, c *connectome.Connectome, got []model.Result) {
	in := map[model.NeuronID]uint32{}
	out := map[model.NeuronID]uint32{}
	for j, s := range c.Synapses {
		if got[len(c.Neurons)+j].Exists {
			out[s.Pre]++
			in[s.Post]++
		}
	}
	var pending []int
	for i := range c.Neurons {
		if got[i].Exists { // an absent one is a mismatch already
			pending = append(pending, i)
		}
	}
	deadline := time.Now().Add(degreeSettle)
	for {
		var again []int
		for _, i := range pending {
			n := c.Neurons[i]
			if r := got[i]; r.InDegree != in[n.ID] || r.OutDegree != out[n.ID] {
				again = append(again, i)
			} else {
				rep.DegreesMatch++
			}
		}
		pending = again
		if len(pending) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
		for _, i := range pending {
			if _, r, err := im.c.Do(ctx, model.Request{Op: model.OpReadNeuron, Neuron: c.Neurons[i].ID}); err == nil && r.Status == model.StatusOK {
				got[i] = r
			}
		}
	}
	for _, i := range pending {
		n, r := c.Neurons[i], got[i]
		rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("neuron %s (%d): in-degree %d, out-degree %d; the synapses read present say %d, %d",
			n.Name, n.ID, r.InDegree, r.OutDegree, in[n.ID], out[n.ID]))
	}
}

func (im *importer) check(rep *verifyReport, c *connectome.Connectome, i int, r model.Result, err error, neuronRes, synRes []opResult) {
	if err != nil || r.Status != model.StatusOK {
		rep.ReadErrors++
		return
	}
	if i < len(c.Neurons) {
		n := c.Neurons[i]
		if r.Exists {
			rep.NeuronsPresent++
			if neuronRes[i].out == outUnknown {
				rep.ResolvedUnknown++
			}
		} else {
			rep.NeuronsMissing++
			rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("neuron %s (%d): absent", n.Name, n.ID))
		}
		return
	}
	j := i - len(c.Neurons)
	s := c.Synapses[j]
	pre, _ := c.Name(s.Pre)
	post, _ := c.Name(s.Post)
	what := fmt.Sprintf("synapse %s -> %s (%d -> %d, lines %v)", pre, post, s.Pre, s.Post, s.Lines)
	switch out := synRes[j].out; {
	case r.Exists && r.Value == s.Weight:
		rep.SynapsesMatch++
		if out == outUnknown {
			rep.ResolvedUnknown++
		} else if out == outRefused {
			rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("%s: present although refused (%s)", what, synRes[j].reason))
		}
	case r.Exists:
		rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("%s: weight %d, the file says %d", what, r.Value, s.Weight))
	case out == outRefused:
		rep.SynapsesAbsent++
	case out == outUnknown:
		rep.SynapsesAbsent++
		rep.ResolvedUnknown++
	default:
		rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("%s: absent after %s", what, outcomeName(synRes[j])))
	}
}

func outcomeName(r opResult) string {
	switch r.out {
	case outDone:
		return "ok"
	case outPresent:
		return "already-exists"
	case outRefused:
		return "rejected " + r.reason
	case outFailed:
		return "failed " + r.reason
	}
	return "unknown"
}

// plan is the import's operations: every neuron (by name), then every
// synapse. Synapses go round-robin over their pre neuron's subgraph (each
// subgraph's in the parser's (pre, post) order), so that the operations in
// flight spread over the subgraphs: a subgraph appends one event at a time.
func plan(c *connectome.Connectome, subgraphs uint32) (neurons, synapses []model.Request) {
	for _, n := range c.Neurons {
		r := model.Request{Op: model.OpCreateNeuron, Neuron: n.ID}
		r.ID = importID(r, 0, 0)
		neurons = append(neurons, r)
	}
	lanes := make([][]model.Request, max(1, subgraphs))
	for _, s := range c.Synapses {
		r := model.Request{Op: model.OpConnect, Pre: s.Pre, Post: s.Post, Value: s.Weight}
		r.ID = importID(r, 0, 0)
		sg := 0
		if subgraphs > 0 {
			sg = int(model.SubgraphOf(s.Pre, subgraphs))
		}
		lanes[sg] = append(lanes[sg], r)
	}
	for k := 0; len(synapses) < len(c.Synapses); k++ {
		for _, l := range lanes {
			if k < len(l) {
				synapses = append(synapses, l[k])
			}
		}
	}
	return neurons, synapses
}

// synapseOrder maps the plan's synapse requests back to c.Synapses' indices.
func synapseOrder(c *connectome.Connectome, sreq []model.Request) []int {
	at := make(map[[2]model.NeuronID]int, len(c.Synapses))
	for i, s := range c.Synapses {
		at[[2]model.NeuronID{s.Pre, s.Post}] = i
	}
	out := make([]int, len(sreq))
	for i, r := range sreq {
		out[i] = at[[2]model.NeuronID{r.Pre, r.Post}]
	}
	return out
}

// importRun is the whole import against c; the summary's exit code follows.
func importRun(ctx context.Context, cl doer, subgraphs uint32, c *connectome.Connectome, file string, concurrency int, doVerify bool, prog *progressLine) importSummary {
	return importRunNonce(ctx, cl, subgraphs, c, file, concurrency, doVerify, prog, driver.NewSession())
}

func importRunNonce(ctx context.Context, cl doer, subgraphs uint32, c *connectome.Connectome, file string, concurrency int, doVerify bool, prog *progressLine, nonce uint64) importSummary {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	im := &importer{c: cl, concurrency: concurrency, progress: prog, giveUp: int64(max(64, 2*concurrency)), cancel: cancel, nonce: nonce}
	sum := importSummary{File: file, SHA256: c.SHA256, Rows: c.Stats.Rows, Stats: c.Stats}
	nreq, sreq := plan(c, subgraphs)
	nres, nt := im.phase(ctx, "neurons", nreq)
	sum.Neurons = nt
	var planned []opResult
	if ctx.Err() == nil {
		planned, sum.Synapses = im.phase(ctx, "synapses", sreq)
	} else {
		planned = make([]opResult, len(sreq))
		sum.Synapses = tally{Total: len(sreq), Unknown: len(sreq), Refused: map[string]int{}, Failed: map[string]int{}}
	}
	sres := make([]opResult, len(sreq)) // in c.Synapses' order
	for i, j := range synapseOrder(c, sreq) {
		sres[j] = planned[i]
	}
	sum.outcomes = sres
	if sum.Synapses.Seconds > 0 {
		sum.SynapsesPS = float64(sum.Synapses.Total-sum.Synapses.Unknown) / sum.Synapses.Seconds // answered ones
	}
	if doVerify && ctx.Err() == nil {
		sum.Verify = im.verify(ctx, c, nres, sres)
	}
	sum.Stopped = ctx.Err() != nil
	sum.GaveUp = im.gaveUp.Load()
	sum.Seconds = time.Since(start).Seconds()
	return sum
}

// writeOutcomes writes one tab-separated line per synapse, in the file's
// order after a header: pre and post names, their ids, the outcome (ok,
// already-exists, rejected, failed, unknown) and its reason.
func (s *importSummary) writeOutcomes(w io.Writer, c *connectome.Connectome) error {
	b := bufio.NewWriter(w)
	fmt.Fprintln(b, "pre\tpost\tpre_id\tpost_id\toutcome\treason")
	for i, syn := range c.Synapses {
		pre, _ := c.Name(syn.Pre)
		post, _ := c.Name(syn.Post)
		what, reason, _ := strings.Cut(outcomeName(s.outcomes[i]), " ")
		fmt.Fprintf(b, "%s\t%s\t%d\t%d\t%s\t%s\n", pre, post, syn.Pre, syn.Post, what, reason)
	}
	return b.Flush()
}

func (s *importSummary) exitCode() int {
	switch {
	case s.Verify != nil && (len(s.Verify.Mismatches) > 0 || s.Verify.ReadErrors > 0):
		return 1
	case len(s.Neurons.Failed) > 0 || len(s.Synapses.Failed) > 0:
		return 1
	case s.Stopped || s.Neurons.Unknown > 0 || s.Synapses.Unknown > 0:
		return 3
	}
	return 0
}

func (s *importSummary) print(w io.Writer, c *connectome.Connectome) {
	st := c.Stats
	fmt.Fprintf(w, "territoryd import: %s (sha256 %.12s): %d neurons and %d synapses from %d rows (%d chemical, %d electrical; %d gap-junction directions mirrored, %d pairs merged, %d self-loops)\n",
		s.File, s.SHA256, len(c.Neurons), len(c.Synapses), st.Rows, st.ChemicalRows, st.ElectricalRows, st.GapMirrored, st.Merged, st.SelfLoops)
	n, y := &s.Neurons, &s.Synapses
	fmt.Fprintf(w, "neurons:  %d: created (now, or by an earlier run of this import) %d, already present %d, refused %s, unknown %d, failed %s (%.1fs)\n", n.Total, n.Done, n.Present, countOf(n.Refused), n.Unknown, countOf(n.Failed), n.Seconds)
	fmt.Fprintf(w, "synapses: %d: connected (now, or by an earlier run) %d, already present %d, refused %s, unknown %d, failed %s (%.1fs, %.0f synapses/s)\n", y.Total, y.Done, y.Present, countOf(y.Refused), y.Unknown, countOf(y.Failed), y.Seconds, s.SynapsesPS)
	if n.RetriedUnknown+y.RetriedUnknown > 0 {
		fmt.Fprintf(w, "retried %d operations whose outcome was unknown, with the same event_uuid\n", n.RetriedUnknown+y.RetriedUnknown)
	}
	if y.RetriedTransient > 0 {
		fmt.Fprintf(w, "sent %d connects again under a new attempt's event_uuid after a transient refusal (%s)\n", y.RetriedTransient, strings.Join(transientReasons, ", "))
	}
	if v := s.Verify; v != nil {
		fmt.Fprintf(w, "verify: neurons present %d, missing %d; synapses with the file's weight %d, absent as refused %d; neurons whose degrees match the synapses %d; unknown outcomes settled by the read %d; read errors %d; mismatches %d\n",
			v.NeuronsPresent, v.NeuronsMissing, v.SynapsesMatch, v.SynapsesAbsent, v.DegreesMatch, v.ResolvedUnknown, v.ReadErrors, len(v.Mismatches))
		for i, m := range v.Mismatches {
			if i == 20 {
				fmt.Fprintf(w, "  ... and %d more (all in --json)\n", len(v.Mismatches)-20)
				break
			}
			fmt.Fprintf(w, "  %s\n", m)
		}
	}
	switch {
	case s.GaveUp:
		fmt.Fprintln(w, "gave up: too many operations in a row had unknown outcomes (is the cluster answering?); run the same command again to resume (it is idempotent)")
	case s.Stopped:
		fmt.Fprintln(w, "stopped before the end: run the same command again to resume (it is idempotent)")
	case n.Unknown+y.Unknown > 0:
		fmt.Fprintln(w, "some outcomes are unknown: run the same command again to settle them (same event_uuids, no duplicates)")
	}
}

// progressLine shows the current phase on stderr: one line redrawn in place
// on a terminal, a line every few seconds otherwise, nothing with "none".
type progressLine struct {
	w     io.Writer
	mode  string // tty, lines, none
	every time.Duration
	mu    sync.Mutex
	name  string
	total int
	done  *atomic.Int64
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newProgress(w io.Writer, mode string) (*progressLine, error) {
	p := &progressLine{w: w, mode: mode, every: 2 * time.Second}
	switch mode {
	case "auto":
		p.mode = "lines"
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				p.mode = "tty"
			}
		}
	case "tty", "lines", "none":
	default:
		return nil, fmt.Errorf("--progress %q: want auto, tty, lines or none", mode)
	}
	if p.mode == "tty" {
		p.every = 200 * time.Millisecond
	}
	return p, nil
}

func (p *progressLine) line(final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil || p.mode == "none" {
		return
	}
	d := int(p.done.Load())
	el := time.Since(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(d) / el
	}
	msg := fmt.Sprintf("%s %d/%d (%.0f%%) %.0f/s %.1fs", p.name, d, p.total, 100*float64(d)/float64(max(1, p.total)), rate, el)
	if p.mode == "tty" {
		end := ""
		if final {
			end = "\n"
		}
		fmt.Fprintf(p.w, "\r\x1b[K%s%s", msg, end)
		return
	}
	fmt.Fprintln(p.w, msg)
}

func (p *progressLine) setPhase(name string, total int, done *atomic.Int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.name, p.total, p.done, p.start, p.stop = name, total, done, time.Now(), make(chan struct{})
	p.mu.Unlock()
	p.wg.Add(1)
	go func(stop chan struct{}) {
		defer p.wg.Done()
		t := time.NewTicker(p.every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.line(false)
			}
		}
	}(p.stop)
}

func (p *progressLine) endPhase() {
	if p == nil || p.stop == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.line(true)
	p.mu.Lock()
	p.done, p.stop = nil, nil
	p.mu.Unlock()
}

func importCmd() *cobra.Command {
	var (
		addr, level, progress, jsonOut string
		outcomesOut                    string
		concurrency                    int
		timeout                        time.Duration
		doVerify, dryRun               bool
		tlsFiles                       TLSFiles
	)
	cmd := &cobra.Command{
		Use:   "import [flags] FILE",
		Short: "bulk-load a connectome edge list (Source,Target,Weight,Type; e.g. the C. elegans file of scripts/connectome.sh) into a running cluster, idempotently",
		Long: `import reads the whole edge list first and refuses it, writing nothing, if any row is bad
(every bad row is listed by line). Then it creates every neuron and connects every synapse through
the ordinary client operations, at most --concurrency at a time, and prints a summary: neurons
created, synapses connected, refusals by reason, unknown outcomes.

Neuron ids are a hash of the name, and every operation's event_uuid is a hash of the operation,
so running the same command again (after a kill, say) changes nothing that is there and completes
what is not: the store answers a repeated operation from its dedup table, or already-exists.
A gap junction (electrical row) is two directed synapses; see the README.

Exit codes: 0 every operation got a final answer (policy refusals included); 1 a failure, or
--verify found a mismatch; 2 usage, or a refused file; 3 some outcomes are unknown (run again).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if concurrency < 1 || concurrency > 64 {
				return exitf(2, "import: --concurrency %d not in 1..64 (the client keeps at most 64 in flight)", concurrency)
			}
			prog, err := newProgress(cmd.ErrOrStderr(), progress)
			if err != nil {
				return exitf(2, "import: %v", err)
			}
			c, err := connectome.Load(args[0])
			if err != nil {
				return exitf(2, "import: %v", err)
			}
			out := cmd.OutOrStdout()
			if dryRun {
				fmt.Fprintf(out, "territoryd import --dry-run: %s (sha256 %s): %d neurons, %d synapses, %+v\n", args[0], c.SHA256, len(c.Neurons), len(c.Synapses), c.Stats)
				fmt.Fprintln(out, "name\tid")
				for _, n := range c.Neurons {
					fmt.Fprintf(out, "%s\t%d\n", n.Name, n.ID)
				}
				return nil
			}
			var files *TLSFiles
			if tlsFiles != (TLSFiles{}) {
				if err := tlsFiles.validate("--tls"); err != nil {
					return exitf(2, "import: %v", err)
				}
				files = &tlsFiles
			}
			tlsCfg, err := files.tlsConfig(false)
			if err != nil {
				return exitf(2, "import: --tls-*: %v", err)
			}
			ctx, stop := signalContext()
			defer stop()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			dctx, dcancel := context.WithTimeout(ctx, 15*time.Second)
			cl, err := daemon.DialClientSession(dctx, addr, tlsCfg, newLogger(level), nil, importSession)
			dcancel()
			if err != nil {
				return exitf(1, "import: %v", err)
			}
			defer cl.Close()
			sum := importRun(ctx, cl, cl.Subgraphs, c, args[0], concurrency, doVerify, prog)
			sum.print(out, c)
			if jsonOut != "" {
				b, _ := json.MarshalIndent(sum, "", "  ")
				if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
					return exitf(1, "import: --json: %v", err)
				}
			}
			if outcomesOut != "" {
				f, err := os.Create(outcomesOut)
				if err == nil {
					err = sum.writeOutcomes(f, c)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
				}
				if err != nil {
					return exitf(1, "import: --outcomes: %v", err)
				}
			}
			if code := sum.exitCode(); code != 0 {
				return exitf(code, "import: not complete (see the summary)")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:7420", "address of a territoryd (dev or run)")
	cmd.Flags().IntVar(&concurrency, "concurrency", 32, "operations in flight at once (1..64)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0: no limit; each operation has the client's own deadline)")
	cmd.Flags().BoolVar(&doVerify, "verify", false, "afterwards, read every neuron and synapse back and compare with the file and the outcomes")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "parse the file and print the neuron name -> id mapping; contact no daemon")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress on stderr: auto (a redrawn line on a terminal, else a line every 2 s), tty, lines, none")
	cmd.Flags().StringVar(&jsonOut, "json", "", "also write the summary as JSON to this file")
	cmd.Flags().StringVar(&outcomesOut, "outcomes", "", "also write each synapse's outcome to this file (tab-separated: pre, post, pre_id, post_id, outcome, reason)")
	cmd.Flags().StringVar(&level, "log-level", "error", "log level: debug, info, warn, error")
	cmd.Flags().StringVar(&tlsFiles.CAFile, "tls-ca", "", "PEM file of the CA that signed the daemon's transport certificate (enables TLS)")
	cmd.Flags().StringVar(&tlsFiles.CertFile, "tls-cert", "", "PEM client certificate, when the daemon requires one")
	cmd.Flags().StringVar(&tlsFiles.KeyFile, "tls-key", "", "PEM key of --tls-cert")
	return cmd
}
