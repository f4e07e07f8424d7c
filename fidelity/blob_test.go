package fidelity

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

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
	runBlobFidelity(t, "blob-filesystem", "object store vs filesystem bucket", sequences(40, 1000), 1, func(uint64) *blob.Store {
		fs, err := blob.Open(context.Background(), blob.FilesystemConfig(t.TempDir()), nil)
		if err != nil {
			t.Fatal(err)
		}
		return fs
	})
}

// runBlobFidelity runs n sequences of 60 calls, workers at a time, each
// against a fresh simulated store and the store open(seed) returns (empty:
// a fresh bucket or a fresh prefix of one), and reports the agreement.
func runBlobFidelity(t *testing.T, service, what string, n, workers int, open func(seed uint64) *blob.Store) {
	const ops = 60
	start := time.Now()
	var (
		mu    sync.Mutex
		all   = tally{}
		diffs []string
		seeds = make(chan uint64)
		wg    sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range seeds {
				tl, d := runBlobSequence(seed, ops, open(seed))
				mu.Lock()
				all.merge(tl)
				diffs = append(diffs, d...)
				mu.Unlock()
			}
		}()
	}
	for seed := range uint64(n) {
		mu.Lock()
		stop := len(diffs) > 10
		mu.Unlock()
		if stop {
			break
		}
		seeds <- seed
	}
	close(seeds)
	wg.Wait()
	report(t, service, what, n, time.Since(start), all, diffs)
}

func runBlobSequence(seed uint64, ops int, real *blob.Store) (tally, []string) {
	defer real.Close()
	sim := blobstore.New()
	tl := tally{}
	var diffs []string
	g := newBlobGen(seed)
	for i := range ops {
		req := g.next()
		r1, se1 := sim.Apply(req)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r2, se2, err2 := real.Do(ctx, req)
		cancel()
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
		same := reflect.DeepEqual(oa, ob)
		tl.add(c, same, false)
		if !same {
			diffs = append(diffs, fmt.Sprintf("seed %d op %d %s %q:\n  sim  %+v\n  real %+v", seed, i, c, req.Key, oa, ob))
		}
	}
	return tl, diffs
}
