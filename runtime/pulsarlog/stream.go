package pulsarlog

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"

	"territory/model"
	"territory/model/logfence"
)

const (
	// writerName is the producer name every writer of a stream uses: broker
	// deduplication state is kept per producer name.
	writerName = "territory-writer"
	// indexStride: one in-memory checkpoint every indexStride LSNs.
	indexStride = 64
	// checkpointEvery: the advisory topic-property checkpoint is refreshed
	// every checkpointEvery acknowledged appends (and after every open).
	checkpointEvery = 1024
	// maxDataSize keeps an entry below the broker's default 5 MiB message
	// limit, headers included.
	maxDataSize = 5<<20 - 64<<10
)

// stream is one subgraph's topic as seen by this process. The writer
// protocol is logfence.Writer (sans-IO); the stream runs its effects against
// Pulsar and feeds their results back. The Writer is only touched under mu;
// effects run outside it, in the order they were emitted, by one executor at
// a time (sends must reach the producer in LSN order), the ones that wait
// for an answer on goroutines of their own.
type stream struct {
	l     *Log
	id    uint32
	topic string
	tn    utils.TopicName

	// rd serialises reads (they share one reader).
	rd chan struct{}

	mu      sync.Mutex // guards everything below; never held across a call into Pulsar
	core    *logfence.Writer
	prods   map[uint64]pulsar.Producer
	reqs    map[uint64]*request
	nextReq uint64
	effq    []logfence.Effect
	running bool // an executor is draining effq

	ix         *index
	ckptLoaded bool
	ckptSaved  pos
	ckptSaving bool
	sinceCkpt  int
	cur        *cursor // the sequential read cursor (guarded by rd, not mu)
}

// request is a Do call waiting for its Reply.
type request struct {
	ctx  context.Context
	done chan logfence.Reply
}

func newStream(l *Log, id uint32) *stream {
	s := &stream{
		l:     l,
		id:    id,
		topic: l.Topic(id),
		rd:    make(chan struct{}, 1),
		core:  logfence.NewWriter(id),
		prods: map[uint64]pulsar.Producer{},
		reqs:  map[uint64]*request{},
		ix:    newIndex(indexStride),
	}
	if tn, err := utils.GetTopicName(s.topic); err == nil {
		s.tn = *tn
	}
	return s
}

func acquireSem(ctx context.Context, c chan struct{}) error {
	select {
	case c <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func releaseSem(c chan struct{}) { <-c }

func (s *stream) close() {
	s.mu.Lock()
	prods := s.prods
	s.prods = map[uint64]pulsar.Producer{}
	s.mu.Unlock()
	for _, p := range prods {
		p.Close()
	}
	// A read in flight keeps its cursor; it is closed with the client.
	select {
	case s.rd <- struct{}{}:
		if s.cur != nil {
			s.cur.r.Close()
			s.cur = nil
		}
		<-s.rd
	default:
	}
}

// note records what a fold learned.
func (s *stream) note(st logfence.Fold) {
	s.mu.Lock()
	s.core.Note(st)
	s.mu.Unlock()
}

// ---- driving the core ----

// submit starts one request on the core and waits for its reply.
func (s *stream) submit(ctx context.Context, start func(w *logfence.Writer, req uint64) []logfence.Effect) (logfence.Reply, error) {
	return s.start(ctx, start).wait(ctx)
}

// start starts one request on the core without waiting.
func (s *stream) start(ctx context.Context, start func(w *logfence.Writer, req uint64) []logfence.Effect) *request {
	s.loadCheckpoint(ctx)
	r := &request{ctx: ctx, done: make(chan logfence.Reply, 1)}
	s.feed(func(w *logfence.Writer) []logfence.Effect {
		s.nextReq++
		s.reqs[s.nextReq] = r
		return start(w, s.nextReq)
	})
	return r
}

// wait waits for the reply to r.
func (r *request) wait(ctx context.Context) (logfence.Reply, error) {
	select {
	case rep := <-r.done:
		return rep, nil
	case <-ctx.Done():
		// Still in progress: it may happen. A retry of the same append
		// joins it or finds it committed.
		return logfence.Reply{}, fmt.Errorf("waiting for the answer: %w", ctx.Err())
	}
}

// feed steps the core under mu and runs the effects it returns.
func (s *stream) feed(step func(w *logfence.Writer) []logfence.Effect) {
	s.mu.Lock()
	for _, e := range step(s.core) {
		switch e := e.(type) {
		case logfence.Reply:
			if r := s.reqs[e.Req]; r != nil {
				delete(s.reqs, e.Req)
				r.done <- e
			}
		case logfence.Indexed:
			s.indexed(e)
		default:
			s.effq = append(s.effq, e)
		}
	}
	if s.running {
		s.mu.Unlock()
		return
	}
	s.running = true
	for len(s.effq) > 0 {
		e := s.effq[0]
		s.effq = s.effq[1:]
		s.mu.Unlock()
		s.run(e)
		s.mu.Lock()
	}
	s.running = false
	s.mu.Unlock()
}

func (s *stream) input(in any) {
	s.feed(func(w *logfence.Writer) []logfence.Effect { return w.Step(in) })
}

// indexed records a checkpoint the core learned (under mu).
func (s *stream) indexed(e logfence.Indexed) {
	s.ix.add(e.C, e.Marker)
	save := e.Marker
	if !e.Marker {
		s.sinceCkpt++
		if s.sinceCkpt >= checkpointEvery {
			s.sinceCkpt = 0
			save = true
		}
	}
	if save {
		go s.saveCheckpointAsync()
	}
}

// ctxOf is the context of the request an effect works for.
func (s *stream) ctxOf(req uint64) (context.Context, context.CancelFunc) {
	s.mu.Lock()
	r := s.reqs[req]
	s.mu.Unlock()
	if r != nil {
		return r.ctx, func() {}
	}
	return context.WithTimeout(context.Background(), s.l.cfg.OperationTimeout)
}

func (s *stream) producer(id uint64) pulsar.Producer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prods[id]
}

// run starts one effect: sends and closes in line (in order), the rest on a
// goroutine that feeds the answer back.
func (s *stream) run(e logfence.Effect) {
	switch e := e.(type) {
	case logfence.CloseProducer:
		s.mu.Lock()
		p := s.prods[e.Prod]
		delete(s.prods, e.Prod)
		s.mu.Unlock()
		if p != nil {
			p.Close()
		}
	case logfence.SendData:
		p := s.producer(e.Prod)
		if p == nil {
			go s.input(logfence.DataSent{Prod: e.Prod, LSN: e.Rec.LSN, Err: errors.New("producer closed")})
			return
		}
		seq := e.Seq
		// The send's fate must not depend on any caller's context: a
		// cancelled message could leave a hole under later ones.
		p.SendAsync(context.Background(), &pulsar.ProducerMessage{
			Payload:    e.Data,
			Properties: e.Rec.Props(),
			SequenceID: &seq,
		}, func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			// In send order, on the client's goroutine: step the core here
			// (acks must reach it in order) and run what follows elsewhere.
			s.mu.Lock()
			effs := s.core.Step(logfence.DataSent{Prod: e.Prod, LSN: e.Rec.LSN, At: posOf(id), Err: err})
			s.mu.Unlock()
			if len(effs) > 0 {
				go s.feed(func(*logfence.Writer) []logfence.Effect { return effs })
			}
		})
	case logfence.CreateProducer:
		go s.createProducer(e)
	case logfence.Unload:
		go func() {
			ctx, cancel := s.ctxOf(e.Req)
			defer cancel()
			err := s.l.admin.Topics().UnloadWithContext(ctx, s.tn)
			if err != nil {
				err = fmt.Errorf("unload %s: %w", s.topic, err)
			}
			s.input(logfence.Unloaded{Err: err})
		}()
	case logfence.FoldToEnd:
		go func() {
			ctx, cancel := s.ctxOf(e.Req)
			defer cancel()
			st, err := s.foldToEnd(ctx)
			s.input(logfence.Folded{St: st, Err: err})
		}()
	case logfence.FoldUpTo:
		go func() {
			ctx, cancel := s.ctxOf(e.Req)
			defer cancel()
			st, err := s.foldUpTo(ctx, e.Target)
			s.input(logfence.Folded{St: st, Err: err})
		}()
	case logfence.SendMarker:
		go func() {
			ctx, cancel := s.ctxOf(e.Req)
			defer cancel()
			p := s.producer(e.Prod)
			if p == nil {
				s.input(logfence.MarkerSent{Prod: e.Prod, Err: errors.New("producer closed")})
				return
			}
			id, err := p.Send(ctx, &pulsar.ProducerMessage{Properties: e.Rec.Props()})
			s.input(logfence.MarkerSent{Prod: e.Prod, At: posOf(id), LastSeq: p.LastSequenceID(), Err: err})
		}()
	case logfence.ReadSum:
		go func() {
			ctx, cancel := s.ctxOf(e.Req)
			defer cancel()
			resp, err := s.read(ctx, e.LSN, 1)
			in := logfence.SumRead{Req: e.Req, LSN: e.LSN, Err: err}
			if err == nil && len(resp.Entries) > 0 && resp.Entries[0].LSN == e.LSN {
				in.Sum, in.Found = sha256.Sum256(resp.Entries[0].Data), true
			}
			s.input(in)
		}()
	default:
		panic(fmt.Sprintf("pulsarlog: unknown effect %T", e))
	}
}

// isBusy: the broker refused the exclusive producer because another one is
// attached. (Exclusive mode answers ProducerFenced "Topic has an existing
// exclusive producer"; a same-name producer still registered on a dead
// connection answers "already connected".)
func isBusy(err error) bool {
	m := err.Error()
	return strings.Contains(m, "existing exclusive producer") ||
		strings.Contains(m, "ProducerBusy") ||
		strings.Contains(m, "is already connected") ||
		strings.Contains(m, "existing shared producers")
}

// createProducer attaches the exclusive producer (after the delay the core
// asks for), unless the request it works for has given up.
func (s *stream) createProducer(e logfence.CreateProducer) {
	ctx, cancel := s.ctxOf(e.Req)
	defer cancel()
	if e.DelayMs > 0 {
		select {
		case <-time.After(time.Duration(e.DelayMs) * time.Millisecond):
		case <-ctx.Done():
		}
	}
	if err := ctx.Err(); err != nil {
		s.input(logfence.ProducerCreated{Prod: e.Prod, GaveUp: true, Err: err})
		return
	}
	prod, err := s.l.client.CreateProducer(pulsar.ProducerOptions{
		Topic:              s.topic,
		Name:               writerName,
		ProducerAccessMode: pulsar.ProducerAccessModeExclusive,
		DisableBatching:    true,
		SendTimeout:        s.l.cfg.OperationTimeout,
		MaxPendingMessages: 4096,
	})
	if err != nil {
		s.input(logfence.ProducerCreated{Prod: e.Prod, Busy: isBusy(err), Err: err})
		return
	}
	s.mu.Lock()
	s.prods[e.Prod] = prod
	s.mu.Unlock()
	s.input(logfence.ProducerCreated{Prod: e.Prod})
}

// answer turns the core's reply into Do's results.
func answer(rep logfence.Reply, err error) (model.LogResponse, model.ServiceErr, error) {
	if err != nil {
		return model.LogResponse{}, model.ErrNone, err
	}
	if rep.Unknown != nil {
		return model.LogResponse{}, model.ErrNone, rep.Unknown
	}
	return rep.Resp, rep.Err, nil
}

func (s *stream) open(ctx context.Context, epoch uint64) (model.LogResponse, model.ServiceErr, error) {
	resp, serr, err := answer(s.submit(ctx, func(w *logfence.Writer, req uint64) []logfence.Effect { return w.Open(req, epoch) }))
	if err != nil {
		err = fmt.Errorf("open stream %d epoch %d: %w", s.id, epoch, err)
	}
	return resp, serr, err
}

func (s *stream) append(ctx context.Context, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
	if len(req.Data) > maxDataSize {
		return model.LogResponse{}, model.ErrNone, fmt.Errorf("append stream %d lsn %d: %d bytes exceed %d", s.id, req.LSN, len(req.Data), maxDataSize)
	}
	sum := logfence.Sum(sha256.Sum256(req.Data))
	resp, serr, err := answer(s.submit(ctx, func(w *logfence.Writer, id uint64) []logfence.Effect {
		return w.Append(id, req.Epoch, req.LSN, req.Data, sum)
	}))
	if err != nil {
		err = fmt.Errorf("append stream %d lsn %d epoch %d: %w", s.id, req.LSN, req.Epoch, err)
	}
	return resp, serr, err
}

// ---- advisory checkpoint in the topic properties ----

// loadCheckpoint reads the topic's checkpoint once (best effort: a missing
// topic or property only means folds start earlier).
func (s *stream) loadCheckpoint(ctx context.Context) {
	s.mu.Lock()
	done := s.ckptLoaded
	s.ckptLoaded = true
	s.mu.Unlock()
	if done {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	props, err := s.l.admin.Topics().GetPropertiesWithContext(cctx, s.tn)
	if err != nil {
		return
	}
	c, err := logfence.ParseCkpt(props[checkpointProp])
	if err != nil {
		return
	}
	s.mu.Lock()
	s.ix.add(c, true)
	s.ckptSaved = c.At
	s.core.Note(c.St)
	s.mu.Unlock()
}

// saveCheckpointAsync stores the latest checkpoint in the topic's properties
// (best effort, one at a time). Any true fold state is a valid checkpoint,
// so a stale or lost update is harmless.
func (s *stream) saveCheckpointAsync() {
	s.mu.Lock()
	if s.ckptSaving || !s.ix.has || !s.ckptSaved.Less(s.ix.last.At) {
		s.mu.Unlock()
		return
	}
	s.ckptSaving = true
	c := s.ix.last
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.l.cfg.OperationTimeout)
	defer cancel()
	err := s.l.admin.Topics().UpdatePropertiesWithContext(ctx, s.tn, map[string]string{checkpointProp: c.Encode()})
	s.mu.Lock()
	s.ckptSaving = false
	if err == nil && s.ckptSaved.Less(c.At) {
		s.ckptSaved = c.At
	}
	s.mu.Unlock()
}
