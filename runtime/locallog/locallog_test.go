package locallog

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"territory/model"
)

func openLog(t *testing.T, path string) *UnreplicatedLocalLog {
	t.Helper()
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func do(t *testing.T, l *UnreplicatedLocalLog, req model.LogRequest) (model.LogResponse, model.ServiceErr) {
	t.Helper()
	resp, serr, err := l.Do(context.Background(), req)
	if err != nil {
		t.Fatalf("%+v: %v", req, err)
	}
	return resp, serr
}

func open(t *testing.T, l *UnreplicatedLocalLog, stream uint32, epoch uint64) (uint64, model.ServiceErr) {
	t.Helper()
	r, e := do(t, l, model.LogRequest{Kind: model.LogOpen, Stream: stream, Epoch: epoch})
	return r.TailLSN, e
}

func appendAt(t *testing.T, l *UnreplicatedLocalLog, stream uint32, epoch, lsn uint64, data string) model.ServiceErr {
	t.Helper()
	r, e := do(t, l, model.LogRequest{Kind: model.LogAppend, Stream: stream, Epoch: epoch, LSN: lsn, Data: []byte(data)})
	if e == model.ErrNone && r.LSN != lsn {
		t.Fatalf("append at %d answered LSN %d", lsn, r.LSN)
	}
	return e
}

func read(t *testing.T, l *UnreplicatedLocalLog, stream uint32, from uint64, max int) model.LogResponse {
	t.Helper()
	r, e := do(t, l, model.LogRequest{Kind: model.LogRead, Stream: stream, FromLSN: from, MaxEntries: max})
	if e != model.ErrNone {
		t.Fatalf("read: %v", e)
	}
	return r
}

func expect(t *testing.T, what string, got, want model.ServiceErr) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func TestAppendSemantics(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "log.db"))
	// A fresh stream is at epoch 0: an epoch-0 writer may append without opening.
	expect(t, "epoch-0 append", appendAt(t, l, 1, 0, 1, "a"), model.ErrNone)
	tail, e := open(t, l, 1, 3)
	expect(t, "open 3", e, model.ErrNone)
	if tail != 1 {
		t.Fatalf("open tail %d, want 1", tail)
	}
	expect(t, "append at the fenced epoch 0", appendAt(t, l, 1, 0, 2, "b"), model.ErrFenced)
	expect(t, "append at a higher epoch than opened", appendAt(t, l, 1, 4, 2, "b"), model.ErrFenced)
	expect(t, "append tail+1", appendAt(t, l, 1, 3, 2, "b"), model.ErrNone)
	expect(t, "idempotent retry", appendAt(t, l, 1, 3, 2, "b"), model.ErrNone)
	expect(t, "idempotent retry of an older entry", appendAt(t, l, 1, 3, 1, "a"), model.ErrNone)
	expect(t, "different data at a taken LSN", appendAt(t, l, 1, 3, 2, "X"), model.ErrLSNConflict)
	expect(t, "gap", appendAt(t, l, 1, 3, 4, "d"), model.ErrLSNGap)
	expect(t, "LSN 0", appendAt(t, l, 1, 3, 0, "z"), model.ErrLSNConflict)
	_, e = open(t, l, 1, 2)
	expect(t, "open at a lower epoch", e, model.ErrFenced)
	tail, e = open(t, l, 1, 3)
	expect(t, "re-open at the same epoch", e, model.ErrNone)
	if tail != 2 {
		t.Fatalf("tail %d, want 2", tail)
	}
	// Streams are independent.
	expect(t, "another stream", appendAt(t, l, 2, 0, 1, "other"), model.ErrNone)
	r := read(t, l, 1, 0, 0)
	if r.TailLSN != 2 || len(r.Entries) != 2 || string(r.Entries[0].Data) != "a" || string(r.Entries[1].Data) != "b" || r.Entries[1].LSN != 2 {
		t.Fatalf("read: %+v", r)
	}
	r = read(t, l, 1, 2, 1)
	if len(r.Entries) != 1 || r.Entries[0].LSN != 2 {
		t.Fatalf("read from 2: %+v", r)
	}
	if r = read(t, l, 1, 3, 10); len(r.Entries) != 0 || r.TailLSN != 2 {
		t.Fatalf("read past the tail: %+v", r)
	}
	if r = read(t, l, 99, 1, 10); len(r.Entries) != 0 || r.TailLSN != 0 {
		t.Fatalf("read of an unknown stream: %+v", r)
	}
}

func TestMaxEntries(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "log.db"))
	for i := uint64(1); i <= 300; i++ {
		expect(t, "append", appendAt(t, l, 7, 0, i, fmt.Sprint(i)), model.ErrNone)
	}
	if r := read(t, l, 7, 1, 0); len(r.Entries) != DefaultMaxEntries {
		t.Fatalf("default batch: %d entries", len(r.Entries))
	}
	r := read(t, l, 7, 295, 100)
	if len(r.Entries) != 6 || r.Entries[5].LSN != 300 || string(r.Entries[5].Data) != "300" {
		t.Fatalf("tail read: %+v", r.Entries)
	}
}

// TestConcurrentWritersOneWins: two writers race for the same LSN with
// different data; exactly one wins, and the other sees a conflict.
func TestConcurrentWritersOneWins(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "log.db"))
	for round := uint64(1); round <= 50; round++ {
		var wg sync.WaitGroup
		errs := make([]model.ServiceErr, 2)
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[w], _ = l.Do(context.Background(), model.LogRequest{Kind: model.LogAppend, Stream: 1, LSN: round, Data: []byte{byte(w), byte(round)}})
			}()
		}
		wg.Wait()
		ok := 0
		for _, e := range errs {
			switch e {
			case model.ErrNone:
				ok++
			case model.ErrLSNConflict:
			default:
				t.Fatalf("round %d: %v", round, e)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d winners (%v)", round, ok, errs)
		}
	}
}

func TestDurableAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, e := open(t, l, 5, 7); e != model.ErrNone {
		t.Fatal(e)
	}
	for i := uint64(1); i <= 10; i++ {
		expect(t, "append", appendAt(t, l, 5, 7, i, fmt.Sprintf("entry-%d", i)), model.ErrNone)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Do(context.Background(), model.LogRequest{Kind: model.LogRead, Stream: 5}); err == nil {
		t.Fatal("a closed log answered")
	}
	l = openLog(t, path)
	// The fence survived: epoch 6 is still fenced, epoch 7 still writes.
	if _, e := open(t, l, 5, 6); e != model.ErrFenced {
		t.Fatalf("open 6 after reopen: %v", e)
	}
	expect(t, "append at 7 after reopen", appendAt(t, l, 5, 7, 11, "entry-11"), model.ErrNone)
	expect(t, "retry after reopen", appendAt(t, l, 5, 7, 3, "entry-3"), model.ErrNone)
	expect(t, "conflict after reopen", appendAt(t, l, 5, 7, 3, "other"), model.ErrLSNConflict)
	r := read(t, l, 5, 1, 100)
	if len(r.Entries) != 11 || r.TailLSN != 11 {
		t.Fatalf("after reopen: %d entries, tail %d", len(r.Entries), r.TailLSN)
	}
	for i, e := range r.Entries {
		if e.LSN != uint64(i+1) || !bytes.Equal(e.Data, []byte(fmt.Sprintf("entry-%d", i+1))) {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	epoch, tail, err := l.Epoch(5)
	if err != nil || epoch != 7 || tail != 11 {
		t.Fatalf("Epoch: %d %d %v", epoch, tail, err)
	}
}

func TestExpiredContextNotStarted(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "log.db"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := l.Do(ctx, model.LogRequest{Kind: model.LogAppend, LSN: 1}); err == nil {
		t.Fatal("a cancelled request ran")
	}
	if r := read(t, l, 0, 1, 1); r.TailLSN != 0 {
		t.Fatalf("the cancelled append landed: %+v", r)
	}
}
