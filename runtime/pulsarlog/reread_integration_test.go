//go:build integration

package pulsarlog

import (
	"testing"

	"territory/model"
)

// TestReadAfterTakeoverSeesEntries: a process (the first writer, or another) reads a stream (its reader
// stays open for the next read), another writes to it, a third process's
// open takes the producer over (unloading the topic, so every reader
// reconnects); the first process's next reads return every entry. Before
// the read checked its kept reader against the topic's ledger, the
// reconnected reader had skipped the messages it had queued, and every
// later read answered tail 0 with no entries (found by
// fidelity.TestLogFidelityPulsar).
func TestReadAfterTakeoverSeesEntries(t *testing.T) {
	t.Run("the-writer-reads", func(t *testing.T) {
		prefix := testPrefix(t)
		a := newTestLog(t, prefix)
		readAfterTakeover(t, a, a, newTestLog(t, prefix))
	})
	t.Run("a-third-process-reads", func(t *testing.T) {
		prefix := testPrefix(t)
		readAfterTakeover(t, newTestLog(t, prefix), newTestLog(t, prefix), newTestLog(t, prefix))
	})
}

func readAfterTakeover(t *testing.T, reader, a, b *Log) {
	const s = 7
	if r, se := do(t, reader, model.LogRequest{Kind: model.LogRead, Stream: s, FromLSN: 1}); se != model.ErrNone || r.TailLSN != 0 {
		t.Fatalf("read of an empty stream: %v %+v", se, r)
	}
	do(t, a, model.LogRequest{Kind: model.LogOpen, Stream: s, Epoch: 1})
	for lsn := uint64(1); lsn <= 2; lsn++ {
		if _, se := do(t, a, model.LogRequest{Kind: model.LogAppend, Stream: s, Epoch: 1, LSN: lsn, Data: []byte{byte('a' + lsn)}}); se != model.ErrNone {
			t.Fatalf("append %d: %v", lsn, se)
		}
	}
	if r, se := do(t, b, model.LogRequest{Kind: model.LogOpen, Stream: s, Epoch: 2}); se != model.ErrNone || r.TailLSN != 2 {
		t.Fatalf("takeover open: %v %+v", se, r)
	}
	for i := range 3 {
		r, se := do(t, reader, model.LogRequest{Kind: model.LogRead, Stream: s, FromLSN: 1})
		if se != model.ErrNone || r.TailLSN != 2 || len(r.Entries) != 2 || r.Entries[1].LSN != 2 {
			t.Fatalf("read %d after the takeover: %v %+v, want both entries and tail 2", i, se, r)
		}
	}
	// The reader kept from the first read continues after appends of the
	// new writer.
	if _, se := do(t, b, model.LogRequest{Kind: model.LogAppend, Stream: s, Epoch: 2, LSN: 3, Data: []byte("d")}); se != model.ErrNone {
		t.Fatalf("append 3: %v", se)
	}
	if r, se := do(t, reader, model.LogRequest{Kind: model.LogRead, Stream: s, FromLSN: 3}); se != model.ErrNone || r.TailLSN != 3 || len(r.Entries) != 1 {
		t.Fatalf("read from 3: %v %+v", se, r)
	}
}
