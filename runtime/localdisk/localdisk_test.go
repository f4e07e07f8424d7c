package localdisk

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"territory/model"
)

func TestDisk(t *testing.T) {
	root := t.TempDir()
	d, err := Open(filepath.Join(root, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	do := func(req model.DiskRequest) (model.DiskResponse, model.ServiceErr) {
		t.Helper()
		r, se, err := d.Do(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return r, se
	}
	if _, se := do(model.DiskRequest{Kind: model.DiskRead, Path: "snap/1"}); se != model.ErrNotFound {
		t.Fatalf("read of nothing: %v", se)
	}
	do(model.DiskRequest{Kind: model.DiskWrite, Path: "snap/1", Data: []byte("one")})
	do(model.DiskRequest{Kind: model.DiskWrite, Path: "snap/1", Data: []byte("two")})
	if _, se := do(model.DiskRequest{Kind: model.DiskSync, Path: "snap/1"}); se != model.ErrNone {
		t.Fatal(se)
	}
	if r, _ := do(model.DiskRequest{Kind: model.DiskRead, Path: "snap/1"}); string(r.Data) != "two" {
		t.Fatalf("read %q", r.Data)
	}
	// A path cannot leave the root.
	do(model.DiskRequest{Kind: model.DiskWrite, Path: "../../escape", Data: []byte("x")})
	if _, err := os.Stat(filepath.Join(root, "escape")); err == nil {
		t.Fatal("a write escaped the root")
	}
	if _, se := do(model.DiskRequest{Kind: model.DiskWrite, Path: ""}); se != model.ErrUnavailable {
		t.Fatalf("empty path: %v", se)
	}
	do(model.DiskRequest{Kind: model.DiskDelete, Path: "snap/1"})
	do(model.DiskRequest{Kind: model.DiskDelete, Path: "snap/1"})
	if _, se := do(model.DiskRequest{Kind: model.DiskRead, Path: "snap/1"}); se != model.ErrNotFound {
		t.Fatalf("read after delete: %v", se)
	}
	// Reopen: synced content survives.
	do(model.DiskRequest{Kind: model.DiskWrite, Path: "k", Data: []byte("kept")})
	do(model.DiskRequest{Kind: model.DiskSync, Path: "k"})
	d, _ = Open(filepath.Join(root, "cache"))
	if r, _ := do(model.DiskRequest{Kind: model.DiskRead, Path: "k"}); string(r.Data) != "kept" {
		t.Fatalf("after reopen: %q", r.Data)
	}
}
