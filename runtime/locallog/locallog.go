// Package locallog is the dev-mode log: a single-node log on one local disk.
//
// It implements the replicated-log port (model.LogRequest) with exactly the
// semantics of the simulator's log (sim/replog) — fencing by epoch on open,
// append at tail+1, idempotent retry of an identical entry, ErrLSNConflict for
// different data at a taken LSN, ErrLSNGap beyond tail+1 — but it is NOT
// replicated: every entry lives on one disk of one machine. It exists so that
// `territoryd dev` runs without BookKeeper. Never use it in production.
//
// Storage is bbolt; every append and open is committed with fsync before it
// is acknowledged (concurrent requests share one fsync through bbolt's batch).
package locallog

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"territory/model"
)

// DefaultMaxEntries is the read batch when LogRequest.MaxEntries is 0 (as in sim/replog).
const DefaultMaxEntries = 256

var (
	bucketStreams = []byte("streams")
	keyEpoch      = []byte("epoch")
	keyTail       = []byte("tail")
	bucketEntries = []byte("entries")
)

// UnreplicatedLocalLog is a durable, fsync'd, single-node log. Its name says
// what it is not: a replicated log. A disk loss loses every stream.
type UnreplicatedLocalLog struct {
	db *bolt.DB
}

// Open opens (or creates) the log file at path.
func Open(path string) (*UnreplicatedLocalLog, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("locallog: open %s: %w", path, err)
	}
	db.MaxBatchDelay = 2 * time.Millisecond
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketStreams)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("locallog: init %s: %w", path, err)
	}
	return &UnreplicatedLocalLog{db: db}, nil
}

// Close closes the file. Requests after Close fail.
func (l *UnreplicatedLocalLog) Close() error { return l.db.Close() }

// Path is the file the log lives in.
func (l *UnreplicatedLocalLog) Path() string { return l.db.Path() }

func streamKey(id uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], id)
	return b[:]
}

func lsnKey(lsn uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], lsn)
	return b[:]
}

func getU64(b *bolt.Bucket, key []byte) uint64 {
	if b == nil {
		return 0
	}
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putU64(b *bolt.Bucket, key []byte, v uint64) error {
	return b.Put(key, lsnKey(v))
}

// stream returns the stream's bucket, creating it in a writable transaction.
func stream(tx *bolt.Tx, id uint32, create bool) (*bolt.Bucket, error) {
	root := tx.Bucket(bucketStreams)
	if !create {
		return root.Bucket(streamKey(id)), nil
	}
	s, err := root.CreateBucketIfNotExists(streamKey(id))
	if err != nil {
		return nil, err
	}
	if _, err := s.CreateBucketIfNotExists(bucketEntries); err != nil {
		return nil, err
	}
	return s, nil
}

// Do runs one request. A definite refusal comes back as a ServiceErr; a
// returned error (the disk failed, the log is closed, ctx expired before the
// request started) means the outcome is unknown to the caller.
func (l *UnreplicatedLocalLog) Do(ctx context.Context, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
	if err := ctx.Err(); err != nil {
		return model.LogResponse{}, model.ErrNone, err
	}
	switch req.Kind {
	case model.LogOpen:
		return l.open(req.Stream, req.Epoch)
	case model.LogAppend:
		return l.append(req.Stream, req.Epoch, req.LSN, req.Data)
	case model.LogRead:
		return l.read(req.Stream, req.FromLSN, req.MaxEntries)
	}
	return model.LogResponse{}, model.ErrNone, fmt.Errorf("locallog: unknown request kind %d", req.Kind)
}

// open raises the stream's writer epoch to epoch (persisted before the
// answer) and returns the tail. A lower epoch is fenced.
func (l *UnreplicatedLocalLog) open(id uint32, epoch uint64) (model.LogResponse, model.ServiceErr, error) {
	var resp model.LogResponse
	var serr model.ServiceErr
	err := l.db.Batch(func(tx *bolt.Tx) error {
		resp, serr = model.LogResponse{}, model.ErrNone
		s, err := stream(tx, id, true)
		if err != nil {
			return err
		}
		cur, tail := getU64(s, keyEpoch), getU64(s, keyTail)
		resp.TailLSN = tail
		if epoch < cur {
			serr = model.ErrFenced
			return nil
		}
		if epoch > cur {
			return putU64(s, keyEpoch, epoch)
		}
		return nil
	})
	if err != nil {
		return model.LogResponse{}, model.ErrNone, fmt.Errorf("locallog: open stream %d: %w", id, err)
	}
	return resp, serr, nil
}

func (l *UnreplicatedLocalLog) append(id uint32, epoch, lsn uint64, data []byte) (model.LogResponse, model.ServiceErr, error) {
	var resp model.LogResponse
	var serr model.ServiceErr
	err := l.db.Batch(func(tx *bolt.Tx) error {
		resp, serr = model.LogResponse{LSN: lsn}, model.ErrNone
		s, err := stream(tx, id, true)
		if err != nil {
			return err
		}
		cur, tail := getU64(s, keyEpoch), getU64(s, keyTail)
		resp.TailLSN = tail
		// Only the writer at the stream's current epoch may append: a lower
		// epoch was fenced, a higher one must open first. A stream starts at
		// epoch 0, so an epoch-0 writer may append without opening (as sim/replog).
		if epoch != cur {
			serr = model.ErrFenced
			return nil
		}
		entries := s.Bucket(bucketEntries)
		switch {
		case lsn == 0:
			// LSNs start at 1; 0 is never a free slot.
			serr = model.ErrLSNConflict
		case lsn <= tail:
			if !bytes.Equal(entries.Get(lsnKey(lsn)), data) {
				serr = model.ErrLSNConflict
			}
			// else: an idempotent retry of a committed entry.
		case lsn > tail+1:
			serr = model.ErrLSNGap
		default:
			if err := entries.Put(lsnKey(lsn), bytes.Clone(data)); err != nil {
				return err
			}
			if err := putU64(s, keyTail, lsn); err != nil {
				return err
			}
			resp.TailLSN = lsn
		}
		return nil
	})
	if err != nil {
		return model.LogResponse{}, model.ErrNone, fmt.Errorf("locallog: append stream %d lsn %d: %w", id, lsn, err)
	}
	return resp, serr, nil
}

func (l *UnreplicatedLocalLog) read(id uint32, from uint64, maxEntries int) (model.LogResponse, model.ServiceErr, error) {
	if from == 0 {
		from = 1
	}
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	var resp model.LogResponse
	err := l.db.View(func(tx *bolt.Tx) error {
		s, _ := stream(tx, id, false)
		if s == nil {
			return nil
		}
		resp.TailLSN = getU64(s, keyTail)
		c := s.Bucket(bucketEntries).Cursor()
		for k, v := c.Seek(lsnKey(from)); k != nil && len(resp.Entries) < maxEntries; k, v = c.Next() {
			lsn := binary.BigEndian.Uint64(k)
			if lsn > resp.TailLSN {
				break
			}
			resp.Entries = append(resp.Entries, model.LogEntry{LSN: lsn, Data: bytes.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return model.LogResponse{}, model.ErrNone, fmt.Errorf("locallog: read stream %d: %w", id, err)
	}
	return resp, model.ErrNone, nil
}

// Epoch returns a stream's writer epoch and tail, for tests and tools.
func (l *UnreplicatedLocalLog) Epoch(id uint32) (epoch, tail uint64, err error) {
	err = l.db.View(func(tx *bolt.Tx) error {
		s, _ := stream(tx, id, false)
		epoch, tail = getU64(s, keyEpoch), getU64(s, keyTail)
		return nil
	})
	return epoch, tail, err
}
