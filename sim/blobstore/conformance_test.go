package blobstore

import (
	"slices"
	"testing"

	"territory/conformance"
	"territory/model"
)

// simBlob runs the blob suite on the simulated store (a pure map: requests
// apply at once; the world adds latency and errors around it).
type simBlob struct {
	s    *Store
	lose conformance.Alternate
}

func (b *simBlob) Do(req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error) {
	r, se := b.s.Apply(req)
	return r, se, nil
}

func (b *simBlob) DoLost(req model.BlobRequest) {
	if b.lose.AnswerLost() {
		b.s.Apply(req)
	}
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.BlobCases(), nil, func(*testing.T) conformance.BlobService { return &simBlob{s: New()} })
}

// ---- planted violations: each broken store must fail the named cases ----

type brokenBlob struct {
	simBlob
	do   func(b *simBlob, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error)
	lost func(b *simBlob, req model.BlobRequest)
}

func (b *brokenBlob) Do(req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error) {
	return b.do(&b.simBlob, req)
}

func (b *brokenBlob) DoLost(req model.BlobRequest) {
	if b.lost != nil {
		b.lost(&b.simBlob, req)
		return
	}
	if b.lose.AnswerLost() {
		b.do(&b.simBlob, req)
	}
}

func TestConformancePlanted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cases []string
		do    func(b *simBlob, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error)
		lost  func(b *simBlob, req model.BlobRequest)
	}{
		{name: "get of a missing object answers empty data", cases: []string{"get-missing", "delete"},
			do: func(b *simBlob, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error) {
				r, se, err := b.Do(req)
				if se == model.ErrNotFound && req.Kind == model.BlobGet {
					return model.BlobResponse{}, model.ErrNone, err
				}
				return r, se, err
			}},
		{name: "list matches whole path segments only", cases: []string{"list-prefix"},
			do: func(b *simBlob, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error) {
				r, se, err := b.Do(req)
				if req.Kind == model.BlobList {
					r.Keys = slices.DeleteFunc(r.Keys, func(k string) bool {
						rest := k[len(req.Key):]
						return len(rest) > 0 && req.Key[len(req.Key)-1] != '/' && rest[0] != '/'
					})
				}
				return r, se, err
			}},
		{name: "list unsorted", cases: []string{"list-prefix"},
			do: func(b *simBlob, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error) {
				r, se, err := b.Do(req)
				slices.Reverse(r.Keys)
				return r, se, err
			}},
		{name: "delete of a missing object fails", cases: []string{"delete"},
			do: func(b *simBlob, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error) {
				if _, ok := b.s.Object(req.Key); req.Kind == model.BlobDelete && !ok {
					return model.BlobResponse{}, model.ErrNotFound, nil
				}
				return b.Do(req)
			}},
		{name: "put aliases the caller's buffer", cases: []string{"put-get-exists"},
			do: func(b *simBlob, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error) {
				r, se, err := b.Do(req)
				if req.Kind == model.BlobPut && len(req.Data) > 0 && se == model.ErrNone {
					b.s.objects[req.Key] = req.Data
				}
				return r, se, err
			}},
		{name: "overwrite keeps the old tail", cases: []string{"overwrite"},
			do: func(b *simBlob, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error) {
				if old, ok := b.s.Object(req.Key); req.Kind == model.BlobPut && ok && len(old) > len(req.Data) {
					req.Data = append(slices.Clone(req.Data), old[len(req.Data):]...)
				}
				return b.Do(req)
			}},
		{name: "a lost put lands torn", cases: []string{"lost-put"},
			lost: func(b *simBlob, req model.BlobRequest) {
				req.Data = req.Data[:len(req.Data)/2]
				b.Do(req)
			}},
		{name: "bad keys accepted", cases: []string{"bad-keys"},
			do: func(b *simBlob, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error) {
				if req.Kind == model.BlobPut && model.ValidBlobKey(req.Key) != nil {
					b.s.objects[req.Key] = req.Data
					return model.BlobResponse{}, model.ErrNone, nil
				}
				return b.Do(req)
			}},
		{name: "exists always true", cases: []string{"get-missing", "delete"},
			do: func(b *simBlob, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error) {
				r, se, err := b.Do(req)
				if req.Kind == model.BlobExists {
					r.Exists = true
				}
				return r, se, err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range tc.cases {
				do := tc.do
				if do == nil {
					do = func(b *simBlob, req model.BlobRequest) (model.BlobResponse, model.ServiceErr, error) {
						return b.Do(req)
					}
				}
				svc := &brokenBlob{simBlob: simBlob{s: New()}, do: do, lost: tc.lost}
				if err := conformance.Find(conformance.BlobCases(), name).Run(svc, "planted/"); err == nil {
					t.Errorf("case %s passed a store whose %s", name, tc.name)
				} else {
					t.Logf("case %s caught it: %v", name, err)
				}
			}
		})
	}
}
