// Package blob is the object-store port (model.BlobRequest) on
// github.com/thanos-io/objstore.
//
// A bucket is configured with objstore's standard YAML:
//
//	type: FILESYSTEM        # or S3, GCS, AZURE
//	config:
//	  directory: /var/lib/territory/blobs
//	prefix: ""             # optional: every key lives under this prefix
//
// The provider-specific `config` block is exactly what objstore documents for
// that provider. Only FILESYSTEM, S3, GCS and AZURE are compiled in (the
// providers the design names); objstore's client.NewBucket would also link
// SWIFT, COS, OSS, BOS, OCI and OBS and their SDKs.
//
// Secrets: the YAML can carry credentials. It is read from a file and never
// logged; ${VAR} references in it are expanded from the environment, so the
// file itself can stay free of secrets.
package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	kitlog "github.com/go-kit/log"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/azure"
	"github.com/thanos-io/objstore/providers/filesystem"
	"github.com/thanos-io/objstore/providers/gcs"
	"github.com/thanos-io/objstore/providers/s3"
	"gopkg.in/yaml.v3"

	"territory/model"
)

// BucketConfig is objstore's standard bucket YAML.
type BucketConfig struct {
	Type   string    `yaml:"type"`
	Config yaml.Node `yaml:"config"`
	Prefix string    `yaml:"prefix"`
}

// ParseConfig parses and checks the YAML (strictly: unknown top-level fields
// are errors). ${VAR} references are expanded from the environment first.
func ParseConfig(conf []byte) (BucketConfig, error) {
	var bc BucketConfig
	dec := yaml.NewDecoder(bytes.NewReader([]byte(os.ExpandEnv(string(conf)))))
	dec.KnownFields(true)
	if err := dec.Decode(&bc); err != nil {
		return BucketConfig{}, fmt.Errorf("objstore config: %w", err)
	}
	switch strings.ToUpper(bc.Type) {
	case string(objstore.FILESYSTEM), string(objstore.S3), string(objstore.GCS), string(objstore.AZURE):
	case "":
		return BucketConfig{}, errors.New("objstore config: field type is required (FILESYSTEM, S3, GCS or AZURE)")
	default:
		return BucketConfig{}, fmt.Errorf("objstore config: field type: %q is not supported (FILESYSTEM, S3, GCS or AZURE)", bc.Type)
	}
	return bc, nil
}

// NewBucket builds the bucket a YAML configuration describes.
func NewBucket(ctx context.Context, conf []byte, logger *slog.Logger) (objstore.Bucket, error) {
	bc, err := ParseConfig(conf)
	if err != nil {
		return nil, err
	}
	raw, err := yaml.Marshal(&bc.Config)
	if err != nil {
		return nil, fmt.Errorf("objstore config: field config: %w", err)
	}
	if bc.Config.Kind == 0 {
		raw = nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	kl := kitlog.LoggerFunc(func(kv ...any) error {
		logger.Debug("objstore", kv...)
		return nil
	})
	const component = "territory"
	var bkt objstore.Bucket
	switch strings.ToUpper(bc.Type) {
	case string(objstore.FILESYSTEM):
		bkt, err = filesystem.NewBucketFromConfig(raw)
	case string(objstore.S3):
		bkt, err = s3.NewBucket(kl, raw, component, nil)
	case string(objstore.GCS):
		bkt, err = gcs.NewBucket(ctx, kl, raw, component, nil)
	case string(objstore.AZURE):
		bkt, err = azure.NewBucket(kl, raw, component, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("objstore %s bucket: %w", strings.ToUpper(bc.Type), err)
	}
	if bc.Prefix != "" {
		bkt = objstore.NewPrefixedBucket(bkt, bc.Prefix)
	}
	return bkt, nil
}

// FilesystemConfig is the YAML of a filesystem bucket rooted at dir.
func FilesystemConfig(dir string) []byte {
	b, _ := yaml.Marshal(map[string]any{"type": "FILESYSTEM", "config": map[string]string{"directory": dir}})
	return b
}

// Store is the object-store port on one bucket.
type Store struct {
	bkt objstore.Bucket
}

// New wraps a bucket.
func New(bkt objstore.Bucket) *Store { return &Store{bkt: bkt} }

// Open builds the bucket from YAML and wraps it.
func Open(ctx context.Context, conf []byte, logger *slog.Logger) (*Store, error) {
	bkt, err := NewBucket(ctx, conf, logger)
	if err != nil {
		return nil, err
	}
	return New(bkt), nil
}

// Bucket is the underlying bucket.
func (s *Store) Bucket() objstore.Bucket { return s.bkt }

// Close releases the bucket.
func (s *Store) Close() error { return s.bkt.Close() }

// Do runs one request with the semantics of the simulated store
// (sim/blobstore): put of a whole object, get (ErrNotFound if absent),
// exists, delete (deleting nothing succeeds, as on S3) and list by prefix,
// sorted. A returned error means the outcome is unknown (a put may have
// landed); a ServiceErr is definite.
//
// Atomicity is the provider's: S3, GCS and Azure replace a whole object
// atomically; objstore's FILESYSTEM provider writes in place, so a crash
// during a put can leave a torn object (the core never loads a blob that
// fails its checksum).
//
// A key that is not flat on every backend (model.ValidBlobKey; for a list,
// model.ValidBlobPrefix) is refused with ErrInvalid before the bucket is
// touched, on every provider, as sim/blobstore does.
func (s *Store) Do(ctx context.Context, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error) {
	check := model.ValidBlobKey
	if req.Kind == model.BlobList {
		check = model.ValidBlobPrefix
	}
	if err := check(req.Key); err != nil {
		return model.BlobResponse{}, model.ErrInvalid, nil
	}
	switch req.Kind {
	case model.BlobPut:
		if err := s.bkt.Upload(ctx, req.Key, bytes.NewReader(req.Data)); err != nil {
			return model.BlobResponse{}, model.ErrNone, fmt.Errorf("blob put %s: %w", req.Key, err)
		}
		return model.BlobResponse{}, model.ErrNone, nil
	case model.BlobGet:
		rc, err := s.bkt.Get(ctx, req.Key)
		if err != nil {
			if s.bkt.IsObjNotFoundErr(err) {
				return model.BlobResponse{}, model.ErrNotFound, nil
			}
			return model.BlobResponse{}, model.ErrNone, fmt.Errorf("blob get %s: %w", req.Key, err)
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			return model.BlobResponse{}, model.ErrNone, fmt.Errorf("blob get %s: %w", req.Key, err)
		}
		return model.BlobResponse{Data: data, Exists: true}, model.ErrNone, nil
	case model.BlobExists:
		ok, err := s.bkt.Exists(ctx, req.Key)
		if err != nil {
			return model.BlobResponse{}, model.ErrNone, fmt.Errorf("blob exists %s: %w", req.Key, err)
		}
		return model.BlobResponse{Exists: ok}, model.ErrNone, nil
	case model.BlobDelete:
		if err := s.bkt.Delete(ctx, req.Key); err != nil && !s.bkt.IsObjNotFoundErr(err) {
			return model.BlobResponse{}, model.ErrNone, fmt.Errorf("blob delete %s: %w", req.Key, err)
		}
		return model.BlobResponse{}, model.ErrNone, nil
	case model.BlobList:
		keys, err := s.List(ctx, req.Key)
		if err != nil {
			return model.BlobResponse{}, model.ErrNone, err
		}
		return model.BlobResponse{Keys: keys}, model.ErrNone, nil
	}
	return model.BlobResponse{}, model.ErrNone, fmt.Errorf("blob: unknown request kind %d", req.Kind)
}

// List returns every object key starting with prefix, sorted. The prefix
// need not end at a "/": the listing walks the directory the prefix is in,
// recursively, and filters.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	dir := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir = prefix[:i+1]
	}
	var keys []string
	err := s.bkt.Iter(ctx, dir, func(name string) error {
		if strings.HasPrefix(name, prefix) && !strings.HasSuffix(name, "/") {
			keys = append(keys, name)
		}
		return nil
	}, objstore.WithRecursiveIter())
	if err != nil {
		if s.bkt.IsObjNotFoundErr(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("blob list %q: %w", prefix, err)
	}
	slices.Sort(keys)
	return keys, nil
}
