//go:build integration

package fidelity

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/thanos-io/objstore"

	"territory/runtime/blob"
	"territory/runtime/servicetest"
)

// keepOpen is a view of a shared bucket whose Close leaves the bucket open
// (every sequence closes its store).
type keepOpen struct{ objstore.Bucket }

func (keepOpen) Close() error { return nil }

// TestBlobFidelityS3: the object-store sequences of TestBlobFidelity against
// the real S3 server (scripts/s3-server.sh, versitygw) through runtime/blob's
// S3 provider, each sequence under a fresh prefix of the shared bucket: every
// answer, the refused keys included, must agree with the simulated store.
func TestBlobFidelityS3(t *testing.T) {
	s, err := blob.Open(context.Background(), servicetest.S3Config(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The bucket persists across runs: a fresh root per run, a fresh prefix
	// per sequence.
	root := fmt.Sprintf("fidelity-%d", time.Now().UnixNano())
	runBlobFidelity(t, "blob-s3", "object store vs S3 (versitygw)", sequences(40, 500), 8, func(seed uint64) *blob.Store {
		return blob.New(keepOpen{objstore.NewPrefixedBucket(s.Bucket(), fmt.Sprintf("%s/%d", root, seed))})
	})
}
