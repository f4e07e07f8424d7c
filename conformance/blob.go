package conformance

import (
	"bytes"
	"fmt"
	"strings"

	"territory/model"
)

// BlobService is one object store (the simulated store, a bucket) as the blob
// suite sees it.
type BlobService interface {
	// Do runs one request and waits for its answer. A ServiceErr is a
	// definite answer; a non-nil error an unknown outcome (the case fails).
	Do(req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error)
	// DoLost runs req but the caller learns nothing: either the request is
	// lost on the way or its answer is lost on the way back (the adapter
	// picks; both must happen over successive calls). It returns once the
	// request has been applied or never will be.
	DoLost(req model.BlobRequest)
}

// BlobCases is the blob suite (it generalises runtime/blob's former
// portSemantics).
func BlobCases() []Case[BlobService] {
	return []Case[BlobService]{
		{Name: "put-get-exists", Run: blobPutGet},
		{Name: "get-missing", Run: blobMissing},
		{Name: "list-prefix", Run: blobList},
		{Name: "overwrite", Run: blobOverwrite},
		{Name: "delete", Run: blobDelete},
		{Name: "bad-keys", Run: blobBadKeys},
		{Name: "lost-put", Run: blobLostPut},
	}
}

func describeBlob(r model.BlobRequest) string {
	names := [...]string{"put", "get", "exists", "delete", "list"}
	if int(r.Kind) < len(names) {
		return names[r.Kind] + " " + r.Key
	}
	return fmt.Sprintf("blob op %d %s", r.Kind, r.Key)
}

func bdo(s BlobService, req model.BlobRequest, want model.ServiceErr) (model.BlobResponse, error) {
	r, se, err := s.Do(req)
	if err != nil {
		return r, errf("%s: unknown outcome: %v", describeBlob(req), err)
	}
	if se != want {
		return r, errf("%s: answered %v, want %v", describeBlob(req), se, want)
	}
	return r, nil
}

func bput(s BlobService, key string, data []byte) error {
	_, err := bdo(s, model.BlobRequest{Kind: model.BlobPut, Key: key, Data: data}, model.ErrNone)
	return err
}

// wantBlob checks key holds data (nil: absent) through get and exists.
func wantBlob(s BlobService, key string, data []byte) error {
	if data == nil {
		if _, err := bdo(s, model.BlobRequest{Kind: model.BlobGet, Key: key}, model.ErrNotFound); err != nil {
			return err
		}
	} else {
		r, err := bdo(s, model.BlobRequest{Kind: model.BlobGet, Key: key}, model.ErrNone)
		if err != nil {
			return err
		}
		if !bytes.Equal(r.Data, data) || !r.Exists {
			return errf("get %s: %q (exists %v), want %q", key, r.Data, r.Exists, data)
		}
	}
	r, err := bdo(s, model.BlobRequest{Kind: model.BlobExists, Key: key}, model.ErrNone)
	if err != nil {
		return err
	}
	if r.Exists != (data != nil) {
		return errf("exists %s: %v, want %v", key, r.Exists, data != nil)
	}
	return nil
}

func blist(s BlobService, prefix string) ([]string, error) {
	r, err := bdo(s, model.BlobRequest{Kind: model.BlobList, Key: prefix}, model.ErrNone)
	return r.Keys, err
}

// blobPutGet: a put stores the whole object; get returns it (not an alias of
// the caller's buffer); exists says so.
func blobPutGet(s BlobService, root string) error {
	k := root + "snap/00001/a.snap"
	buf := []byte("snapshot-bytes-\x00\xff")
	if err := bput(s, k, buf); err != nil {
		return err
	}
	want := bytes.Clone(buf)
	buf[0] = 'X' // the store must have copied
	if err := wantBlob(s, k, want); err != nil {
		return err
	}
	r, err := bdo(s, model.BlobRequest{Kind: model.BlobGet, Key: k}, model.ErrNone)
	if err != nil {
		return err
	}
	r.Data[0] = 'Y' // and copied on the way out
	if err := wantBlob(s, k, want); err != nil {
		return errf("after modifying a get's result: %v", err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	if err := bput(s, root+"big.bin", big); err != nil {
		return err
	}
	return wantBlob(s, root+"big.bin", big)
}

// blobMissing: get of a missing object is a definite ErrNotFound; exists is
// false.
func blobMissing(s BlobService, root string) error {
	if err := bput(s, root+"present.b", []byte("p")); err != nil {
		return err
	}
	for _, k := range []string{root + "nope.b", root + "dir/nope.b", root + "presen.b", root + "present.bb"} {
		if err := wantBlob(s, k, nil); err != nil {
			return err
		}
	}
	return nil
}

// blobList: list returns every key starting with the prefix (not only at a
// "/"), sorted, and nothing for a prefix nothing has.
func blobList(s BlobService, root string) error {
	k := func(n string) string { return root + n }
	for _, key := range []string{"snap/00002/c.b", "snap/00001/b.b", "other/d.b", "snapx.b", "snap/00001/a.b"} {
		if err := bput(s, k(key), []byte("data-"+key)); err != nil {
			return err
		}
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"snap/", []string{k("snap/00001/a.b"), k("snap/00001/b.b"), k("snap/00002/c.b")}},
		{"snap", []string{k("snap/00001/a.b"), k("snap/00001/b.b"), k("snap/00002/c.b"), k("snapx.b")}},
		{"snap/00001/", []string{k("snap/00001/a.b"), k("snap/00001/b.b")}},
		{"snap/00001/b", []string{k("snap/00001/b.b")}},
		{"nothing/", nil},
	} {
		got, err := blist(s, k(tc.prefix))
		if err != nil {
			return err
		}
		if len(got) == 0 && len(tc.want) == 0 {
			continue
		}
		if err := wantKeys("list "+tc.prefix, got, tc.want); err != nil {
			return err
		}
	}
	return nil
}

// blobOverwrite: a put over an existing object replaces it whole (a shorter
// object leaves nothing of the longer one behind).
func blobOverwrite(s BlobService, root string) error {
	k := root + "obj.b"
	if err := bput(s, k, []byte("version-one-is-long")); err != nil {
		return err
	}
	if err := bput(s, k, []byte("v2")); err != nil {
		return err
	}
	return wantBlob(s, k, []byte("v2"))
}

// blobDelete: a delete removes the object from get, exists and list;
// deleting a missing object succeeds (as on S3).
func blobDelete(s BlobService, root string) error {
	a, b := root+"d/a.b", root+"d/b.b"
	for _, k := range []string{a, b} {
		if err := bput(s, k, []byte(k)); err != nil {
			return err
		}
	}
	for range 2 {
		if _, err := bdo(s, model.BlobRequest{Kind: model.BlobDelete, Key: a}, model.ErrNone); err != nil {
			return err
		}
	}
	if err := wantBlob(s, a, nil); err != nil {
		return errf("after delete: %v", err)
	}
	if err := wantBlob(s, b, []byte(b)); err != nil {
		return err
	}
	got, err := blist(s, root+"d/")
	if err != nil {
		return err
	}
	return wantKeys("list after delete", got, []string{b})
}

// BadBlobKeys are keys that are not flat on a filesystem bucket (they clash
// with, alias or escape other keys), relative to root, each with a key it
// would clash with or alias ("" if none): model.ValidBlobKey refuses them.
func BadBlobKeys(root string) []string {
	return []string{
		"",
		root + "a",            // a directory name as an object: `a` vs `a/b.c`
		root + "a.x/b.c",      // an object name as a directory
		root + "a//b.c",       // aliases a/b.c
		root + "a/./b.c",      // aliases a/b.c
		root + "c/../a/b.c",   // aliases a/b.c
		root + "../escaped.b", // outside the bucket
		"/" + root + "abs.b",  // absolute
		root + "a/",           // a directory
		root + "a\\b.c",       // a separator elsewhere
		root + "nul\x00.b",    // NUL
		root + strings.Repeat("n", model.MaxBlobSegmentBytes) + ".b",
	}
}

// blobBadKeys: every operation on a key that is not flat on every backend
// (BadBlobKeys) is refused with ErrInvalid and changes nothing, as is a list
// whose prefix has a bad directory segment; a good key next to them works.
func blobBadKeys(s BlobService, root string) error {
	good := root + "a/b.c"
	if err := bput(s, good, []byte("good")); err != nil {
		return err
	}
	for _, k := range BadBlobKeys(root) {
		for _, kind := range []model.BlobOpKind{model.BlobPut, model.BlobGet, model.BlobExists, model.BlobDelete} {
			if _, err := bdo(s, model.BlobRequest{Kind: kind, Key: k, Data: []byte("bad")}, model.ErrInvalid); err != nil {
				return errf("key %q: %v", k, err)
			}
		}
	}
	for _, p := range []string{root + "../", root + "a//", root + "./", "/" + root} {
		if _, err := bdo(s, model.BlobRequest{Kind: model.BlobList, Key: p}, model.ErrInvalid); err != nil {
			return errf("list prefix %q: %v", p, err)
		}
	}
	if err := wantBlob(s, good, []byte("good")); err != nil {
		return errf("after the refused requests: %v", err)
	}
	got, err := blist(s, root)
	if err != nil {
		return err
	}
	return wantKeys("list after the refused requests", got, []string{good})
}

// blobLostPut: a put (first, then over an existing object) whose request or
// answer was lost: afterwards the key holds either the whole old object (or
// nothing) or the whole new one, never a mix, and a retry lands it.
func blobLostPut(s BlobService, root string) error {
	k := root + "snap/lost.b"
	var old []byte
	landed := map[bool]int{}
	for i := range 4 {
		data := bytes.Repeat([]byte{byte('a' + i)}, 4096+i)
		s.DoLost(model.BlobRequest{Kind: model.BlobPut, Key: k, Data: data})
		r, se, err := s.Do(model.BlobRequest{Kind: model.BlobGet, Key: k})
		if err != nil {
			return errf("attempt %d: get: unknown outcome: %v", i, err)
		}
		switch {
		case se == model.ErrNone && bytes.Equal(r.Data, data):
			landed[true]++
		case se == model.ErrNotFound && old == nil, se == model.ErrNone && old != nil && bytes.Equal(r.Data, old):
			landed[false]++
		default:
			return errf("attempt %d: after a lost put the key holds %d bytes (%v), neither the old object nor the new", i, len(r.Data), se)
		}
		if err := bput(s, k, data); err != nil {
			return errf("attempt %d: retry: %v", i, err)
		}
		if err := wantBlob(s, k, data); err != nil {
			return errf("attempt %d: after the retry: %v", i, err)
		}
		old = data
	}
	if landed[true] == 0 || landed[false] == 0 {
		return errf("the adapter's DoLost never exercised both outcomes (landed: %d, not landed: %d)", landed[true], landed[false])
	}
	return nil
}
