//go:build integration

package pulsarlog

import (
	"context"
	"testing"
	"time"

	"territory/model"
)

// TestFencedWhereNewerEpochWrote: a writer whose producer was taken over
// appends an LSN that the newer epoch's writer has since committed with other
// data. The answer is ErrFenced (as in the simulated log), not
// ErrLSNConflict: a conflict would send the deposed writer to re-read a log it
// no longer owns (found by the territoryd end-to-end fencing test, where the
// deposed primary was also cut off from etcd and kept re-claiming).
func TestFencedWhereNewerEpochWrote(t *testing.T) {
	prefix := testPrefix(t)
	a := newTestLog(t, prefix)
	b := newTestLog(t, prefix)
	if _, serr := open(t, a, 0, 1); serr != model.ErrNone {
		t.Fatal(serr)
	}
	for lsn := uint64(1); lsn <= 10; lsn++ {
		mustAppend(t, a, 0, 1, lsn, payload("a", lsn))
	}
	if tail, serr := open(t, b, 0, 2); serr != model.ErrNone || tail != 10 {
		t.Fatalf("open(2): tail %d %v", tail, serr)
	}
	var es []model.LogEntry
	for lsn := uint64(11); lsn <= 500; lsn++ {
		es = append(es, model.LogEntry{LSN: lsn, Data: payload("b", lsn)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.AppendBatch(ctx, 0, 2, es); err != nil {
		t.Fatal(err)
	}
	// a's producer still believes it holds the stream: its send fails, and
	// the re-attach finds epoch 2 and LSN 11 holding b's data.
	if resp, serr := appendOne(t, a, 0, 1, 11, payload("a", 11)); serr != model.ErrFenced || resp.TailLSN != 500 {
		t.Fatalf("stale append of a taken lsn: %+v %v, want fenced at tail 500", resp, serr)
	}
	// An append of a's own committed entry is still answered OK (idempotent).
	if _, serr := appendOne(t, a, 0, 1, 10, payload("a", 10)); serr != model.ErrNone && serr != model.ErrFenced {
		t.Fatalf("retry of a committed entry: %v", serr)
	}
	got, tail := readAll(t, b, 0, 1, 0)
	if tail != 500 || len(got) != 500 || string(got[10].Data) != string(payload("b", 11)) {
		t.Fatalf("log after the stale append: tail %d, %d entries", tail, len(got))
	}
}
