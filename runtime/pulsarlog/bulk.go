package pulsarlog

import (
	"context"
	"crypto/sha256"
	"fmt"

	"territory/model"
)

// AppendBatch appends entries at consecutive LSNs, pipelined: each is handed
// to the producer in LSN order, then the acknowledgements are awaited
// together. The writer must hold epoch (LogOpen first). It is meant for bulk
// loads (imports, benchmarks). Entries already committed with the same data
// are skipped, as a retried LogAppend would be. On the first failure it
// returns an error; entries after the failed one may or may not have landed
// (LogAppend of the same LSN and data answers which, idempotently).
func (l *Log) AppendBatch(ctx context.Context, stream uint32, epoch uint64, entries []model.LogEntry) error {
	s, err := l.stream(stream)
	if err != nil {
		return err
	}
	ps := make([]*pending, 0, len(entries))
	for i, e := range entries {
		if i > 0 && e.LSN != entries[i-1].LSN+1 {
			return fmt.Errorf("append batch stream %d: lsn %d follows %d", stream, e.LSN, entries[i-1].LSN)
		}
		if e.LSN == 0 || e.LSN > MaxLSN || len(e.Data) > maxDataSize {
			return fmt.Errorf("append batch stream %d: lsn %d (%d bytes) out of range", stream, e.LSN, len(e.Data))
		}
		req := model.LogRequest{Kind: model.LogAppend, Stream: stream, Epoch: epoch, LSN: e.LSN, Data: e.Data}
		p, _, _, serr, err := s.enqueue(ctx, req, sha256.Sum256(e.Data))
		if err != nil {
			return fmt.Errorf("append batch stream %d lsn %d epoch %d: %w", stream, e.LSN, epoch, err)
		}
		if serr != model.ErrNone {
			return fmt.Errorf("append batch stream %d lsn %d epoch %d: %s", stream, e.LSN, epoch, serr)
		}
		if p != nil {
			ps = append(ps, p)
		}
	}
	for _, p := range ps {
		select {
		case <-p.done:
		case <-ctx.Done():
			return fmt.Errorf("append batch stream %d: waiting for lsn %d: %w", stream, p.lsn, ctx.Err())
		}
		if p.err != nil {
			return fmt.Errorf("append batch stream %d lsn %d epoch %d: %w", stream, p.lsn, epoch, p.err)
		}
	}
	return nil
}
