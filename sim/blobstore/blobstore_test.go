package blobstore

import (
	"bytes"
	"slices"
	"testing"

	"territory/model"
)

func put(t *testing.T, s *Store, key, data string) {
	t.Helper()
	if _, err := s.Apply(model.BlobRequest{Kind: model.BlobPut, Key: key, Data: []byte(data)}); err != model.ErrNone {
		t.Fatalf("put %s: %v", key, err)
	}
}

func TestPutGetExistsDeleteList(t *testing.T) {
	s := New()
	buf := []byte("snap-1")
	if _, err := s.Apply(model.BlobRequest{Kind: model.BlobPut, Key: "snap/a.b", Data: buf}); err != model.ErrNone {
		t.Fatal(err)
	}
	buf[0] = 'X' // the store must have copied
	put(t, s, "snap/b.b", "two")
	put(t, s, "other/c.b", "three")
	got, err := s.Apply(model.BlobRequest{Kind: model.BlobGet, Key: "snap/a.b"})
	if err != model.ErrNone || string(got.Data) != "snap-1" {
		t.Fatalf("get: %q %v", got.Data, err)
	}
	got.Data[0] = 'Y' // and copied on the way out
	again, _ := s.Apply(model.BlobRequest{Kind: model.BlobGet, Key: "snap/a.b"})
	if !bytes.Equal(again.Data, []byte("snap-1")) {
		t.Fatalf("get returned an alias: %q", again.Data)
	}
	if _, err := s.Apply(model.BlobRequest{Kind: model.BlobGet, Key: "snap/zzz.b"}); err != model.ErrNotFound {
		t.Fatalf("get of a missing key: %v", err)
	}
	list, _ := s.Apply(model.BlobRequest{Kind: model.BlobList, Key: "snap/"})
	if !slices.Equal(list.Keys, []string{"snap/a.b", "snap/b.b"}) {
		t.Fatalf("list: %v", list.Keys)
	}
	s.Apply(model.BlobRequest{Kind: model.BlobDelete, Key: "snap/a.b"})
	ex, _ := s.Apply(model.BlobRequest{Kind: model.BlobExists, Key: "snap/a.b"})
	if ex.Exists {
		t.Fatal("deleted object still exists")
	}
	if !slices.Equal(s.Deleted(), []string{"snap/a.b"}) {
		t.Fatalf("audit trail: %v", s.Deleted())
	}
	if _, err := s.Apply(model.BlobRequest{Kind: model.BlobDelete, Key: "snap/a.b"}); err != model.ErrNone {
		t.Fatalf("second delete: %v", err)
	}
}

func TestCorruptAndTruncate(t *testing.T) {
	s := New()
	put(t, s, "k.b", "abcdef")
	if !s.Corrupt("k.b", 2) {
		t.Fatal("corrupt missed the key")
	}
	d, _ := s.Object("k.b")
	if string(d) == "abcdef" || len(d) != 6 {
		t.Fatalf("corrupt did nothing: %q", d)
	}
	s.Truncate("k.b", 3)
	d, _ = s.Object("k.b")
	if len(d) != 3 {
		t.Fatalf("truncate: %q", d)
	}
	if s.Corrupt("missing", 0) || s.Truncate("missing", 1) {
		t.Fatal("faults on a missing key must report false")
	}
}
