package blob

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"territory/conformance"
	"territory/model"
)

// TestBadKeysTouchNothing: on a filesystem bucket, a key that would escape
// the bucket directory or alias another key is refused (ErrInvalid) before
// the filesystem is touched: nothing is written anywhere, inside the bucket
// or beside it. Without the check, objstore's filesystem provider writes
// `../escaped.b` into the bucket's parent and `a//b.c` into `a/b.c`.
func TestBadKeysTouchNothing(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "bucket")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), FilesystemConfig(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range conformance.BadBlobKeys("") {
		_, se, err := s.Do(context.Background(), model.BlobRequest{Kind: model.BlobPut, Key: k, Data: []byte("x")})
		if err != nil || se != model.ErrInvalid {
			t.Errorf("put %q: %v %v, want %v", k, se, err, model.ErrInvalid)
		}
		if model.ValidBlobKey(k) == nil {
			t.Errorf("model.ValidBlobKey accepts %q", k)
		}
	}
	for _, d := range []string{parent, dir} {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != map[string]int{parent: 1, dir: 0}[d] {
			t.Errorf("%s holds %d entries after refused puts", d, len(ents))
		}
	}
	// The core's own keys are valid.
	if err := model.ValidBlobKey(model.SnapshotBlobKey(42, "0123456789abcdef-0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
}
