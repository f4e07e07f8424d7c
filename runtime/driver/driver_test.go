package driver

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"territory/model"
)

// probe is a test node: it records every input and emits what react says.
type probe struct {
	inputs chan model.Input
	react  func(in model.Input, out *model.Outbox)
}

func newProbe(react func(model.Input, *model.Outbox)) *probe {
	return &probe{inputs: make(chan model.Input, 1024), react: react}
}

func (p *probe) Step(_ int64, in model.Input, out *model.Outbox) {
	p.inputs <- in
	if p.react != nil {
		p.react(in, out)
	}
}

func (p *probe) next(t *testing.T) model.Input {
	t.Helper()
	select {
	case in := <-p.inputs:
		return in
	case <-time.After(5 * time.Second):
		t.Fatal("no input")
	}
	return nil
}

// logFunc adapts a function to the Log port.
type logFunc func(ctx context.Context, req model.LogRequest) (model.LogResponse, model.ServiceErr, error)

func (f logFunc) Do(ctx context.Context, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
	return f(ctx, req)
}

type blobFunc func(ctx context.Context, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error)

func (f blobFunc) Do(ctx context.Context, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error) {
	return f(ctx, req)
}

func start(t *testing.T, cfg Config) (*Driver, context.CancelFunc, chan error) {
	t.Helper()
	if cfg.ID == 0 {
		cfg.ID = 1
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-d.Done()
	})
	return d, cancel, done
}

// TestOutcomes: each call gets exactly one result, with the outcome the
// executor's answer implies.
func TestOutcomes(t *testing.T) {
	node := newProbe(func(in model.Input, out *model.Outbox) {
		if _, ok := in.(model.Start); ok {
			for id := uint64(1); id <= 4; id++ {
				out.Add(model.LogCall{ReqID: id, Req: model.LogRequest{Kind: model.LogAppend, LSN: id}, TimeoutMs: 100})
			}
		}
	})
	log := logFunc(func(ctx context.Context, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
		switch req.LSN {
		case 1:
			return model.LogResponse{LSN: 1, TailLSN: 1}, model.ErrNone, nil
		case 2:
			return model.LogResponse{TailLSN: 1}, model.ErrFenced, nil
		case 3:
			return model.LogResponse{}, model.ErrNone, errors.New("connection reset")
		}
		<-ctx.Done() // never answers: the deadline must fire
		return model.LogResponse{}, model.ErrNone, ctx.Err()
	})
	start(t, Config{Node: node, Log: log})
	if _, ok := node.next(t).(model.Start); !ok {
		t.Fatal("first input is not Start")
	}
	got := map[uint64]model.LogResult{}
	for range 4 {
		r, ok := node.next(t).(model.LogResult)
		if !ok {
			t.Fatal("not a LogResult")
		}
		if _, dup := got[r.ReqID]; dup {
			t.Fatalf("two results for call %d", r.ReqID)
		}
		got[r.ReqID] = r
	}
	want := map[uint64]struct {
		o model.Outcome
		e model.ServiceErr
	}{1: {model.OutcomeOK, model.ErrNone}, 2: {model.OutcomeFailed, model.ErrFenced}, 3: {model.OutcomeTimeout, model.ErrNone}, 4: {model.OutcomeTimeout, model.ErrNone}}
	for id, w := range want {
		if got[id].Outcome != w.o || got[id].Err != w.e {
			t.Errorf("call %d: %v/%v, want %v/%v", id, got[id].Outcome, got[id].Err, w.o, w.e)
		}
	}
	if got[1].Resp.LSN != 1 {
		t.Errorf("call 1 lost its response: %+v", got[1])
	}
	select {
	case in := <-node.inputs:
		t.Fatalf("extra input %#v", in)
	case <-time.After(150 * time.Millisecond):
	}
}

// TestConcurrencyBound: at most MaxConcurrency calls run at once; a call that
// waits for a slot past its deadline never starts and fails definitely.
func TestConcurrencyBound(t *testing.T) {
	node := newProbe(func(in model.Input, out *model.Outbox) {
		if _, ok := in.(model.Start); ok {
			for id := uint64(1); id <= 5; id++ {
				out.Add(model.BlobCall{ReqID: id, Req: model.BlobRequest{Kind: model.BlobGet}, TimeoutMs: 200})
			}
		}
	})
	var running, peak, started atomic.Int64
	release := make(chan struct{})
	blob := blobFunc(func(ctx context.Context, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error) {
		started.Add(1)
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		return model.BlobResponse{Exists: true}, model.ErrNone, nil
	})
	start(t, Config{Node: node, Blob: blob, MaxConcurrency: 2})
	node.next(t) // Start
	var failed int
	for range 3 {
		r := node.next(t).(model.BlobResult)
		if r.Outcome != model.OutcomeFailed || r.Err != model.ErrUnavailable {
			t.Fatalf("a call that could not start: %+v", r)
		}
		failed++
	}
	close(release)
	for range 2 {
		if r := node.next(t).(model.BlobResult); r.Outcome != model.OutcomeOK || !r.Resp.Exists {
			t.Fatalf("a call that ran: %+v", r)
		}
	}
	if peak.Load() != 2 || started.Load() != 2 {
		t.Fatalf("peak %d started %d, want 2 and 2", peak.Load(), started.Load())
	}
}

// TestTimersObserveAndSend: timers fire as TimerFired, Observe reaches the
// observer, Send reaches the transport.
type sendRec struct {
	mu   sync.Mutex
	sent []model.HostID
}

func (s *sendRec) Send(from, to model.HostID, msg *model.Message) {
	s.mu.Lock()
	s.sent = append(s.sent, to)
	s.mu.Unlock()
}

func TestTimersObserveAndSend(t *testing.T) {
	node := newProbe(func(in model.Input, out *model.Outbox) {
		if _, ok := in.(model.Start); ok {
			out.Add(model.SetTimer{ID: 7, AfterMs: 30})
			out.Add(model.SetTimer{ID: 8, AfterMs: 0})
			out.Add(model.Observe{Fact: model.FactOperational{Territory: 1, Subgraph: 3}})
			out.Add(model.Send{To: 9, Msg: &model.Message{Reply: &model.Reply{}}})
		}
	})
	facts := make(chan model.Fact, 1)
	tr := &sendRec{}
	begin := time.Now()
	start(t, Config{Node: node, Transport: tr, Observer: func(id model.HostID, f model.Fact) { facts <- f }})
	node.next(t)
	if f := (<-facts).(model.FactOperational); f.Subgraph != 3 {
		t.Fatalf("fact %+v", f)
	}
	if tf := node.next(t).(model.TimerFired); tf.ID != 8 {
		t.Fatalf("first timer %d", tf.ID)
	}
	if tf := node.next(t).(model.TimerFired); tf.ID != 7 || time.Since(begin) < 30*time.Millisecond {
		t.Fatalf("second timer %d after %s", tf.ID, time.Since(begin))
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.sent) != 1 || tr.sent[0] != 9 {
		t.Fatalf("sent %v", tr.sent)
	}
}

// TestDrain: shutdown waits for the call in flight and steps its result;
// calls asked for while draining are not started; posts are refused after.
func TestDrain(t *testing.T) {
	var calls atomic.Int64
	node := newProbe(func(in model.Input, out *model.Outbox) {
		switch in.(type) {
		case model.Start, model.LogResult:
			out.Add(model.LogCall{ReqID: uint64(calls.Load() + 1), Req: model.LogRequest{Kind: model.LogRead}, TimeoutMs: 5000})
			out.Add(model.SetTimer{ID: 1, AfterMs: 1})
		}
	})
	log := logFunc(func(ctx context.Context, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
		calls.Add(1)
		time.Sleep(150 * time.Millisecond)
		return model.LogResponse{TailLSN: 42}, model.ErrNone, nil
	})
	d, cancel, done := start(t, Config{Node: node, Log: log})
	node.next(t)
	time.Sleep(20 * time.Millisecond) // the call is running
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	var sawResult bool
	for len(node.inputs) > 0 {
		switch in := (<-node.inputs).(type) {
		case model.LogResult:
			sawResult = in.Resp.TailLSN == 42
		case model.TimerFired:
			// the timer may have fired before the cancel
		}
	}
	if !sawResult {
		t.Fatal("the result of the call in flight was not stepped")
	}
	if calls.Load() != 1 {
		t.Fatalf("%d calls started; the one asked for while draining must not", calls.Load())
	}
	if d.Post(model.TimerFired{ID: 5}) {
		t.Fatal("a stopped driver accepted an input")
	}
}

// TestDrainDeadline: a call that never ends makes Run give up after DrainTimeout.
func TestDrainDeadline(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	node := newProbe(func(in model.Input, out *model.Outbox) {
		if _, ok := in.(model.Start); ok {
			out.Add(model.LogCall{ReqID: 1, TimeoutMs: 60_000})
		}
	})
	log := logFunc(func(ctx context.Context, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
		<-block
		return model.LogResponse{}, model.ErrNone, nil
	})
	_, cancel, done := start(t, Config{Node: node, Log: log, DrainTimeout: 100 * time.Millisecond})
	node.next(t)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run reported a clean drain with a call in flight")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not give up")
	}
}

// TestMailboxBound: a full mailbox drops network input instead of blocking.
func TestMailboxBound(t *testing.T) {
	gate := make(chan struct{})
	node := newProbe(func(in model.Input, out *model.Outbox) {
		if _, ok := in.(model.Start); ok {
			<-gate // the owner is busy
		}
	})
	d, err := New(Config{ID: 1, Node: node, MailboxSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go d.Run(ctx)
	defer func() { cancel(); <-d.Done() }()
	accepted := 0
	for range 5 {
		if d.Deliver(2, &model.Message{}) {
			accepted++
		}
	}
	close(gate)
	if accepted != 2 {
		t.Fatalf("accepted %d of 5 with a mailbox of 2", accepted)
	}
}

type watchCoord struct{}

func (watchCoord) Do(context.Context, model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
	return model.CoordResponse{}, model.ErrNone, nil
}

func (watchCoord) Watch(ctx context.Context, prefix string, fn func(model.WatchEvent)) error {
	go func() {
		fn(model.WatchEvent{KV: model.KV{Key: prefix + "a", ModRevision: 5}})
		fn(model.WatchEvent{KV: model.KV{Key: prefix + "a"}, Deleted: true})
	}()
	return nil
}

func TestWatch(t *testing.T) {
	node := newProbe(func(in model.Input, out *model.Outbox) {
		if _, ok := in.(model.Start); ok {
			out.Add(model.CoordCall{ReqID: 1, Req: model.CoordRequest{Kind: model.CoordWatch, Key: "p/"}, TimeoutMs: 1000})
		}
	})
	start(t, Config{Node: node, Coord: watchCoord{}})
	node.next(t)
	var result, put, del bool
	for range 3 {
		switch in := node.next(t).(type) {
		case model.CoordResult:
			result = in.ReqID == 1 && in.Outcome == model.OutcomeOK
		case model.WatchEvent:
			if in.Deleted {
				del = put // in order
			} else {
				put = in.KV.Key == "p/a" && in.KV.ModRevision == 5
			}
		}
	}
	if !result || !put || !del {
		t.Fatalf("result %v put %v delete %v", result, put, del)
	}
}

// slowWatchCoord: Watch is established only when release is closed; every
// call to Watch is counted, and every established watch delivers one event.
type slowWatchCoord struct {
	calls   atomic.Int64
	release chan struct{}
}

func (*slowWatchCoord) Do(context.Context, model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
	return model.CoordResponse{}, model.ErrNone, nil
}

func (c *slowWatchCoord) Watch(ctx context.Context, prefix string, fn func(model.WatchEvent)) error {
	c.calls.Add(1)
	select {
	case <-c.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	go fn(model.WatchEvent{KV: model.KV{Key: prefix + "a", ModRevision: 7}})
	return nil
}

// TestWatchReRegistration: a registration that timed out while its watch
// was coming up, then a registration of the same prefix, give one watch, not
// two: one call to Watch, each change delivered once; a registration after
// the watch is up answers at once without another.
func TestWatchReRegistration(t *testing.T) {
	coord := &slowWatchCoord{release: make(chan struct{})}
	node := newProbe(func(in model.Input, out *model.Outbox) {
		switch in := in.(type) {
		case model.Start:
			out.Add(model.CoordCall{ReqID: 1, Req: model.CoordRequest{Kind: model.CoordWatch, Key: "p/"}, TimeoutMs: 20})
		case model.CoordResult:
			if in.ReqID < 3 {
				out.Add(model.CoordCall{ReqID: in.ReqID + 1, Req: model.CoordRequest{Kind: model.CoordWatch, Key: "p/"}, TimeoutMs: 5000})
			}
		}
	})
	start(t, Config{Node: node, Coord: coord})
	node.next(t) // Start
	if r := node.next(t).(model.CoordResult); r.ReqID != 1 || r.Outcome != model.OutcomeTimeout {
		t.Fatalf("first registration: %+v", r)
	}
	close(coord.release) // the first watch comes up while the second waits
	events := 0
	var results []model.CoordResult
	deadline := time.After(2 * time.Second)
	for len(results) < 2 || events < 1 {
		select {
		case <-deadline:
			t.Fatalf("results %+v events %d", results, events)
		default:
		}
		switch in := node.next(t).(type) {
		case model.CoordResult:
			results = append(results, in)
		case model.WatchEvent:
			events++
		}
	}
	for _, r := range results {
		if r.Outcome != model.OutcomeOK {
			t.Fatalf("registration %d: %v", r.ReqID, r.Outcome)
		}
	}
	select {
	case in := <-node.inputs:
		t.Fatalf("extra input %#v (a second watch?)", in)
	case <-time.After(150 * time.Millisecond):
	}
	if n := coord.calls.Load(); n != 1 {
		t.Fatalf("%d watches opened for one prefix", n)
	}
}
