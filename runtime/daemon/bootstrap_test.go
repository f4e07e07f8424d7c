package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"territory/model"
	"territory/runtime/etcdcoord"
	"territory/runtime/etcdembed"
)

func embeddedCoord(t *testing.T) *etcdcoord.Coord {
	t.Helper()
	m := etcdembed.StartTest(t)
	c, err := etcdcoord.Dial(etcdcoord.Config{Endpoints: []string{m.Client}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func routes(t *testing.T, ctx context.Context, c *etcdcoord.Coord) []model.Route {
	t.Helper()
	r, se, err := c.Do(ctx, model.CoordRequest{Kind: model.CoordRange, Key: model.RoutesPrefix})
	if err != nil || se != model.ErrNone {
		t.Fatal(se, err)
	}
	var out []model.Route
	for _, kv := range r.KVs {
		rt, err := model.ParseRoute(kv)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rt)
	}
	return out
}

// TestBootstrapManySubgraphs: on real etcd (embedded), with its default
// limit of 128 operations per transaction, a cluster of 300 subgraphs is
// created; an interrupted bootstrap is finished by the next one, which
// carries out the stored plan (not its own territories); a bootstrap of an
// existing cluster changes nothing and a different subgraph count is refused.
func TestBootstrapManySubgraphs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := embeddedCoord(t)
	const n = 300
	policy := model.DefaultPolicy()

	// An interrupted bootstrap: the plan and the first chunk of routes only.
	plan, err := model.NewBootstrapPlan(n, []model.HostID{1, 2, 3}, policy)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range plan.Txns()[:2] {
		if r, se, err := c.Do(ctx, req); err != nil || se != model.ErrNone || !r.Succeeded {
			t.Fatalf("partial bootstrap: %+v %v %v", r, se, err)
		}
	}
	if _, found, err := ReadPolicy(ctx, c); err != nil || found {
		t.Fatalf("policy before the bootstrap finished: found %v err %v", found, err)
	}

	// Another bootstrapper, configured with other territories, finishes it.
	created, got, err := Bootstrap(ctx, c, n, []model.HostID{7}, policy)
	if err != nil || created || got != policy {
		t.Fatalf("resumed bootstrap: created %v policy %+v err %v", created, got, err)
	}
	rs := routes(t, ctx, c)
	if len(rs) != n {
		t.Fatalf("%d routes, want %d", len(rs), n)
	}
	for i, rt := range rs {
		if rt.Subgraph != model.SubgraphID(i) || rt.Primary != model.HostID(i%3+1) || rt.Epoch != 0 {
			t.Fatalf("route %d: %+v (want the stored plan's primary %d)", i, rt, i%3+1)
		}
	}

	// Again: nothing changes.
	before, _, _ := c.Do(ctx, model.CoordRequest{Kind: model.CoordGet, Key: model.PolicyKey})
	if created, _, err := Bootstrap(ctx, c, n, []model.HostID{1}, policy); err != nil || created {
		t.Fatalf("second bootstrap: created %v err %v", created, err)
	}
	after, _, _ := c.Do(ctx, model.CoordRequest{Kind: model.CoordGet, Key: model.PolicyKey})
	if before.Revision != after.Revision {
		t.Fatalf("a bootstrap of an existing cluster wrote: revision %d -> %d", before.Revision, after.Revision)
	}
	if _, _, err := Bootstrap(ctx, c, n+1, []model.HostID{1}, policy); !errors.Is(err, ErrSubgraphCount) {
		t.Fatalf("other subgraph count: %v", err)
	}
}

// TestBootstrapFresh: a fresh bootstrap of 300 subgraphs reports that it
// created the cluster.
func TestBootstrapFresh(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := embeddedCoord(t)
	created, _, err := Bootstrap(ctx, c, 300, []model.HostID{1, 2}, model.DefaultPolicy())
	if err != nil || !created {
		t.Fatalf("created %v err %v", created, err)
	}
	if rs := routes(t, ctx, c); len(rs) != 300 || rs[299].Primary != 2 {
		t.Fatalf("%d routes", len(rs))
	}
	if _, _, err := Bootstrap(ctx, c, model.MaxSubgraphs+1, []model.HostID{1}, model.DefaultPolicy()); err == nil {
		t.Fatal("a bootstrap beyond model.MaxSubgraphs was accepted")
	}
}
