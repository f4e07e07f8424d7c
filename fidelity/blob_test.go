package fidelity

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"territory/conformance"
	"territory/model"
	"territory/runtime/blob"
	"territory/sim/blobstore"
)

type blobOut struct {
	Err     model.ServiceErr
	Unknown string
	Data    string
	Exists  bool
	Keys    []string
}

// blobGen draws object-store calls: put, get, exists, delete and list on
// keys of the core's shape, and on the keys no backend may accept
// (conformance.BadBlobKeys: clashes, aliases, escapes).
type blobGen struct {
	r    *rand.Rand
	bad  []string
	good []string
}

func newBlobGen(seed uint64) *blobGen {
	return &blobGen{r: rand.New(rand.NewPCG(seed, 0xb10b)), bad: conformance.BadBlobKeys("s/"),
		good: []string{"s/a/b.c", "s/a/d.c", "s/00001/x.snap", "s/00001/y.snap", "s/00002/x.snap", "t.c", "s/ab.c"}}
}

func (g *blobGen) key() string {
	if g.r.IntN(5) == 0 {
		return g.bad[g.r.IntN(len(g.bad))]
	}
	return g.good[g.r.IntN(len(g.good))]
}

func (g *blobGen) next() model.BlobRequest {
	switch p := g.r.IntN(100); {
	case p < 35:
		return model.BlobRequest{Kind: model.BlobPut, Key: g.key(), Data: []byte(fmt.Sprintf("d%d", g.r.IntN(100)))}
	case p < 55:
		return model.BlobRequest{Kind: model.BlobGet, Key: g.key()}
	case p < 65:
		return model.BlobRequest{Kind: model.BlobExists, Key: g.key()}
	case p < 80:
		return model.BlobRequest{Kind: model.BlobDelete, Key: g.key()}
	}
	prefixes := []string{"", "s", "s/", "s/a", "s/a/", "s/0000", "s/00001/", "s/00001/x", "q/", "s/../", "s//", "./s/", "/s/", "s/a.x/"}
	return model.BlobRequest{Kind: model.BlobList, Key: prefixes[g.r.IntN(len(prefixes))]}
}

var blobKindNames = map[model.BlobOpKind]string{model.BlobPut: "put", model.BlobGet: "get", model.BlobExists: "exists", model.BlobDelete: "delete", model.BlobList: "list"}

// TestBlobFidelity: seeded random sequences of object-store calls against a
// fresh simulated store and a fresh filesystem bucket (runtime/blob on
// objstore's FILESYSTEM provider): every answer, errors included, must agree.
func TestBlobFidelity(t *testing.T) {
	n, ops := sequences(40, 1000), 60
	tally := map[string][2]int{}
	var diffs []string
	for seed := range uint64(n) {
		sim := blobstore.New()
		fs, err := blob.Open(context.Background(), blob.FilesystemConfig(t.TempDir()), nil)
		if err != nil {
			t.Fatal(err)
		}
		g := newBlobGen(seed)
		for i := range ops {
			req := g.next()
			r1, se1 := sim.Apply(req)
			r2, se2, err2 := fs.Do(context.Background(), req)
			oa := blobOut{Err: se1, Data: string(r1.Data), Exists: r1.Exists, Keys: slices.Clone(r1.Keys)}
			ob := blobOut{Err: se2, Data: string(r2.Data), Exists: r2.Exists, Keys: slices.Clone(r2.Keys)}
			if err2 != nil {
				ob = blobOut{Unknown: err2.Error()}
			}
			c := blobKindNames[req.Kind]
			if se1 == model.ErrInvalid {
				c += "/invalid"
			} else if se1 != model.ErrNone {
				c += "/" + se1.String()
			}
			cnt := tally[c]
			cnt[1]++
			if reflect.DeepEqual(oa, ob) {
				cnt[0]++
			} else {
				diffs = append(diffs, fmt.Sprintf("seed %d op %d %s %q:\n  sim %+v\n  fs  %+v", seed, i, c, req.Key, oa, ob))
			}
			tally[c] = cnt
		}
		fs.Close()
		if len(diffs) > 10 {
			break
		}
	}
	report(t, "object store vs filesystem bucket", tally, diffs)
}
