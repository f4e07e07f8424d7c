// Package pulsartopic is the simulator's Pulsar broker: persistent topics
// with exclusive producers, broker deduplication by sequence id, readers from
// a message id, and topic unload, driven by the kernel's event queue. With
// model/logfence (the production fencing protocol) on top, it is the second
// log backend of the simulated world (sim/log_topic.go).
//
// What it models, and how it differs from real Pulsar (and why that is safe
// for what the simulator checks):
//
//   - Exclusive producer (ProducerAccessModeExclusive). CreateProducer fails
//     with ErrBusy while another producer is attached. Real Pulsar answers
//     "existing exclusive producer" the same way.
//   - Topic unload drops every producer and reader. A dropped producer is
//     closed for good: in real Pulsar its client reconnects and is refused by
//     the topic epoch (PIP-68), then closes it; here it is closed at once.
//     Same outcome for the writer (every later send fails), minus the
//     reconnect round trip. Each unload starts a new ledger, as a reload does.
//     A send of a dropped producer that was persisted but not yet acknowledged
//     fails (an ambiguous outcome), as in Pulsar, where the pending message's
//     re-send on reconnect is refused.
//   - Broker deduplication: the broker keeps the highest sequence id persisted
//     per producer name; a message at or below it is not stored and is
//     acknowledged without a position (-1:-1), as Pulsar's
//     MessageDeduplication does. A producer starts from that sequence id (the
//     broker tells the client on attach), and a message without one gets the
//     next. Pulsar also deduplicates in-flight messages against its pending
//     map; here, sends of one producer are persisted in order, so checking
//     the highest persisted id is the same check.
//   - Sends of one producer are persisted in send order, each after a broker
//     latency, and acknowledged a latency later: persisted and visible to
//     readers before the acknowledgement (B3 of runtime/pulsarlog), never
//     reordered (B2). Messages of different producers interleave by arrival.
//     Pulsar's quorum writes to bookies are not modelled here: sim/replog
//     models bookies, quorums and their faults.
//   - Faults: a lost send (LostSendPM: not persisted, the send fails after a
//     timeout while later sends of the producer go on, which leaves a hole,
//     as a client send timeout does) and a duplicated send (DupSendPM: the
//     client sends the message twice, as on a reconnect; the broker's dedup
//     drops the copy).
//   - Readers: a read returns every message after a position (or from the
//     start) that is persisted when it is served, after a latency. A read in
//     flight during an unload is served a reconnect later and redelivers the
//     message at its start position (real readers may redeliver after a
//     reconnect); logfence.Cursor skips it. Real readers stream and batch;
//     the fold only needs order and completeness, which both give.
//   - No batching, no partitions, no retention limits, no broker restart
//     (a broker restart is an unload plus latency for the protocol).
package pulsartopic

import (
	"errors"
	"fmt"
	"slices"

	"territory/model/logfence"
	"territory/sim/kernel"
)

// Config tunes the broker.
type Config struct {
	LatencyMinUs int64 `json:"latency_min_us"` // one broker round trip, uniform in [min, max]
	LatencyMaxUs int64 `json:"latency_max_us"`
	// SendTimeoutUs: a lost send fails this long after it was sent.
	SendTimeoutUs int64 `json:"send_timeout_us"`
	LostSendPM    int64 `json:"lost_send_per_million,omitempty"`
	DupSendPM     int64 `json:"dup_send_per_million,omitempty"`
}

// DefaultConfig: 200–2000 µs per round trip, a 200 ms send timeout (below
// the territory's 1 s log call timeout, so a lost send is answered in time), no
// faults.
func DefaultConfig() Config {
	return Config{LatencyMinUs: 200, LatencyMaxUs: 2_000, SendTimeoutUs: 200_000}
}

// Validate checks the latencies and rates.
func (c Config) Validate() error {
	switch {
	case c.LatencyMinUs < 0 || c.LatencyMaxUs < c.LatencyMinUs:
		return fmt.Errorf("pulsartopic: bad latency [%d, %d]", c.LatencyMinUs, c.LatencyMaxUs)
	case c.SendTimeoutUs <= 0:
		return errors.New("pulsartopic: SendTimeoutUs must be positive")
	case c.LostSendPM < 0 || c.LostSendPM > 1_000_000 || c.DupSendPM < 0 || c.DupSendPM > 1_000_000:
		return fmt.Errorf("pulsartopic: rates %d, %d out of [0, 1000000]", c.LostSendPM, c.DupSendPM)
	}
	return nil
}

var (
	// ErrBusy: another exclusive producer is attached.
	ErrBusy = errors.New("pulsartopic: topic has an existing exclusive producer")
	// ErrClosed: the producer is closed (by its owner or by an unload).
	ErrClosed = errors.New("pulsartopic: producer closed")
	// ErrTimeout: the send was lost.
	ErrTimeout = errors.New("pulsartopic: send timed out")
)

// Message is one persisted message.
type Message struct {
	At      logfence.Pos
	Props   map[string]string
	Payload []byte
	Seq     int64
	Name    string // producer name
}

// Broker holds every topic.
type Broker struct {
	k      *kernel.Kernel
	rnd    *kernel.Rand
	cfg    Config
	topics map[uint32]*Topic
	// OnPersist, if set, sees every message as it is persisted.
	OnPersist func(topic uint32, m Message)
}

// Topic is one persistent topic.
type Topic struct {
	b        *Broker
	id       uint32
	msgs     []Message
	ledger   int64
	holder   *Producer
	lastSeq  map[string]int64 // highest persisted sequence id per producer name
	lastPers int64            // virtual time of the latest persist (sends persist in order)
	unloads  int
}

// Producer is an attached producer.
type Producer struct {
	t       *Topic
	name    string
	closed  bool
	lastSeq int64
	pending []*send
}

type send struct {
	persisted bool
	done      func(logfence.Pos, error)
	answered  bool
}

// New returns an empty broker.
func New(k *kernel.Kernel, rnd *kernel.Rand, cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Broker{k: k, rnd: rnd, cfg: cfg, topics: map[uint32]*Topic{}}, nil
}

// SetFaults changes the lost and duplicated send rates (per million).
func (b *Broker) SetFaults(lostPM, dupPM int64) { b.cfg.LostSendPM, b.cfg.DupSendPM = lostPM, dupPM }

func (b *Broker) latency() int64 { return b.rnd.Between(b.cfg.LatencyMinUs, b.cfg.LatencyMaxUs) }

// Topic returns topic id, creating it empty.
func (b *Broker) Topic(id uint32) *Topic {
	t := b.topics[id]
	if t == nil {
		t = &Topic{b: b, id: id, ledger: 1, lastSeq: map[string]int64{}}
		b.topics[id] = t
	}
	return t
}

// Topics returns the ids of the topics, sorted.
func (b *Broker) Topics() []uint32 {
	ids := make([]uint32, 0, len(b.topics))
	for id := range b.topics { // sorted below
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Messages returns the persisted messages (not a copy: do not modify).
func (t *Topic) Messages() []Message { return t.msgs }

// Unloads counts the unloads of the topic.
func (t *Topic) Unloads() int { return t.unloads }

// CreateProducer attaches an exclusive producer named name, after a round trip.
func (t *Topic) CreateProducer(name string, done func(*Producer, error)) {
	t.b.k.After(t.b.latency(), func() {
		if t.holder != nil && !t.holder.closed {
			done(nil, ErrBusy)
			return
		}
		last, ok := t.lastSeq[name]
		if !ok {
			last = -1
		}
		p := &Producer{t: t, name: name, lastSeq: last}
		t.holder = p
		done(p, nil)
	})
}

// LastSequenceID is the highest sequence id the producer has sent (or the
// broker's for its name when it attached).
func (p *Producer) LastSequenceID() int64 { return p.lastSeq }

// Close closes the producer: its sends not yet answered fail.
func (p *Producer) Close() {
	if p.closed {
		return
	}
	p.closed = true
	if p.t.holder == p {
		p.t.holder = nil
	}
	pend := p.pending
	p.pending = nil
	for _, s := range pend {
		s := s
		p.t.b.k.After(0, func() { p.answer(s, logfence.Pos{}, ErrClosed) })
	}
}

func (p *Producer) answer(s *send, at logfence.Pos, err error) {
	if s.answered {
		return
	}
	s.answered = true
	if i := slices.Index(p.pending, s); i >= 0 {
		p.pending = slices.Delete(p.pending, i, i+1)
	}
	s.done(at, err)
}

// Send sends one message (seq < 0: the next sequence id). done gets its
// position, (-1:-1) for a duplicate the broker dropped, or an error.
func (p *Producer) Send(seq int64, props map[string]string, payload []byte, done func(logfence.Pos, error)) {
	b := p.t.b
	s := &send{done: done}
	if p.closed {
		b.k.After(0, func() { p.answer(s, logfence.Pos{}, ErrClosed) })
		return
	}
	if seq < 0 {
		seq = p.lastSeq + 1
	}
	p.lastSeq = max(p.lastSeq, seq)
	p.pending = append(p.pending, s)
	if b.rnd.Chance(b.cfg.LostSendPM) {
		b.k.After(b.cfg.SendTimeoutUs, func() { p.answer(s, logfence.Pos{}, ErrTimeout) })
		return
	}
	t := p.t
	at := max(b.k.NowUs()+b.latency(), t.lastPers)
	t.lastPers = at
	copies := 1
	if b.rnd.Chance(b.cfg.DupSendPM) {
		copies = 2
	}
	for c := range copies {
		b.k.At(at+int64(c), func() {
			if p.closed && t.holder != p {
				if c == 0 {
					p.answer(s, logfence.Pos{}, ErrClosed)
				}
				return
			}
			pos := t.persist(p.name, seq, props, payload)
			if c > 0 {
				return // the copy: dropped by dedup (or stored, if dedup broke)
			}
			s.persisted = true
			b.k.After(b.latency(), func() {
				if p.closed {
					p.answer(s, logfence.Pos{}, ErrClosed) // persisted, but the answer is lost
					return
				}
				p.answer(s, pos, nil)
			})
		})
	}
}

// persist stores a message unless the broker's dedup drops it.
func (t *Topic) persist(name string, seq int64, props map[string]string, payload []byte) logfence.Pos {
	if last, ok := t.lastSeq[name]; ok && seq <= last {
		return logfence.Pos{Ledger: -1, Entry: -1}
	}
	t.lastSeq[name] = seq
	m := Message{At: logfence.Pos{Ledger: t.ledger, Entry: int64(len(t.msgs))}, Props: props, Payload: payload, Seq: seq, Name: name}
	t.msgs = append(t.msgs, m)
	if t.b.OnPersist != nil {
		t.b.OnPersist(t.id, m)
	}
	return m.At
}

// Unload drops every producer and reader, after a round trip.
func (t *Topic) Unload(done func(error)) {
	t.b.k.After(t.b.latency(), func() {
		t.unloads++
		t.ledger++
		if t.holder != nil {
			t.holder.Close()
			t.holder = nil
		}
		done(nil)
	})
}

// ReadAfter serves a reader started just after at (or at the beginning
// when !started), after a round trip: the messages persisted by then, and the
// position of the last one (ok false: the topic is empty). A read in flight
// across an unload is served a reconnect later and redelivers its start.
func (t *Topic) ReadAfter(at logfence.Pos, started bool, done func(msgs []Message, last logfence.Pos, ok bool)) {
	unloads, reconnected := t.unloads, false
	var serve func()
	serve = func() {
		if t.unloads != unloads {
			unloads, reconnected = t.unloads, true
			t.b.k.After(t.b.latency(), serve)
			return
		}
		i := 0
		if started {
			i = len(t.msgs)
			for j, m := range t.msgs {
				if at.Less(m.At) {
					i = j
					break
				}
			}
		}
		msgs := t.msgs[i:]
		if started && i > 0 && reconnected {
			msgs = t.msgs[i-1:] // a redelivery after the reconnect
		}
		if len(t.msgs) == 0 {
			done(nil, logfence.Pos{}, false)
			return
		}
		done(msgs, t.msgs[len(t.msgs)-1].At, true)
	}
	t.b.k.After(t.b.latency(), serve)
}
