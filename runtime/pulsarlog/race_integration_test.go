//go:build integration

package pulsarlog

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"territory/model"
)

// TestTwoWritersRaceOnTheTopic checks the fencing promise on the real
// standalone: writer A (epoch 1) appends without pause; writer B opens epoch
// 2 in the middle (taking the producer over), appends, and closes its log
// (so A's client could get the topic back if it were not fenced for good).
// Every append A was answered OK for must be in the log with A's data, and
// A must not be answered OK for any LSN B's open had not covered.
// (scripts/mutants/pulsar-shared-producer.patch plants the bug of a
// non-exclusive producer, which this test catches.)
func TestTwoWritersRaceOnTheTopic(t *testing.T) {
	prefix := testPrefix(t)
	const st = 21
	a, b := newTestLog(t, prefix), newTestLog(t, prefix)
	if _, serr := open(t, a, st, 1); serr != model.ErrNone {
		t.Fatalf("open epoch 1: %v", serr)
	}
	type ack struct {
		lsn  uint64
		data []byte
	}
	var (
		mu      sync.Mutex
		acks    []ack
		stop    = make(chan struct{})
		done    = make(chan string, 1)
		bOpenAt uint64
	)
	go func() {
		lsn := uint64(1)
		for {
			select {
			case <-stop:
				done <- fmt.Sprintf("stopped at lsn %d", lsn)
				return
			default:
			}
			data := payload("a", lsn)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, serr, err := a.Do(ctx, model.LogRequest{Kind: model.LogAppend, Stream: st, Epoch: 1, LSN: lsn, Data: data})
			cancel()
			switch {
			case err != nil || serr == model.ErrUnavailable:
				continue
			case serr == model.ErrNone:
				mu.Lock()
				acks = append(acks, ack{lsn, data})
				mu.Unlock()
				lsn++
			default:
				done <- fmt.Sprintf("%v at lsn %d", serr, lsn)
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	tail, serr := open(t, b, st, 2)
	if serr != model.ErrNone {
		t.Fatalf("open epoch 2: %v", serr)
	}
	mu.Lock()
	bOpenAt = tail
	mu.Unlock()
	for i := uint64(1); i <= 5; i++ {
		mustAppend(t, b, st, 2, tail+i, payload("b", tail+i))
	}
	b.Close() // B's producer goes away: a writer that is not fenced for good would get the topic back
	time.Sleep(3 * time.Second)
	close(stop)
	var end string
	select {
	case end = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("writer A did not finish")
	}
	got, last := readAll(t, newTestLog(t, prefix), st, 1, 0)
	t.Logf("A: %s; %d acks; B opened at tail %d; log tail %d", end, len(acks), bOpenAt, last)
	if uint64(len(got)) != last || last != bOpenAt+5 {
		t.Fatalf("log has %d entries, tail %d, want %d", len(got), last, bOpenAt+5)
	}
	for _, k := range acks {
		if k.lsn > bOpenAt {
			t.Fatalf("A was acknowledged lsn %d after B's open covered only %d", k.lsn, bOpenAt)
		}
		if !bytes.Equal(got[k.lsn-1].Data, k.data) {
			t.Fatalf("acknowledged append lsn %d %q is not in the log (%q there)", k.lsn, k.data, got[k.lsn-1].Data)
		}
	}
}
