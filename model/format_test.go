package model

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestSprintfMatchesFmt(t *testing.T) {
	cases := []struct {
		format string
		args   []any
	}{
		{"a %d b %s c %q", []any{42, "x", "y"}},
		{"%05d|%016x|%x", []any{7, uint64(0xbeef), uint32(255)}},
		{"%v and %s", []any{OpStimulate, StatusBusy}},
		{"neg %d, bool %v", []any{int64(-3), true}},
		{"100%% sure", nil},
		{"sg %05d host %d neuron n%d kind %d", []any{SubgraphID(12), HostID(3), NeuronID(77), claimOpen}},
	}
	for _, c := range cases {
		if got, want := sprintf(c.format, c.args...), fmt.Sprintf(c.format, c.args...); got != want {
			t.Errorf("sprintf(%q) = %q, fmt says %q", c.format, got, want)
		}
	}
}

func TestErrorfWraps(t *testing.T) {
	base := errors.New("base")
	err := errorf("context %d: %w", 3, base)
	if !errors.Is(err, base) || err.Error() != "context 3: base" {
		t.Fatalf("errorf: %v (is=%v)", err, errors.Is(err, base))
	}
	if errors.Is(errorf("no wrap %v", base), base) {
		t.Fatal("the v verb must not wrap")
	}
}

func TestStringHelpers(t *testing.T) {
	if got := fields("  a b\t c  "); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("fields: %q", got)
	}
	if b, a, ok := cut("k=v=w", '='); !ok || b != "k" || a != "v=w" {
		t.Fatalf("cut: %q %q %v", b, a, ok)
	}
	if r, ok := cutPrefix("routes/x", "routes/"); !ok || r != "x" {
		t.Fatalf("cutPrefix: %q %v", r, ok)
	}
}

func TestRouteKeyFormatsTheSubgraph(t *testing.T) {
	if got := RouteKey(12); got != "routes/subgraphs/00012" {
		t.Fatalf("RouteKey(12) = %q", got)
	}
	sg, err := ParseRouteKey(RouteKey(4095))
	if err != nil || sg != 4095 {
		t.Fatalf("ParseRouteKey round trip: %d %v", sg, err)
	}
}
