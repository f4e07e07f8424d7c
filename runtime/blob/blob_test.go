package blob

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thanos-io/objstore"

	"territory/model"
)

func TestAcceptanceFilesystem(t *testing.T) {
	bkt, err := NewBucket(context.Background(), FilesystemConfig(t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	objstore.AcceptanceTest(t, bkt)
}

func TestPortFilesystem(t *testing.T) {
	s, err := Open(context.Background(), FilesystemConfig(t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	portSemantics(t, s, "")
}

// TestPortS3 runs against a real S3 server (scripts/s3-server.sh) when
// TERRITORY_S3_ENDPOINT is set.
func TestPortS3(t *testing.T) {
	endpoint := os.Getenv("TERRITORY_S3_ENDPOINT")
	if endpoint == "" {
		t.Skip("TERRITORY_S3_ENDPOINT is not set: start scripts/s3-server.sh and export its env to run the S3 test")
	}
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
	portSemantics(t, s, root)
	t.Run("acceptance", func(t *testing.T) {
		objstore.AcceptanceTest(t, objstore.NewPrefixedBucket(s.Bucket(), root+"acceptance"))
	})
}

func portSemantics(t *testing.T, s *Store, root string) {
	ctx := context.Background()
	do := func(req model.BlobRequest) (model.BlobResponse, model.ServiceErr) {
		t.Helper()
		resp, serr, err := s.Do(ctx, req)
		if err != nil {
			t.Fatalf("%v %s: %v", req.Kind, req.Key, err)
		}
		return resp, serr
	}
	k := func(s string) string { return root + s }
	for _, key := range []string{"snap/00001/a", "snap/00001/b", "snap/00002/c", "snapx", "other/d"} {
		if _, e := do(model.BlobRequest{Kind: model.BlobPut, Key: k(key), Data: []byte("data-" + key)}); e != model.ErrNone {
			t.Fatalf("put %s: %v", key, e)
		}
	}
	r, e := do(model.BlobRequest{Kind: model.BlobGet, Key: k("snap/00001/b")})
	if e != model.ErrNone || string(r.Data) != "data-snap/00001/b" || !r.Exists {
		t.Fatalf("get: %q %v", r.Data, e)
	}
	if _, e := do(model.BlobRequest{Kind: model.BlobGet, Key: k("snap/nope")}); e != model.ErrNotFound {
		t.Fatalf("get of a missing key: %v", e)
	}
	if r, _ := do(model.BlobRequest{Kind: model.BlobExists, Key: k("snap/00002/c")}); !r.Exists {
		t.Fatal("exists: false for a stored key")
	}
	if r, _ := do(model.BlobRequest{Kind: model.BlobExists, Key: k("snap/00002/zz")}); r.Exists {
		t.Fatal("exists: true for a missing key")
	}
	list := func(prefix string) []string {
		r, e := do(model.BlobRequest{Kind: model.BlobList, Key: k(prefix)})
		if e != model.ErrNone {
			t.Fatalf("list: %v", e)
		}
		return r.Keys
	}
	if got, want := list("snap/"), []string{k("snap/00001/a"), k("snap/00001/b"), k("snap/00002/c")}; !slices.Equal(got, want) {
		t.Fatalf("list snap/: %v, want %v", got, want)
	}
	if got, want := list("snap"), []string{k("snap/00001/a"), k("snap/00001/b"), k("snap/00002/c"), k("snapx")}; !slices.Equal(got, want) {
		t.Fatalf("list snap: %v, want %v", got, want)
	}
	if got, want := list("snap/00001/"), []string{k("snap/00001/a"), k("snap/00001/b")}; !slices.Equal(got, want) {
		t.Fatalf("list snap/00001/: %v, want %v", got, want)
	}
	if got := list("nothing/"); len(got) != 0 {
		t.Fatalf("list nothing/: %v", got)
	}
	// Overwrite replaces the whole object.
	do(model.BlobRequest{Kind: model.BlobPut, Key: k("snapx"), Data: []byte("v2")})
	if r, _ := do(model.BlobRequest{Kind: model.BlobGet, Key: k("snapx")}); string(r.Data) != "v2" {
		t.Fatalf("overwrite: %q", r.Data)
	}
	if _, e := do(model.BlobRequest{Kind: model.BlobDelete, Key: k("snap/00001/a")}); e != model.ErrNone {
		t.Fatalf("delete: %v", e)
	}
	if _, e := do(model.BlobRequest{Kind: model.BlobDelete, Key: k("snap/00001/a")}); e != model.ErrNone {
		t.Fatalf("delete of a missing key: %v", e)
	}
	if _, e := do(model.BlobRequest{Kind: model.BlobGet, Key: k("snap/00001/a")}); e != model.ErrNotFound {
		t.Fatalf("get after delete: %v", e)
	}
	if got, want := list("snap/00001/"), []string{k("snap/00001/b")}; !slices.Equal(got, want) {
		t.Fatalf("list after delete: %v, want %v", got, want)
	}
	if _, e := do(model.BlobRequest{Kind: model.BlobPut, Key: "", Data: []byte("x")}); e != model.ErrNotFound {
		t.Fatalf("put with an empty key: %v", e)
	}
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
