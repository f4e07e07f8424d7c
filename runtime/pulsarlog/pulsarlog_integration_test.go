//go:build integration

package pulsarlog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"territory/model"
	"territory/model/logfence"
	"territory/runtime/servicetest"
)

// These tests run against a real Pulsar (scripts/pulsar-standalone.sh start,
// then export its env). Every test uses a fresh topic prefix, so reruns on
// the same data dir do not collide.

func pulsarEnv(t testing.TB) (string, string) {
	t.Helper()
	url := servicetest.Env(t, "TERRITORY_PULSAR_URL", "run scripts/pulsar-standalone.sh start and "+
		`eval "$(scripts/pulsar-standalone.sh env | sed 's/^/export /')" (or scripts/test-integration.sh)`)
	admin := os.Getenv("TERRITORY_PULSAR_ADMIN_URL")
	if admin == "" {
		admin = "http://127.0.0.1:8080"
	}
	return url, admin
}

func testPrefix(t testing.TB) string {
	name := strings.NewReplacer("/", "-", " ", "-", "#", "-").Replace(t.Name())
	return fmt.Sprintf("%s-%d", strings.ToLower(name), time.Now().UnixNano())
}

func newTestLog(t testing.TB, prefix string) *Log {
	t.Helper()
	url, admin := pulsarEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := New(ctx, Config{
		ServiceURL:       url,
		AdminURL:         admin,
		Namespace:        "territory-test",
		TopicPrefix:      prefix,
		OperationTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(l.Close)
	return l
}

func do(t testing.TB, l *Log, req model.LogRequest) (model.LogResponse, model.ServiceErr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, serr, err := l.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", describe(req), err)
	}
	return resp, serr
}

func describe(r model.LogRequest) string {
	switch r.Kind {
	case model.LogOpen:
		return fmt.Sprintf("open(stream %d, epoch %d)", r.Stream, r.Epoch)
	case model.LogAppend:
		return fmt.Sprintf("append(stream %d, epoch %d, lsn %d)", r.Stream, r.Epoch, r.LSN)
	default:
		return fmt.Sprintf("read(stream %d, from %d, max %d)", r.Stream, r.FromLSN, r.MaxEntries)
	}
}

func open(t testing.TB, l *Log, stream uint32, epoch uint64) (uint64, model.ServiceErr) {
	t.Helper()
	resp, serr := do(t, l, model.LogRequest{Kind: model.LogOpen, Stream: stream, Epoch: epoch})
	return resp.TailLSN, serr
}

func appendOne(t testing.TB, l *Log, stream uint32, epoch, lsn uint64, data []byte) (model.LogResponse, model.ServiceErr) {
	t.Helper()
	return do(t, l, model.LogRequest{Kind: model.LogAppend, Stream: stream, Epoch: epoch, LSN: lsn, Data: data})
}

func mustAppend(t testing.TB, l *Log, stream uint32, epoch, lsn uint64, data []byte) {
	t.Helper()
	resp, serr := appendOne(t, l, stream, epoch, lsn, data)
	if serr != model.ErrNone || resp.LSN != lsn {
		t.Fatalf("append(epoch %d, lsn %d) = %+v, %v", epoch, lsn, resp, serr)
	}
}

func readAll(t testing.TB, l *Log, stream uint32, from uint64, batch int) ([]model.LogEntry, uint64) {
	t.Helper()
	var out []model.LogEntry
	var tail uint64
	for {
		resp, serr := do(t, l, model.LogRequest{Kind: model.LogRead, Stream: stream, FromLSN: from, MaxEntries: batch})
		if serr != model.ErrNone {
			t.Fatalf("read from %d: %v", from, serr)
		}
		tail = resp.TailLSN
		out = append(out, resp.Entries...)
		if len(resp.Entries) == 0 || from+uint64(len(resp.Entries)) > tail {
			return out, tail
		}
		from += uint64(len(resp.Entries))
	}
}

func payload(tag string, lsn uint64) []byte { return []byte(fmt.Sprintf("%s-%06d", tag, lsn)) }

func checkEntries(t testing.TB, got []model.LogEntry, from uint64, want func(lsn uint64) []byte, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d entries, want %d", len(got), n)
	}
	for i, e := range got {
		lsn := from + uint64(i)
		if e.LSN != lsn || !bytes.Equal(e.Data, want(lsn)) {
			t.Fatalf("entry %d = {LSN %d, %q}, want {LSN %d, %q}", i, e.LSN, e.Data, lsn, want(lsn))
		}
	}
}

func TestRoundTrip(t *testing.T) {
	prefix := testPrefix(t)
	l := newTestLog(t, prefix)
	const st = 1
	if tail, serr := open(t, l, st, 1); serr != model.ErrNone || tail != 0 {
		t.Fatalf("open = %d, %v", tail, serr)
	}
	for lsn := uint64(1); lsn <= 20; lsn++ {
		resp, serr := appendOne(t, l, st, 1, lsn, payload("a", lsn))
		if serr != model.ErrNone || resp.LSN != lsn || resp.TailLSN != lsn {
			t.Fatalf("append %d = %+v, %v", lsn, resp, serr)
		}
	}
	resp, _ := do(t, l, model.LogRequest{Kind: model.LogRead, Stream: st, FromLSN: 1})
	checkEntries(t, resp.Entries, 1, func(n uint64) []byte { return payload("a", n) }, 20)
	if resp.TailLSN != 20 {
		t.Fatalf("tail %d", resp.TailLSN)
	}
	resp, _ = do(t, l, model.LogRequest{Kind: model.LogRead, Stream: st, FromLSN: 5, MaxEntries: 3})
	checkEntries(t, resp.Entries, 5, func(n uint64) []byte { return payload("a", n) }, 3)
	if resp.TailLSN != 20 {
		t.Fatalf("tail after a partial read: %d", resp.TailLSN)
	}
	resp, _ = do(t, l, model.LogRequest{Kind: model.LogRead, Stream: st, FromLSN: 21})
	if len(resp.Entries) != 0 || resp.TailLSN != 20 {
		t.Fatalf("read past the tail = %+v", resp)
	}
	// An empty entry is an entry.
	mustAppend(t, l, st, 1, 21, nil)
	resp, _ = do(t, l, model.LogRequest{Kind: model.LogRead, Stream: st, FromLSN: 21})
	if len(resp.Entries) != 1 || resp.Entries[0].LSN != 21 || len(resp.Entries[0].Data) != 0 {
		t.Fatalf("empty entry read back as %+v", resp.Entries)
	}

	// Another process sees the same log, and opens after it.
	l2 := newTestLog(t, prefix)
	got, tail := readAll(t, l2, st, 1, 7)
	if tail != 21 || len(got) != 21 {
		t.Fatalf("second process read %d entries, tail %d", len(got), tail)
	}
	checkEntries(t, got[:20], 1, func(n uint64) []byte { return payload("a", n) }, 20)
	if tail, serr := open(t, l2, st, 2); serr != model.ErrNone || tail != 21 {
		t.Fatalf("second open = %d, %v", tail, serr)
	}
	mustAppend(t, l2, st, 2, 22, payload("b", 22))
	// A stream is independent of the others.
	if tail, serr := open(t, l2, st+1, 1); serr != model.ErrNone || tail != 0 {
		t.Fatalf("open of another stream = %d, %v", tail, serr)
	}
}

func TestIdempotentRetry(t *testing.T) {
	l := newTestLog(t, testPrefix(t))
	const st = 3
	open(t, l, st, 1)
	mustAppend(t, l, st, 1, 1, []byte("one"))
	mustAppend(t, l, st, 1, 1, []byte("one")) // answered from the writer's state

	// The broker drops a re-sent sequence id (what the client does after a
	// reconnect): acknowledged without a position, stored once.
	s, _ := l.stream(st)
	s.mu.Lock()
	prodID, gen, ok := s.core.Tenure()
	prod := s.prods[prodID]
	s.mu.Unlock()
	if !ok || prod == nil {
		t.Fatal("no tenure after an open and appends")
	}
	seq := logfence.SeqID(gen, 1)
	id, err := prod.Send(context.Background(), &pulsar.ProducerMessage{
		Payload:    []byte("one"),
		Properties: logfence.Record{Kind: logfence.KindData, Stream: st, Epoch: 1, LSN: 1}.Props(),
		SequenceID: &seq,
	})
	if err != nil {
		t.Fatalf("raw re-send: %v", err)
	}
	if p := posOf(id); p.Entry >= 0 {
		t.Fatalf("broker stored a duplicate sequence id at %v: is deduplication on?", p)
	}

	// A send that landed but whose acknowledgement was lost: the tenure
	// fails, the retry re-attaches, finds the entry in the log and answers OK.
	seq = logfence.SeqID(gen, 2)
	if _, err := prod.Send(context.Background(), &pulsar.ProducerMessage{
		Payload:    []byte("two"),
		Properties: logfence.Record{Kind: logfence.KindData, Stream: st, Epoch: 1, LSN: 2}.Props(),
		SequenceID: &seq,
	}); err != nil {
		t.Fatalf("raw send: %v", err)
	}
	s.input(logfence.ProducerLost{Prod: prodID}) // a lost acknowledgement
	if _, serr := appendOne(t, l, st, 1, 2, []byte("TWO")); serr != model.ErrLSNConflict {
		t.Fatalf("retry with other data after a lost ack = %v, want lsn-conflict", serr)
	}
	mustAppend(t, l, st, 1, 2, []byte("two"))

	// Concurrent identical appends of one LSN: both OK, stored once.
	var wg sync.WaitGroup
	errs := make([]model.ServiceErr, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = appendOne(t, l, st, 1, 3, []byte("three"))
		}()
	}
	wg.Wait()
	for i, e := range errs {
		if e != model.ErrNone {
			t.Fatalf("concurrent retry %d: %v", i, e)
		}
	}
	// A send failure that did not land is answered definitely (unavailable),
	// and the LSN is free again.
	s.mu.Lock()
	prodID, _, _ = s.core.Tenure()
	prod = s.prods[prodID]
	s.mu.Unlock()
	prod.Close()
	if _, serr := appendOne(t, l, st, 1, 4, []byte("four")); serr != model.ErrUnavailable {
		t.Fatalf("append through a closed producer = %v, want unavailable", serr)
	}
	mustAppend(t, l, st, 1, 4, []byte("four"))

	got, tail := readAll(t, newTestLog(t, l.cfg.TopicPrefix), st, 1, 0)
	want := [][]byte{[]byte("one"), []byte("two"), []byte("three"), []byte("four")}
	checkEntries(t, got, 1, func(n uint64) []byte { return want[n-1] }, 4)
	if tail != 4 {
		t.Fatalf("tail %d", tail)
	}
}

func TestConflictAndGap(t *testing.T) {
	prefix := testPrefix(t)
	l := newTestLog(t, prefix)
	const st = 4
	open(t, l, st, 1)
	mustAppend(t, l, st, 1, 1, []byte("a"))
	if resp, serr := appendOne(t, l, st, 1, 1, []byte("b")); serr != model.ErrLSNConflict || resp.TailLSN != 1 {
		t.Fatalf("conflicting append = %+v, %v", resp, serr)
	}
	if resp, serr := appendOne(t, l, st, 1, 3, []byte("c")); serr != model.ErrLSNGap || resp.TailLSN != 1 {
		t.Fatalf("append beyond tail+1 = %+v, %v", resp, serr)
	}
	mustAppend(t, l, st, 1, 2, []byte("b"))

	// Another process at the same epoch (a restarted writer) takes the
	// producer over; it checks a committed LSN by reading it.
	l2 := newTestLog(t, prefix)
	if _, serr := appendOne(t, l2, st, 1, 1, []byte("zzz")); serr != model.ErrLSNConflict {
		t.Fatalf("conflict seen by a second process = %v", serr)
	}
	mustAppend(t, l2, st, 1, 2, []byte("b"))
	mustAppend(t, l2, st, 1, 3, []byte("c"))
	// The first process lost its producer; it re-attaches (same epoch) and goes on.
	if _, serr := appendOne(t, l, st, 1, 3, []byte("c")); serr != model.ErrNone {
		t.Fatalf("first process, idempotent retry of lsn 3: %v", serr)
	}
	mustAppend(t, l, st, 1, 4, []byte("d"))
	if _, serr := appendOne(t, l, st, 1, 6, []byte("f")); serr != model.ErrLSNGap {
		t.Fatalf("gap after re-attach: %v", serr)
	}
	got, _ := readAll(t, l2, st, 1, 0)
	want := []string{"a", "b", "c", "d"}
	checkEntries(t, got, 1, func(n uint64) []byte { return []byte(want[n-1]) }, 4)
}

func TestEpochsWithoutOpen(t *testing.T) {
	l := newTestLog(t, testPrefix(t))
	// Epoch 0 may append without opening (as in the simulated log).
	mustAppend(t, l, 5, 0, 1, []byte("x"))
	// Any other epoch must open first.
	if _, serr := appendOne(t, l, 6, 5, 1, []byte("y")); serr != model.ErrFenced {
		t.Fatalf("append at epoch 5 without an open = %v, want fenced", serr)
	}
	if tail, serr := open(t, l, 5, 5); serr != model.ErrNone || tail != 1 {
		t.Fatalf("open = %d, %v", tail, serr)
	}
	if _, serr := appendOne(t, l, 5, 0, 2, []byte("x")); serr != model.ErrFenced {
		t.Fatalf("epoch 0 after open(5) = %v", serr)
	}
	if tail, serr := open(t, l, 5, 4); serr != model.ErrFenced || tail != 1 {
		t.Fatalf("open at a lower epoch = %d, %v", tail, serr)
	}
	mustAppend(t, l, 5, 5, 2, []byte("z"))
}

// TestFencing: writer A at epoch 1 appends, writer B (another process) opens
// epoch 2; A's next append fails with ErrFenced and A never gets another
// acknowledgement; B continues at tail+1.
func TestFencing(t *testing.T) {
	prefix := testPrefix(t)
	a := newTestLog(t, prefix)
	b := newTestLog(t, prefix)
	const st = 7
	if tail, serr := open(t, a, st, 1); serr != model.ErrNone || tail != 0 {
		t.Fatalf("A open = %d, %v", tail, serr)
	}
	for lsn := uint64(1); lsn <= 3; lsn++ {
		mustAppend(t, a, st, 1, lsn, payload("A", lsn))
	}
	start := time.Now()
	tail, serr := open(t, b, st, 2)
	if serr != model.ErrNone || tail != 3 {
		t.Fatalf("B open = %d, %v", tail, serr)
	}
	t.Logf("B took the stream over from a live A in %v", time.Since(start))
	for i := 0; i < 3; i++ {
		if resp, serr := appendOne(t, a, st, 1, 4, payload("A", 4)); serr != model.ErrFenced {
			t.Fatalf("A append after B's open (try %d) = %+v, %v; want fenced", i, resp, serr)
		}
	}
	if _, serr := open(t, a, st, 1); serr != model.ErrFenced {
		t.Fatalf("A re-open at epoch 1 = %v", serr)
	}
	mustAppend(t, b, st, 2, 4, payload("B", 4))
	mustAppend(t, b, st, 2, 5, payload("B", 5))

	// A third process that never saw epoch 2 is fenced by the log alone,
	// without disturbing B.
	c := newTestLog(t, prefix)
	if _, serr := open(t, c, st, 1); serr != model.ErrFenced {
		t.Fatalf("stale open from a fresh process = %v", serr)
	}
	if _, serr := appendOne(t, c, st, 1, 6, payload("C", 6)); serr != model.ErrFenced {
		t.Fatalf("stale append from a fresh process = %v", serr)
	}
	mustAppend(t, b, st, 2, 6, payload("B", 6))

	got, tail := readAll(t, c, st, 1, 0)
	if tail != 6 {
		t.Fatalf("tail %d", tail)
	}
	checkEntries(t, got, 1, func(n uint64) []byte {
		if n <= 3 {
			return payload("A", n)
		}
		return payload("B", n)
	}, 6)

	// And the other way round: a higher epoch from A's process fences B.
	if tail, serr := open(t, a, st, 3); serr != model.ErrNone || tail != 6 {
		t.Fatalf("A open(3) = %d, %v", tail, serr)
	}
	if _, serr := appendOne(t, b, st, 2, 7, payload("B", 7)); serr != model.ErrFenced {
		t.Fatalf("B after A's open(3) = %v", serr)
	}
	mustAppend(t, a, st, 3, 7, payload("A", 7))
}

// TestFencingInFlight: A appends back to back while B opens. Every append A
// had acknowledged is inside the tail B's open returned, no acknowledgement
// reaches A for anything beyond it, and A ends fenced.
func TestFencingInFlight(t *testing.T) {
	prefix := testPrefix(t)
	a := newTestLog(t, prefix)
	b := newTestLog(t, prefix)
	const st = 8
	open(t, a, st, 1)
	type ack struct {
		lsn uint64
		at  time.Time
	}
	var (
		acks    []ack
		final   model.ServiceErr
		started = make(chan struct{})
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		lsn := uint64(1)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			resp, serr, err := a.Do(ctx, model.LogRequest{Kind: model.LogAppend, Stream: st, Epoch: 1, LSN: lsn, Data: payload("A", lsn)})
			cancel()
			if err != nil {
				continue // unknown outcome: retry the same LSN, as the core does
			}
			switch serr {
			case model.ErrNone:
				acks = append(acks, ack{resp.LSN, time.Now()})
				if lsn == 20 {
					close(started)
				}
				lsn++
			case model.ErrUnavailable:
				continue
			default:
				final = serr
				return
			}
		}
	}()
	<-started
	tail, serr := open(t, b, st, 2)
	opened := time.Now()
	if serr != model.ErrNone {
		t.Fatalf("B open: %v", serr)
	}
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("A still appending 90 s after B opened")
	}
	if final != model.ErrFenced {
		t.Fatalf("A ended with %v, want fenced", final)
	}
	late := 0
	for _, k := range acks {
		if k.lsn > tail {
			t.Fatalf("A got an ack for lsn %d beyond B's open tail %d", k.lsn, tail)
		}
		if k.at.After(opened) {
			late++
		}
	}
	t.Logf("A: %d acks, B opened at tail %d, %d acks of A arrived after B's open returned (all within its tail)", len(acks), tail, late)
	if uint64(len(acks)) > tail {
		t.Fatalf("%d acks > tail %d", len(acks), tail)
	}
	mustAppend(t, b, st, 2, tail+1, payload("B", tail+1))
	got, newTail := readAll(t, b, st, 1, 0)
	if newTail != tail+1 {
		t.Fatalf("tail after B's append = %d, want %d", newTail, tail+1)
	}
	checkEntries(t, got, 1, func(n uint64) []byte {
		if n <= tail {
			return payload("A", n)
		}
		return payload("B", n)
	}, int(tail+1))
}

func TestRead1000(t *testing.T) {
	prefix := testPrefix(t)
	l := newTestLog(t, prefix)
	const st, n = 9, 1000
	open(t, l, st, 1)
	start := time.Now()
	for lsn := uint64(1); lsn <= n; lsn++ {
		mustAppend(t, l, st, 1, lsn, payload("e", lsn))
	}
	t.Logf("%d synchronous appends in %v", n, time.Since(start))
	want := func(lsn uint64) []byte { return payload("e", lsn) }

	r := newTestLog(t, prefix)
	start = time.Now()
	got, tail := readAll(t, r, st, 1, DefaultMaxEntries)
	t.Logf("fresh reader: %d entries in batches of %d in %v", len(got), DefaultMaxEntries, time.Since(start))
	if tail != n {
		t.Fatalf("tail %d", tail)
	}
	checkEntries(t, got, 1, want, n)

	resp, _ := do(t, r, model.LogRequest{Kind: model.LogRead, Stream: st, FromLSN: 1, MaxEntries: n})
	checkEntries(t, resp.Entries, 1, want, n)
	// Random access: served from the index learned by the reads above (and,
	// in the writer's process, from its acknowledgements).
	for _, from := range []uint64{777, 64, 999, 1000, 500} {
		for _, lg := range []*Log{r, l} {
			resp, _ := do(t, lg, model.LogRequest{Kind: model.LogRead, Stream: st, FromLSN: from, MaxEntries: 10})
			checkEntries(t, resp.Entries, from, want, int(min(10, n-from+1)))
		}
	}
}

// TestDurabilityAcrossRestart stops and starts the Pulsar standalone (all
// bookies and the broker) between writes. It takes ~20 s and disturbs every
// other user of the standalone, so it runs only with
// TERRITORY_PULSAR_RESTART_TEST=1 (scripts/test-integration.sh runs it alone).
func TestDurabilityAcrossRestart(t *testing.T) {
	pulsarEnv(t)
	if os.Getenv("TERRITORY_PULSAR_RESTART_TEST") != "1" {
		t.Skip("set TERRITORY_PULSAR_RESTART_TEST=1 to stop and start the Pulsar standalone in this test")
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "pulsar-standalone.sh"))
	if err != nil {
		t.Fatal(err)
	}
	prefix := testPrefix(t)
	a := newTestLog(t, prefix)
	const st, n = 11, 200
	open(t, a, st, 1)
	for lsn := uint64(1); lsn <= n; lsn++ {
		mustAppend(t, a, st, 1, lsn, payload("d", lsn))
	}
	for _, cmd := range []string{"stop", "start"} {
		start := time.Now()
		out, err := exec.Command(script, cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", script, cmd, err, out)
		}
		t.Logf("pulsar-standalone.sh %s: %v", cmd, time.Since(start).Round(time.Millisecond))
	}
	// The writer's client reconnects; its producer presents its topic epoch,
	// which nobody moved, so it carries on.
	start := time.Now()
	mustAppend(t, a, st, 1, n+1, payload("d", n+1))
	t.Logf("first append after the restart: %v", time.Since(start))

	b := newTestLog(t, prefix)
	got, tail := readAll(t, b, st, 1, 0)
	if tail != n+1 {
		t.Fatalf("tail after restart = %d", tail)
	}
	checkEntries(t, got, 1, func(n uint64) []byte { return payload("d", n) }, n+1)
	if tail, serr := open(t, b, st, 2); serr != model.ErrNone || tail != n+1 {
		t.Fatalf("open after restart = %d, %v", tail, serr)
	}
	if _, serr := appendOne(t, a, st, 1, n+2, payload("d", n+2)); serr != model.ErrFenced {
		t.Fatalf("old writer after open(2) = %v", serr)
	}
}

// TestConcurrentWriters: several processes open the same stream at epochs
// 1..n at the same time and append as long as they are not fenced. Every
// acknowledged append must be in the log with its data, and the highest
// epoch must end up the writer.
func TestConcurrentWriters(t *testing.T) {
	prefix := testPrefix(t)
	const st, writers, perWriter = 12, 4, 15
	logs := make([]*Log, writers)
	for i := range logs {
		logs[i] = newTestLog(t, prefix)
	}
	type ack struct {
		epoch, lsn uint64
		data       []byte
	}
	var (
		mu   sync.Mutex
		acks []ack
		ends = make([]string, writers)
		wg   sync.WaitGroup
	)
	for i := range logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, epoch := logs[i], uint64(i+1)
			call := func(req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				return l.Do(ctx, req)
			}
			var tail uint64
			for {
				resp, serr, err := call(model.LogRequest{Kind: model.LogOpen, Stream: st, Epoch: epoch})
				if err == nil && serr == model.ErrNone {
					tail = resp.TailLSN
					break
				}
				if serr == model.ErrFenced {
					ends[i] = "fenced at open"
					return
				}
			}
			for n := 0; n < perWriter; {
				lsn := tail + 1
				data := []byte(fmt.Sprintf("e%d-%d", epoch, lsn))
				resp, serr, err := call(model.LogRequest{Kind: model.LogAppend, Stream: st, Epoch: epoch, LSN: lsn, Data: data})
				switch {
				case err != nil || serr == model.ErrUnavailable:
					continue // retry the same LSN
				case serr == model.ErrNone:
					mu.Lock()
					acks = append(acks, ack{epoch, lsn, data})
					mu.Unlock()
					tail = lsn
					n++
				case serr == model.ErrFenced:
					ends[i] = fmt.Sprintf("fenced after %d appends", n)
					return
				default:
					// Someone else's entry is at this LSN (a same-epoch
					// writer cannot exist here): read the tail and go on.
					resp2, _, err := call(model.LogRequest{Kind: model.LogRead, Stream: st, FromLSN: lsn, MaxEntries: 1})
					if err == nil {
						tail = max(tail, resp2.TailLSN)
					}
					_ = resp
				}
			}
			ends[i] = fmt.Sprintf("wrote %d", perWriter)
		}()
	}
	wg.Wait()
	t.Logf("writers: %v; %d acks", ends, len(acks))
	if ends[writers-1] != fmt.Sprintf("wrote %d", perWriter) {
		t.Fatalf("the highest epoch did not stay the writer: %s", ends[writers-1])
	}
	got, tail := readAll(t, newTestLog(t, prefix), st, 1, 0)
	if uint64(len(got)) != tail {
		t.Fatalf("read %d entries, tail %d", len(got), tail)
	}
	for _, k := range acks {
		if k.lsn > tail || !bytes.Equal(got[k.lsn-1].Data, k.data) {
			t.Fatalf("acknowledged append epoch %d lsn %d %q is not in the log (tail %d)", k.epoch, k.lsn, k.data, tail)
		}
	}
	// Epochs never go backwards along the log.
	last := uint64(0)
	for _, e := range got {
		var ep, lsn uint64
		if _, err := fmt.Sscanf(string(e.Data), "e%d-%d", &ep, &lsn); err != nil || lsn != e.LSN || ep < last {
			t.Fatalf("entry %d = %q after epoch %d", e.LSN, e.Data, last)
		}
		last = ep
	}
}
