//go:build integration

package fidelity

import (
	"context"
	"fmt"
	"os"
	"strings"
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
	endpoint := servicetest.Env(t, "TERRITORY_S3_ENDPOINT", "start scripts/s3-server.sh and export its env (or run scripts/test-integration.sh)")
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	host := strings.TrimPrefix(strings.TrimPrefix(endpoint, "http://"), "https://")
	conf := fmt.Sprintf(`type: S3
config:
  bucket: %s
  endpoint: %s
  region: %s
  access_key: ${TERRITORY_S3_ACCESS_KEY}
  secret_key: ${TERRITORY_S3_SECRET_KEY}
  insecure: %v
  bucket_lookup_type: path
`, env("TERRITORY_S3_BUCKET", "territory-test"), host, env("TERRITORY_S3_REGION", "us-east-1"), strings.HasPrefix(endpoint, "http://"))
	t.Setenv("TERRITORY_S3_ACCESS_KEY", env("TERRITORY_S3_ACCESS_KEY", "territory"))
	t.Setenv("TERRITORY_S3_SECRET_KEY", env("TERRITORY_S3_SECRET_KEY", "territory-secret"))
	s, err := blob.Open(context.Background(), []byte(conf), nil)
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
