package pulsarlog

import (
	"context"
	"crypto/sha256"
	"fmt"

	"territory/model"
	"territory/model/logfence"
)

// AppendBatch appends entries at consecutive LSNs, pipelined: each is handed
// to the writer in LSN order, then the answers are awaited together. The
// writer must hold epoch (LogOpen first). It is meant for bulk loads
// (imports, benchmarks). Entries already committed with the same data are
// skipped, as a retried LogAppend would be. On the first failure it returns
// an error; entries after the failed one may or may not have landed
// (LogAppend of the same LSN and data answers which, idempotently).
func (l *Log) AppendBatch(ctx context.Context, stream uint32, epoch uint64, entries []model.LogEntry) error {
	s, err := l.stream(stream)
	if err != nil {
		return err
	}
	for i, e := range entries {
		if i > 0 && e.LSN != entries[i-1].LSN+1 {
			return fmt.Errorf("append batch stream %d: lsn %d follows %d", stream, e.LSN, entries[i-1].LSN)
		}
		if e.LSN == 0 || e.LSN > MaxLSN || len(e.Data) > maxDataSize {
			return fmt.Errorf("append batch stream %d: lsn %d (%d bytes) out of range", stream, e.LSN, len(e.Data))
		}
	}
	rs := make([]*request, 0, len(entries))
	for _, e := range entries {
		sum := logfence.Sum(sha256.Sum256(e.Data))
		rs = append(rs, s.start(ctx, func(w *logfence.Writer, id uint64) []logfence.Effect {
			return w.Append(id, epoch, e.LSN, e.Data, sum)
		}))
	}
	for i, r := range rs {
		_, serr, err := answer(r.wait(ctx))
		if err != nil {
			return fmt.Errorf("append batch stream %d lsn %d epoch %d: %w", stream, entries[i].LSN, epoch, err)
		}
		if serr != model.ErrNone {
			return fmt.Errorf("append batch stream %d lsn %d epoch %d: %s", stream, entries[i].LSN, epoch, serr)
		}
	}
	return nil
}
