package blob

import (
	"context"
	"fmt"
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
	s, err := Open(context.Background(), servicetest.S3Config(t), nil)
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
