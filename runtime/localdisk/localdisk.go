// Package localdisk is the local-disk port (model.DiskRequest): a host's
// cache files under one root directory. DiskWrite replaces a file's content
// (atomically, by rename) without making it durable; DiskSync fsyncs the file
// and its directory; DiskRead returns the content (ErrNotFound if none);
// DiskDelete removes it (removing nothing succeeds).
package localdisk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"territory/model"
)

// Disk is the cache directory of one host.
type Disk struct{ root string }

// Open creates root if needed.
func Open(root string) (*Disk, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("localdisk: %w", err)
	}
	return &Disk{root: root}, nil
}

// path maps a request path into the root; ok is false for a path that would
// leave it.
func (d *Disk) path(p string) (string, bool) {
	clean := filepath.Clean("/" + p)
	if p == "" || strings.Contains(p, "\x00") || clean == "/" {
		return "", false
	}
	return filepath.Join(d.root, clean), true
}

// Do runs one request. A bad path is refused definitely (ErrUnavailable).
func (d *Disk) Do(ctx context.Context, req model.DiskRequest) (model.DiskResponse, model.ServiceErr, error) {
	if err := ctx.Err(); err != nil {
		return model.DiskResponse{}, model.ErrNone, err
	}
	p, ok := d.path(req.Path)
	if !ok {
		return model.DiskResponse{}, model.ErrUnavailable, nil
	}
	switch req.Kind {
	case model.DiskWrite:
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return model.DiskResponse{}, model.ErrNone, err
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, req.Data, 0o600); err != nil {
			return model.DiskResponse{}, model.ErrNone, err
		}
		if err := os.Rename(tmp, p); err != nil {
			return model.DiskResponse{}, model.ErrNone, err
		}
		return model.DiskResponse{}, model.ErrNone, nil
	case model.DiskSync:
		if err := syncPath(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return model.DiskResponse{}, model.ErrNone, nil // nothing written: nothing to sync
			}
			return model.DiskResponse{}, model.ErrNone, err
		}
		return model.DiskResponse{}, model.ErrNone, syncPath(filepath.Dir(p))
	case model.DiskRead:
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return model.DiskResponse{}, model.ErrNotFound, nil
		}
		if err != nil {
			return model.DiskResponse{}, model.ErrNone, err
		}
		return model.DiskResponse{Data: b}, model.ErrNone, nil
	case model.DiskDelete:
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return model.DiskResponse{}, model.ErrNone, err
		}
		return model.DiskResponse{}, model.ErrNone, nil
	}
	return model.DiskResponse{}, model.ErrNone, fmt.Errorf("localdisk: unknown request kind %d", req.Kind)
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
