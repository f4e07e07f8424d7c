// Package driver runs one protocol state machine (a model.Node) against real
// services: the production counterpart of the simulator's world (sim/world.go).
//
// One goroutine owns the node. It drains a bounded mailbox of inputs (messages
// from the network, local submissions) and an internal queue of completions
// (service results, timers, watch events), calls node.Step with the real
// clock, and executes each effect:
//
//   - Send goes to the Transport, which must not block (it drops instead).
//   - CoordCall, LogCall and BlobCall run on their own goroutines, at most
//     MaxConcurrency at a time, each under a deadline of TimeoutMs counted from
//     the Step that asked for it. Exactly one result comes back per call:
//     OutcomeOK; OutcomeFailed with the ServiceErr for a definite refusal (or
//     ErrUnavailable when the call never started before its deadline); or
//     OutcomeTimeout when the executor returned an error: a deadline or a
//     transport failure after which the operation may or may not have happened.
//   - CoordCall of kind CoordWatch starts Coord.Watch; its CoordResult says
//     whether the watch was established in time; changes then arrive as
//     WatchEvent inputs for the driver's lifetime.
//   - DiskCall goes to the Disk executor (a host's cache files) the same way.
//   - SetTimer arms Clock.AfterFunc, which posts TimerFired.
//   - Observe calls the observer, on the owner goroutine.
//
// Completions never go through the bounded mailbox: their number is bounded by
// the effects in flight, and dropping one would break the core's "exactly one
// result per call" contract. Network input that finds the mailbox full is
// dropped, as a lossy network would.
//
// Shutdown: when Run's context is cancelled the driver stops taking inputs,
// waits (at most DrainTimeout) for the service calls in flight, steps their
// results (messages those steps send still go out; new service calls and
// timers are dropped: the node is going away, as after a crash), and returns.
package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"territory/model"
)

// Transport carries messages between hosts. Send must not block: a message
// the transport cannot take is dropped (the protocols tolerate loss).
type Transport interface {
	Send(from, to model.HostID, msg *model.Message)
}

// Coord executes coordination-store requests. An error return means the
// outcome is unknown; a ServiceErr other than ErrNone is a definite refusal.
type Coord interface {
	Do(ctx context.Context, req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error)
	// Watch returns once the watch is established (or fails), then calls fn
	// for every change under prefix until ctx is done.
	Watch(ctx context.Context, prefix string, fn func(model.WatchEvent)) error
}

// Log executes replicated-log requests (same error contract as Coord).
type Log interface {
	Do(ctx context.Context, req model.LogRequest) (model.LogResponse, model.ServiceErr, error)
}

// Blob executes object-store requests (same error contract as Coord).
type Blob interface {
	Do(ctx context.Context, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error)
}

// Disk executes local-disk requests (same error contract as Coord).
type Disk interface {
	Do(ctx context.Context, req model.DiskRequest) (model.DiskResponse, model.ServiceErr, error)
}

// Clock is the host's clock.
type Clock interface {
	NowMs() int64
	// AfterFunc calls f once after d; stop cancels it if it has not run.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// RealClock is the wall clock.
type RealClock struct{}

// NowMs is time.Now in Unix milliseconds.
func (RealClock) NowMs() int64 { return time.Now().UnixMilli() }

// AfterFunc is time.AfterFunc.
func (RealClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Config configures a driver. Node and ID are required; a nil service makes
// every call to it fail with ErrUnavailable.
type Config struct {
	ID        model.HostID
	Node      model.Node
	Transport Transport
	Coord     Coord
	Log       Log
	Blob      Blob
	Disk      Disk
	Clock     Clock // RealClock if nil
	// Observer sees every Observe effect, on the owner goroutine: keep it fast.
	Observer func(id model.HostID, f model.Fact)
	// MailboxSize bounds queued network and local inputs (default 1024).
	MailboxSize int
	// MaxConcurrency bounds service calls executing at once (default 64).
	MaxConcurrency int
	// DrainTimeout bounds the wait for calls in flight at shutdown (default 5s).
	DrainTimeout time.Duration
	Logger       *slog.Logger
	Metrics      *Metrics // optional
}

type item struct {
	in model.Input
	fn func(step func(model.Input))
}

// Driver runs one node. Create it with New, start it with Run.
type Driver struct {
	cfg      Config
	name     string
	mailbox  chan item
	sem      chan struct{}
	mu       sync.Mutex
	done     []model.Input // completions, owner-drained (under mu)
	inflight int           // service calls whose result is not in done yet (under mu)
	wake     chan struct{}
	stopping atomic.Bool
	running  atomic.Bool
	exited   chan struct{}
	out      model.Outbox
	timers   map[uint64]func() bool // armed timers, by id (owner-only)
	watchCtx context.Context
	stopAll  context.CancelFunc
	watchMu  sync.Mutex
	watches  map[string]*watchState // by prefix (under watchMu)
}

// watchState is the one watch of a prefix: done is closed when Coord.Watch
// has returned, with err (nil: established, for the driver's lifetime).
type watchState struct {
	done chan struct{}
	err  error
}

// ErrStopped is returned by posts to a driver that is shutting down or gone.
var ErrStopped = errors.New("driver: stopped")

// New checks cfg and returns a driver that is not running yet.
func New(cfg Config) (*Driver, error) {
	if cfg.Node == nil || cfg.ID == 0 {
		return nil, errors.New("driver: Node and a positive ID are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.MailboxSize <= 0 {
		cfg.MailboxSize = 1024
	}
	if cfg.MaxConcurrency <= 0 {
		cfg.MaxConcurrency = 64
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Driver{cfg: cfg, name: fmt.Sprint(cfg.ID),
		mailbox: make(chan item, cfg.MailboxSize), sem: make(chan struct{}, cfg.MaxConcurrency),
		wake: make(chan struct{}, 1), exited: make(chan struct{}), timers: map[uint64]func() bool{}, watches: map[string]*watchState{}}
	d.watchCtx, d.stopAll = context.WithCancel(context.Background())
	return d, nil
}

// ID is the node's host id.
func (d *Driver) ID() model.HostID { return d.cfg.ID }

// Done is closed when Run has returned.
func (d *Driver) Done() <-chan struct{} { return d.exited }

// Post queues an input without blocking; false if the mailbox is full or the
// driver is stopping (the input is dropped).
func (d *Driver) Post(in model.Input) bool {
	if d.stopping.Load() {
		return false
	}
	select {
	case d.mailbox <- item{in: in}:
		return true
	default:
		d.cfg.Metrics.dropped(d.name)
		return false
	}
}

// Deliver is Post of a MessageIn: what a transport calls.
func (d *Driver) Deliver(from model.HostID, msg *model.Message) bool {
	return d.Post(model.MessageIn{From: from, Msg: msg})
}

// PostWait queues an input, waiting while the mailbox is full.
func (d *Driver) PostWait(ctx context.Context, in model.Input) error {
	return d.enqueue(ctx, item{in: in})
}

// Exec runs fn on the owner goroutine; fn may step inputs into the node (and
// may touch the node, which nothing else may). It returns once fn is queued.
func (d *Driver) Exec(ctx context.Context, fn func(step func(model.Input))) error {
	return d.enqueue(ctx, item{fn: fn})
}

func (d *Driver) enqueue(ctx context.Context, it item) error {
	if d.stopping.Load() {
		return ErrStopped
	}
	select {
	case d.mailbox <- it:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-d.exited:
		return ErrStopped
	}
}

// complete queues a completion for the owner; call says it ends a service
// call counted in inflight.
func (d *Driver) complete(in model.Input, call bool) {
	d.mu.Lock()
	d.done = append(d.done, in)
	if call {
		d.inflight--
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Driver) takeCompletions() []model.Input {
	c, _ := d.takeCompletionsCount()
	return c
}

func (d *Driver) takeCompletionsCount() ([]model.Input, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.done
	d.done = nil
	return c, d.inflight
}

func (d *Driver) startCall() {
	d.mu.Lock()
	d.inflight++
	d.mu.Unlock()
}

// Run delivers Start, then runs the node until ctx is cancelled, then drains
// (see the package comment). It returns nil after a clean shutdown, or an
// error if calls were still in flight at the drain deadline.
func (d *Driver) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("driver: Run called twice")
	}
	defer close(d.exited)
	defer d.stopAll()
	d.step(model.Start{})
	for {
		select {
		case <-ctx.Done():
			return d.drain()
		case it := <-d.mailbox:
			d.handle(it)
		case <-d.wake:
			for _, in := range d.takeCompletions() {
				d.step(in)
			}
		}
	}
}

func (d *Driver) handle(it item) {
	if it.fn != nil {
		it.fn(d.step)
		return
	}
	d.step(it.in)
}

func (d *Driver) drain() error {
	d.stopping.Store(true)
	for id, stop := range d.timers {
		stop()
		delete(d.timers, id)
	}
	deadline := time.NewTimer(d.cfg.DrainTimeout)
	defer deadline.Stop()
	for {
		done, n := d.takeCompletionsCount()
		for _, in := range done {
			d.step(in) // may start no new call: stopping is set
		}
		if n == 0 {
			return nil
		}
		select {
		case <-d.wake:
		case <-deadline.C:
			d.cfg.Logger.Warn("driver: calls still in flight at the drain deadline", "host", d.cfg.ID, "calls", n)
			return fmt.Errorf("driver %d: %d calls still in flight after %s", d.cfg.ID, n, d.cfg.DrainTimeout)
		}
	}
}

// step feeds one input to the node and executes the effects.
func (d *Driver) step(in model.Input) {
	if t, ok := in.(model.TimerFired); ok {
		delete(d.timers, t.ID)
	}
	d.out.Reset()
	d.cfg.Node.Step(d.cfg.Clock.NowMs(), in, &d.out)
	for _, e := range d.out.Effects {
		d.execute(e)
	}
}

func (d *Driver) execute(e model.Effect) {
	stopping := d.stopping.Load()
	switch e := e.(type) {
	case model.Send:
		if d.cfg.Transport != nil {
			d.cfg.Transport.Send(d.cfg.ID, e.To, e.Msg)
		}
	case model.CoordCall:
		if stopping {
			return
		}
		if e.Req.Kind == model.CoordWatch {
			d.watch(e)
			return
		}
		d.call("coord", coordOp(e.Req.Kind), e.TimeoutMs, func(ctx context.Context, notStarted bool) model.Input {
			resp, o, se := serve(ctx, notStarted, d.cfg.Coord, e.Req, false)
			return model.CoordResult{ReqID: e.ReqID, Outcome: o, Err: se, Resp: resp}
		})
	case model.LogCall:
		if stopping {
			return
		}
		// A definite log failure keeps its response (the tail LSN it reports).
		d.call("log", logOp(e.Req.Kind), e.TimeoutMs, func(ctx context.Context, notStarted bool) model.Input {
			resp, o, se := serve(ctx, notStarted, d.cfg.Log, e.Req, true)
			return model.LogResult{ReqID: e.ReqID, Outcome: o, Err: se, Resp: resp}
		})
	case model.BlobCall:
		if stopping {
			return
		}
		d.call("blob", blobOp(e.Req.Kind), e.TimeoutMs, func(ctx context.Context, notStarted bool) model.Input {
			resp, o, se := serve(ctx, notStarted, d.cfg.Blob, e.Req, false)
			return model.BlobResult{ReqID: e.ReqID, Outcome: o, Err: se, Resp: resp}
		})
	case model.DiskCall:
		if stopping {
			return
		}
		d.call("disk", diskOp(e.Req.Kind), e.TimeoutMs, func(ctx context.Context, notStarted bool) model.Input {
			resp, o, se := serve(ctx, notStarted, d.cfg.Disk, e.Req, false)
			return model.DiskResult{ReqID: e.ReqID, Outcome: o, Err: se, Resp: resp}
		})
	case model.SetTimer:
		if stopping {
			return
		}
		id := e.ID
		d.timers[id] = d.cfg.Clock.AfterFunc(time.Duration(max(e.AfterMs, 0))*time.Millisecond, func() {
			d.complete(model.TimerFired{ID: id}, false)
		})
	case model.Observe:
		if d.cfg.Observer != nil {
			d.cfg.Observer(d.cfg.ID, e.Fact)
		}
	default:
		panic(fmt.Sprintf("driver: unknown effect %T", e))
	}
}

func outcome(se model.ServiceErr, err error) (model.Outcome, model.ServiceErr) {
	switch {
	case err != nil:
		return model.OutcomeTimeout, model.ErrNone
	case se != model.ErrNone:
		return model.OutcomeFailed, se
	}
	return model.OutcomeOK, model.ErrNone
}

// call runs f on its own goroutine under the call's deadline, waiting for one
// of MaxConcurrency slots; f gets notStarted=true if the deadline passed
// before a slot was free (the call certainly did not happen).
func (d *Driver) call(service, op string, timeoutMs int64, f func(ctx context.Context, notStarted bool) model.Input) {
	deadline := time.Now().Add(time.Duration(max(timeoutMs, 1)) * time.Millisecond)
	d.startCall()
	go func() {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			d.complete(f(ctx, true), true)
			return
		}
		start := time.Now()
		in := f(ctx, false)
		<-d.sem
		d.cfg.Metrics.observe(service, op, in, time.Since(start))
		d.complete(in, true)
	}()
}

// watch establishes a watch for the driver's lifetime; the CoordResult says
// whether it was established within the call's timeout.
//
// A driver keeps one watch per prefix, as the simulated store does (one
// watch per host and prefix): a registration of a prefix whose watch is
// established, or still being established (an earlier registration timed
// out, but its watch may yet come up), starts no second one, which would
// deliver every change twice and never be released; it waits for the
// existing one. Only a watch that failed is started again.
func (d *Driver) watch(e model.CoordCall) {
	if d.cfg.Coord == nil {
		d.complete(model.CoordResult{ReqID: e.ReqID, Outcome: model.OutcomeFailed, Err: model.ErrUnavailable}, false)
		return
	}
	d.startCall()
	prefix := e.Req.Key
	d.watchMu.Lock()
	ws := d.watches[prefix]
	if ws != nil {
		select {
		case <-ws.done:
			if ws.err != nil {
				ws = nil // failed: start again
			}
		default:
		}
	}
	if ws == nil {
		ws = &watchState{done: make(chan struct{})}
		d.watches[prefix] = ws
		go func() {
			ws.err = d.cfg.Coord.Watch(d.watchCtx, prefix, func(ev model.WatchEvent) {
				// Back-pressure into the watch stream rather than drop a change.
				_ = d.PostWait(d.watchCtx, ev)
			})
			close(ws.done)
		}()
	}
	d.watchMu.Unlock()
	go func() {
		start := time.Now()
		r := model.CoordResult{ReqID: e.ReqID}
		select {
		case <-ws.done:
			if ws.err == nil {
				r.Outcome = model.OutcomeOK
			} else {
				r.Outcome = model.OutcomeTimeout
			}
		case <-time.After(time.Duration(max(e.TimeoutMs, 1)) * time.Millisecond):
			r.Outcome = model.OutcomeTimeout // it may still come up
		}
		d.cfg.Metrics.observe("coord", coordOp(model.CoordWatch), r, time.Since(start))
		d.complete(r, true)
	}()
}

// doer is any service executor: Coord, Log, Blob, Disk.
type doer[Req, Resp any] interface {
	Do(ctx context.Context, req Req) (Resp, model.ServiceErr, error)
}

// serve runs one service call for an effect: a call that never started (its
// deadline passed waiting for a slot) or has no executor definitely failed; an
// error means the outcome is unknown. The response is kept on success, and on
// a definite failure too when keepFailed.
func serve[Req, Resp any](ctx context.Context, notStarted bool, svc doer[Req, Resp], req Req, keepFailed bool) (Resp, model.Outcome, model.ServiceErr) {
	var zero Resp
	if notStarted || svc == nil {
		return zero, model.OutcomeFailed, model.ErrUnavailable
	}
	resp, se, err := svc.Do(ctx, req)
	o, se := outcome(se, err)
	if o == model.OutcomeOK || (o == model.OutcomeFailed && keepFailed) {
		return resp, o, se
	}
	return zero, o, se
}
