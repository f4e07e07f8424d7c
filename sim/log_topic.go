package sim

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"territory/model"
	"territory/model/logfence"
	"territory/sim/kernel"
	"territory/sim/pulsartopic"
	"territory/sim/replog"
)

// Log backends of the world (Config.LogBackend).
const (
	LogBookies = ""      // sim/replog: BookKeeper semantics over simulated bookies (default)
	LogTopic   = "topic" // the production fencing protocol (model/logfence) over a simulated Pulsar topic
)

// logService is the world's replicated log.
type logService interface {
	Do(caller model.HostID, incarnation int, req model.LogRequest, done replog.Done)
	SetCommitHook(fn func(stream uint32, lsn uint64, epoch uint64, data []byte))
	Committed(stream uint32) []model.LogEntry
	Streams() []uint32
	CrashBookie(i int)
	StallBookie(i int, untilUs int64)
	RestartBookie(i int)
	BookieCrashed(i int) bool
}

// bookieLog is sim/replog as a logService: one broker, no per-process state.
type bookieLog struct{ *replog.Log }

func (b bookieLog) Do(_ model.HostID, _ int, req model.LogRequest, done replog.Done) {
	b.Log.Do(req, done)
}

func (w *World) newLog() (logService, error) {
	switch w.cfg.LogBackend {
	case LogBookies:
		l, err := replog.New(w.k, w.k.Stream("log"), w.cfg.Log)
		return bookieLog{l}, err
	case LogTopic:
		return newTopicLog(w.k, w.k.Stream("log"), w.cfg.Topic, func(id model.HostID, inc int) (bool, bool) {
			h := w.hosts[id]
			return h.up && h.incarnation == inc, h.paused
		})
	}
	return nil, fmt.Errorf("sim: unknown log backend %q", w.cfg.LogBackend)
}

// topicLog runs the production fencing protocol: every territory process
// (host incarnation) has its own logfence.Writer per stream, as a territoryd
// process has its runtime/pulsarlog, and the writers share the simulated
// broker. The committed log the checkers read is the fold of each topic
// (logfence.Cursor over the persisted messages), taken as they persist.
//
// Where it differs from production: the writer runs at the log service's
// end of the simulated network (the territory's request travels the network
// to it, then the writer talks to the broker with the broker's latency), not
// inside the territory process; the process's state still decides it: a
// writer whose process crashed does nothing more (its producer is closed, as
// the broker closes it when the connection drops) and a paused process's
// writer is paused with it (its inputs and effects wait).
type topicLog struct {
	k       *kernel.Kernel
	b       *pulsartopic.Broker
	state   func(model.HostID, int) (alive, paused bool)
	writers map[writerKey]*topicWriter
	order   []writerKey // creation order (deterministic iteration)
	folds   map[uint32]*topicFold
	hook    func(stream uint32, lsn uint64, epoch uint64, data []byte)
	stats   topicStats
}

// topicStats counts what the fencing protocol did in a run.
type topicStats struct {
	Unloads, Fenced, Unknown int
}

type writerKey struct {
	host   model.HostID
	inc    int
	stream uint32
}

type topicFold struct {
	cur     logfence.Cursor
	entries []model.LogEntry
}

// writerName is the producer name of every writer (runtime/pulsarlog's).
const writerName = "territory-writer"

// topicOpTimeoutUs bounds the attach a request drives (pulsarlog: the
// request's context).
const topicOpTimeoutUs = 3_000_000

func newTopicLog(k *kernel.Kernel, rnd *kernel.Rand, cfg pulsartopic.Config, state func(model.HostID, int) (bool, bool)) (*topicLog, error) {
	b, err := pulsartopic.New(k, rnd, cfg)
	if err != nil {
		return nil, err
	}
	l := &topicLog{k: k, b: b, state: state, writers: map[writerKey]*topicWriter{}, folds: map[uint32]*topicFold{}}
	b.OnPersist = l.persisted
	return l, nil
}

func (l *topicLog) persisted(stream uint32, m pulsartopic.Message) {
	f := l.folds[stream]
	if f == nil {
		f = &topicFold{}
		l.folds[stream] = f
	}
	rec, entry, _ := f.cur.Step(m.At, m.Props, stream)
	if !entry {
		return
	}
	f.entries = append(f.entries, model.LogEntry{LSN: rec.LSN, Data: m.Payload})
	if l.hook != nil {
		l.hook(stream, rec.LSN, rec.Epoch, m.Payload)
	}
}

func (l *topicLog) SetCommitHook(fn func(stream uint32, lsn uint64, epoch uint64, data []byte)) {
	l.hook = fn
}

func (l *topicLog) Committed(stream uint32) []model.LogEntry {
	if f := l.folds[stream]; f != nil {
		return f.entries
	}
	return nil
}

func (l *topicLog) Streams() []uint32 { return l.b.Topics() }

// The topic backend has no bookies: bookie faults do not apply to it.
func (l *topicLog) CrashBookie(int)             {}
func (l *topicLog) StallBookie(int, int64)      {}
func (l *topicLog) RestartBookie(int)           {}
func (l *topicLog) BookieCrashed(int) bool      { return false }
func (l *topicLog) Broker() *pulsartopic.Broker { return l.b }

func (l *topicLog) Do(caller model.HostID, inc int, req model.LogRequest, done replog.Done) {
	key := writerKey{caller, inc, req.Stream}
	tw := l.writers[key]
	if alive, _ := l.state(caller, inc); !alive {
		// A request of an incarnation that crashed while it crossed the
		// network: the process is gone, so nobody waits for an answer (the
		// world drops answers to dead incarnations anyway), and its writer,
		// if it has one, does nothing more.
		if tw != nil && !tw.dead {
			tw.kill()
		}
		return
	}
	if tw == nil {
		l.retire(caller, inc)
		tw = &topicWriter{l: l, key: key, topic: l.b.Topic(req.Stream), core: logfence.NewWriter(req.Stream),
			prods: map[uint64]*pulsartopic.Producer{}, reqs: map[uint64]topicReq{}}
		l.writers[key] = tw
		l.order = append(l.order, key)
	}
	if tw.dead {
		panic(fmt.Sprintf("sim: the live incarnation %d of host %d has a dead writer", inc, caller))
	}
	if req.Kind == model.LogRead {
		tw.read(req, done)
		return
	}
	tw.next++
	tw.reqs[tw.next] = topicReq{done: done, deadlineUs: l.k.NowUs() + topicOpTimeoutUs}
	if req.Kind == model.LogOpen {
		tw.run(tw.core.Open(tw.next, req.Epoch))
		return
	}
	tw.run(tw.core.Append(tw.next, req.Epoch, req.LSN, req.Data, logfence.Sum(sha256.Sum256(req.Data))))
}

// retire closes the producers of the host's earlier incarnations: their
// process is gone (the broker drops a dead connection's producer).
func (l *topicLog) retire(host model.HostID, inc int) {
	for _, k := range l.order {
		if tw := l.writers[k]; k.host == host && k.inc < inc && !tw.dead {
			tw.kill()
		}
	}
}

// topicWriter runs one process's logfence.Writer for one stream.
type topicWriter struct {
	l     *topicLog
	key   writerKey
	topic *pulsartopic.Topic
	core  *logfence.Writer
	prods map[uint64]*pulsartopic.Producer
	reqs  map[uint64]topicReq
	next  uint64
	dead  bool
}

type topicReq struct {
	done       replog.Done
	deadlineUs int64
}

func (tw *topicWriter) kill() {
	tw.dead = true
	for id := uint64(1); id <= tw.core.Producers(); id++ {
		if p := tw.prods[id]; p != nil {
			p.Close()
		}
	}
	tw.prods, tw.reqs = nil, nil
}

// gate runs fn now if the process is up and running, later if it is
// paused, never if it is gone.
func (tw *topicWriter) gate(fn func()) {
	if tw.dead {
		return
	}
	alive, paused := tw.l.state(tw.key.host, tw.key.inc)
	switch {
	case !alive:
		tw.kill()
	case paused:
		tw.l.k.After(1_000, func() { tw.gate(fn) })
	default:
		fn()
	}
}

func (tw *topicWriter) input(in any) {
	tw.gate(func() { tw.run(tw.core.Step(in)) })
}

func (tw *topicWriter) run(effs []logfence.Effect) {
	for _, e := range effs {
		tw.exec(e)
	}
}

func (tw *topicWriter) exec(e logfence.Effect) {
	k, t := tw.l.k, tw.topic
	switch e := e.(type) {
	case logfence.Reply:
		r, ok := tw.reqs[e.Req]
		delete(tw.reqs, e.Req)
		switch {
		case e.Unknown != nil:
			tw.l.stats.Unknown++
		case e.Err == model.ErrFenced:
			tw.l.stats.Fenced++
		}
		if ok && e.Unknown == nil {
			// An unknown outcome is no answer: the caller's timeout says so.
			k.After(0, func() { r.done(e.Resp, e.Err) })
		}
	case logfence.Indexed:
	case logfence.CreateProducer:
		deadline := tw.reqs[e.Req].deadlineUs
		k.After(e.DelayMs*1000, func() {
			tw.gate(func() {
				if deadline > 0 && k.NowUs() > deadline {
					tw.input(logfence.ProducerCreated{Prod: e.Prod, GaveUp: true, Err: errors.New("deadline passed")})
					return
				}
				t.CreateProducer(writerName, func(p *pulsartopic.Producer, err error) {
					if err != nil {
						tw.input(logfence.ProducerCreated{Prod: e.Prod, Busy: errors.Is(err, pulsartopic.ErrBusy), Err: err})
						return
					}
					if tw.dead {
						p.Close()
						return
					}
					tw.prods[e.Prod] = p
					tw.input(logfence.ProducerCreated{Prod: e.Prod})
				})
			})
		})
	case logfence.CloseProducer:
		if p := tw.prods[e.Prod]; p != nil {
			p.Close()
			delete(tw.prods, e.Prod)
		}
	case logfence.Unload:
		tw.l.stats.Unloads++
		t.Unload(func(err error) { tw.input(logfence.Unloaded{Err: err}) })
	case logfence.FoldToEnd:
		t.ReadAfter(logfence.Pos{}, false, func(msgs []pulsartopic.Message, _ logfence.Pos, _ bool) {
			var c logfence.Cursor
			for _, m := range msgs {
				c.Step(m.At, m.Props, tw.key.stream)
			}
			tw.input(logfence.Folded{St: c.St})
		})
	case logfence.FoldUpTo:
		t.ReadAfter(logfence.Pos{}, false, func(msgs []pulsartopic.Message, _ logfence.Pos, _ bool) {
			var c logfence.Cursor
			for _, m := range msgs {
				if m.At == e.Target {
					tw.input(logfence.Folded{St: c.St})
					return
				}
				c.Step(m.At, m.Props, tw.key.stream)
			}
			tw.input(logfence.Folded{Err: fmt.Errorf("marker at %v not in the topic", e.Target)})
		})
	case logfence.SendMarker:
		p := tw.prods[e.Prod]
		if p == nil {
			k.After(0, func() { tw.input(logfence.MarkerSent{Prod: e.Prod, Err: pulsartopic.ErrClosed}) })
			return
		}
		p.Send(-1, e.Rec.Props(), nil, func(at logfence.Pos, err error) {
			tw.input(logfence.MarkerSent{Prod: e.Prod, At: at, LastSeq: p.LastSequenceID(), Err: err})
		})
	case logfence.SendData:
		p := tw.prods[e.Prod]
		lsn := e.Rec.LSN
		if p == nil {
			k.After(0, func() { tw.input(logfence.DataSent{Prod: e.Prod, LSN: lsn, Err: pulsartopic.ErrClosed}) })
			return
		}
		p.Send(e.Seq, e.Rec.Props(), e.Data, func(at logfence.Pos, err error) {
			tw.input(logfence.DataSent{Prod: e.Prod, LSN: lsn, At: at, Err: err})
		})
	case logfence.ReadSum:
		t.ReadAfter(logfence.Pos{}, false, func(msgs []pulsartopic.Message, _ logfence.Pos, _ bool) {
			var c logfence.Cursor
			for _, m := range msgs {
				if rec, entry, _ := c.Step(m.At, m.Props, tw.key.stream); entry && rec.LSN == e.LSN {
					tw.input(logfence.SumRead{Req: e.Req, LSN: e.LSN, Sum: sha256.Sum256(m.Payload), Found: true})
					return
				}
			}
			tw.input(logfence.SumRead{Req: e.Req, LSN: e.LSN})
		})
	default:
		panic(fmt.Sprintf("sim: unknown log effect %T", e))
	}
}

// read serves LogRead from a fold of the topic, as runtime/pulsarlog does:
// the entries from FromLSN (at most MaxEntries) and the tail at the last
// message when the read was served.
func (tw *topicWriter) read(req model.LogRequest, done replog.Done) {
	from, maxEntries := max(req.FromLSN, 1), req.MaxEntries
	if maxEntries <= 0 {
		maxEntries = replog.DefaultMaxEntries
	}
	tw.topic.ReadAfter(logfence.Pos{}, false, func(msgs []pulsartopic.Message, _ logfence.Pos, _ bool) {
		var c logfence.Cursor
		var entries []model.LogEntry
		for _, m := range msgs {
			if rec, entry, _ := c.Step(m.At, m.Props, tw.key.stream); entry && rec.LSN >= from && len(entries) < maxEntries {
				entries = append(entries, model.LogEntry{LSN: rec.LSN, Data: m.Payload})
			}
		}
		if !tw.dead {
			tw.core.Note(c.St)
		}
		done(model.LogResponse{TailLSN: c.St.Tail, Entries: entries}, model.ErrNone)
	})
}
