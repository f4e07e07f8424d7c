// Package blobstore is the simulated object store (the DSS): whole-object put,
// get, exists, delete and list by prefix. Every put is atomic here; latency,
// errors and ambiguous puts are added by the simulated world around it, and
// corruption by the fault hooks below.
package blobstore

import (
	"slices"
	"strings"

	"territory/model"
)

// Store is a map of objects.
type Store struct {
	objects map[string][]byte
	deleted []string // audit trail for checkers, in order
}

// New returns an empty store.
func New() *Store { return &Store{objects: make(map[string][]byte)} }

// Apply runs one request. Data is copied on the way in and out.
// A key that is not flat on every backend (model.ValidBlobKey; for a list,
// model.ValidBlobPrefix) is refused with ErrInvalid, as runtime/blob does.
func (s *Store) Apply(req model.BlobRequest) (model.BlobResponse, model.ServiceErr) {
	check := model.ValidBlobKey
	if req.Kind == model.BlobList {
		check = model.ValidBlobPrefix
	}
	if check(req.Key) != nil {
		return model.BlobResponse{}, model.ErrInvalid
	}
	switch req.Kind {
	case model.BlobPut:
		s.objects[req.Key] = slices.Clone(req.Data)
		return model.BlobResponse{}, model.ErrNone
	case model.BlobGet:
		d, ok := s.objects[req.Key]
		if !ok {
			return model.BlobResponse{}, model.ErrNotFound
		}
		return model.BlobResponse{Data: slices.Clone(d), Exists: true}, model.ErrNone
	case model.BlobExists:
		_, ok := s.objects[req.Key]
		return model.BlobResponse{Exists: ok}, model.ErrNone
	case model.BlobDelete:
		if _, ok := s.objects[req.Key]; ok {
			delete(s.objects, req.Key)
			s.deleted = append(s.deleted, req.Key)
		}
		return model.BlobResponse{}, model.ErrNone // deleting nothing is not an error, as on S3
	case model.BlobList:
		return model.BlobResponse{Keys: s.Keys(req.Key)}, model.ErrNone
	}
	panic("blobstore: unknown request kind")
}

// Keys lists the keys under prefix, sorted.
func (s *Store) Keys(prefix string) []string {
	var keys []string
	for k := range s.objects {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// Object returns an object without copying, for checkers.
func (s *Store) Object(key string) ([]byte, bool) {
	d, ok := s.objects[key]
	return d, ok
}

// Deleted is the audit trail of deleted keys.
func (s *Store) Deleted() []string { return s.deleted }

// Corrupt flips one byte of an object (a fault); it reports whether the key existed.
func (s *Store) Corrupt(key string, at int) bool {
	d, ok := s.objects[key]
	if !ok || len(d) == 0 {
		return false
	}
	c := slices.Clone(d)
	c[at%len(c)] ^= 0x5a
	s.objects[key] = c
	return true
}

// Truncate keeps only the first n bytes of an object (a partial upload).
func (s *Store) Truncate(key string, n int) bool {
	d, ok := s.objects[key]
	if !ok {
		return false
	}
	s.objects[key] = slices.Clone(d[:min(n, len(d))])
	return true
}
