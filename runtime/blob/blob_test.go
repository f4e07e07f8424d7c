package blob

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/thanos-io/objstore"

	"territory/runtime/servicetest"
)

func TestAcceptanceFilesystem(t *testing.T) {
	bkt, err := NewBucket(context.Background(), FilesystemConfig(t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	objstore.AcceptanceTest(t, bkt)
}

// TestPortS3 runs against a real S3 server (scripts/s3-server.sh) when
// TERRITORY_S3_ENDPOINT is set.
func TestPortS3(t *testing.T) {
	endpoint := servicetest.Env(t, "TERRITORY_S3_ENDPOINT", "start scripts/s3-server.sh and export its env to run the S3 test")
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
	s, err := Open(context.Background(), []byte(conf), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Unique names: the bucket persists across runs.
	root := fmt.Sprintf("run-%d/", time.Now().UnixNano())
	t.Run("port", func(t *testing.T) { runBlobSuite(t, s) })
	t.Run("acceptance", func(t *testing.T) {
		objstore.AcceptanceTest(t, objstore.NewPrefixedBucket(s.Bucket(), root+"acceptance"))
	})
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{"config: {}\n", "field type is required"},
		{"type: FTP\n", `"FTP" is not supported`},
		{"type: FILESYSTEM\nbogus: 1\n", "bogus"},
	} {
		if _, err := ParseConfig([]byte(tc.conf)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.conf, err, tc.want)
		}
	}
	t.Setenv("TERRITORY_TEST_DIR", t.TempDir())
	if _, err := NewBucket(context.Background(), []byte("type: filesystem\nconfig:\n  directory: ${TERRITORY_TEST_DIR}\nprefix: p\n"), nil); err != nil {
		t.Fatal(err)
	}
}
