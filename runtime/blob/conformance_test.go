package blob

import (
	"context"
	"testing"
	"time"

	"territory/conformance"
	"territory/model"
)

// bucketPort runs the blob suite on a bucket through this package's Store:
// the filesystem bucket (dev mode) here, S3 (versitygw), GCS
// (fake-gcs-server) and Azure (Azurite) in the tests that find those
// services.
type bucketPort struct {
	s    *Store
	lose conformance.Alternate
}

func (b *bucketPort) Do(req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return b.s.Do(ctx, req)
}

// DoLost: the lost answer is an upload that completed and whose answer is
// dropped; the lost request one never sent.
func (b *bucketPort) DoLost(req model.BlobRequest) {
	if b.lose.AnswerLost() {
		b.Do(req)
	}
}

// runBlobSuite runs the blob conformance suite on one bucket (every case
// under its own fresh prefix: buckets persist across runs).
func runBlobSuite(t *testing.T, s *Store) {
	conformance.Run(t, conformance.BlobCases(), nil, func(*testing.T) conformance.BlobService { return &bucketPort{s: s} })
}

func TestConformanceFilesystem(t *testing.T) {
	s, err := Open(context.Background(), FilesystemConfig(t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	runBlobSuite(t, s)
}
