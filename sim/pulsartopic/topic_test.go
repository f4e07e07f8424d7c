package pulsartopic

import (
	"errors"
	"testing"

	"territory/model/logfence"
	"territory/sim/kernel"
)

func newBroker(t *testing.T, cfg Config) (*kernel.Kernel, *Broker) {
	t.Helper()
	k := kernel.New(1, 1_000_000)
	b, err := New(k, k.Stream("topic"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k, b
}

func run(t *testing.T, k *kernel.Kernel) {
	t.Helper()
	if err := k.Run(k.NowUs() + 60_000_000); err != nil {
		t.Fatal(err)
	}
}

func attach(t *testing.T, k *kernel.Kernel, tp *Topic) (*Producer, error) {
	var p *Producer
	var err error
	tp.CreateProducer("w", func(q *Producer, e error) { p, err = q, e })
	run(t, k)
	return p, err
}

func sendOne(t *testing.T, k *kernel.Kernel, p *Producer, seq int64) (logfence.Pos, error) {
	var at logfence.Pos
	var err error
	answered := false
	p.Send(seq, map[string]string{"n": "x"}, []byte("x"), func(a logfence.Pos, e error) { at, err, answered = a, e, true })
	run(t, k)
	if !answered {
		t.Fatal("send not answered")
	}
	return at, err
}

func TestExclusiveProducerAndUnload(t *testing.T) {
	k, b := newBroker(t, DefaultConfig())
	tp := b.Topic(1)
	p1, err := attach(t, k, tp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attach(t, k, tp); !errors.Is(err, ErrBusy) {
		t.Fatalf("second producer: %v, want busy", err)
	}
	if _, err := sendOne(t, k, p1, -1); err != nil {
		t.Fatal(err)
	}
	var uerr error = errors.New("not answered")
	tp.Unload(func(e error) { uerr = e })
	run(t, k)
	if uerr != nil {
		t.Fatal(uerr)
	}
	if _, err := sendOne(t, k, p1, -1); !errors.Is(err, ErrClosed) {
		t.Fatalf("send of an unloaded producer: %v, want closed", err)
	}
	p2, err := attach(t, k, tp)
	if err != nil {
		t.Fatalf("after the unload: %v", err)
	}
	at, err := sendOne(t, k, p2, -1)
	if err != nil || at.Ledger != 2 {
		t.Fatalf("send after unload at %v (%v): want a new ledger", at, err)
	}
}

func TestDedupBySequenceID(t *testing.T) {
	k, b := newBroker(t, DefaultConfig())
	tp := b.Topic(1)
	p, _ := attach(t, k, tp)
	if at, err := sendOne(t, k, p, 10); err != nil || at.Entry != 0 {
		t.Fatalf("first: %v %v", at, err)
	}
	if at, err := sendOne(t, k, p, 10); err != nil || at.Entry >= 0 {
		t.Fatalf("duplicate sequence id stored at %v (%v)", at, err)
	}
	if at, err := sendOne(t, k, p, 5); err != nil || at.Entry >= 0 {
		t.Fatalf("lower sequence id stored at %v (%v)", at, err)
	}
	if len(tp.Messages()) != 1 {
		t.Fatalf("%d messages", len(tp.Messages()))
	}
	// A new producer of the same name starts from the broker's sequence id.
	p.Close()
	q, _ := attach(t, k, tp)
	if q.LastSequenceID() != 10 {
		t.Fatalf("new producer starts at %d", q.LastSequenceID())
	}
	if at, err := sendOne(t, k, q, -1); err != nil || at.Entry != 1 || tp.Messages()[1].Seq != 11 {
		t.Fatalf("auto sequence id: %v %v", at, err)
	}
}

func TestDuplicatedSendsAreDropped(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DupSendPM = 1_000_000
	k, b := newBroker(t, cfg)
	tp := b.Topic(1)
	p, _ := attach(t, k, tp)
	for i := range 5 {
		if _, err := sendOne(t, k, p, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(tp.Messages()); n != 5 {
		t.Fatalf("%d messages stored for 5 sends sent twice each", n)
	}
}

func TestLostSendLeavesAHole(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LostSendPM = 1_000_000
	k, b := newBroker(t, cfg)
	tp := b.Topic(1)
	p, _ := attach(t, k, tp)
	if _, err := sendOne(t, k, p, 1); !errors.Is(err, ErrTimeout) {
		t.Fatalf("lost send: %v", err)
	}
	b.SetFaults(0, 0)
	if _, err := sendOne(t, k, p, 2); err != nil {
		t.Fatal(err)
	}
	if m := tp.Messages(); len(m) != 1 || m[0].Seq != 2 {
		t.Fatalf("messages %+v", m)
	}
}

func TestReaderFromAMessageID(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LatencyMinUs, cfg.LatencyMaxUs = 1_000, 1_000
	k, b := newBroker(t, cfg)
	tp := b.Topic(1)
	p, _ := attach(t, k, tp)
	for i := range 4 {
		sendOne(t, k, p, int64(i))
	}
	var got []Message
	var last logfence.Pos
	tp.ReadAfter(tp.Messages()[1].At, true, func(m []Message, l logfence.Pos, _ bool) { got, last = m, l })
	run(t, k)
	if len(got) != 2 || got[0].Seq != 2 || last != tp.Messages()[3].At {
		t.Fatalf("read after entry 1: %+v, last %v", got, last)
	}
	// Across an unload the reader reconnects and redelivers its start.
	tp.Unload(func(error) {}) // lands while the read is in flight
	tp.ReadAfter(tp.Messages()[1].At, true, func(m []Message, _ logfence.Pos, _ bool) { got = m })
	run(t, k)
	if len(got) != 3 || got[0].Seq != 1 {
		t.Fatalf("read across an unload: %+v", got)
	}
	var empty bool
	b.Topic(2).ReadAfter(logfence.Pos{}, false, func(_ []Message, _ logfence.Pos, ok bool) { empty = !ok })
	run(t, k)
	if !empty {
		t.Fatal("empty topic reported a last message")
	}
}
