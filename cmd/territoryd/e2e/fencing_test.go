//go:build integration

package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"territory/model"
)

// routeOf reads a subgraph's route from etcd.
func routeOf(t testing.TB, c *cluster, sg model.SubgraphID) model.Route {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, se, err := c.coord().Do(ctx, model.CoordRequest{Kind: model.CoordGet, Key: model.RouteKey(sg)})
	if err != nil || se != model.ErrNone || len(r.KVs) != 1 {
		t.Fatalf("route of subgraph %d: %v %v %+v", sg, se, err, r.KVs)
	}
	route, err := model.ParseRoute(r.KVs[0])
	if err != nil {
		t.Fatal(err)
	}
	return route
}

// TestFencingPausedPrimary: two territory hosts; the primary of subgraph 0 is
// frozen (SIGSTOP) while clients write to it. The manager finds it lost and
// moves the subgraph to the other host, which claims a higher epoch and opens
// the Pulsar stream, fencing the old writer. The old host then resumes cut
// off from etcd (its etcd goes through a proxy that the test cuts), so it
// cannot learn from the routes that it was deposed, and it still reaches
// Pulsar: with client writes queued and heartbeats due, it appends at its old
// epoch and must be fenced by the log. It acknowledges nothing more: it steps
// down ("fenced by a newer writer"), every commit it reports is an entry of
// its epoch in the log, no data message of the old epoch follows the new
// epoch's open in the topic, and every acknowledged write is in the log.
func TestFencingPausedPrimary(t *testing.T) {
	c := newCluster(t, clusterOpts{subgraphs: 2, runs: [][]uint32{{1}, {2}}, logLevel: "debug"})
	etcdProxy := newProxy(t, strings.TrimPrefix(c.endpoints[0], "http://"))
	c.runEtcd = map[int][]string{0: {"http://" + etcdProxy.Addr()}}
	mgr := c.startManager()
	runs := c.startRuns()
	a, b := runs[0], runs[1] // territory 1: subgraph 0; territory 2: subgraph 1
	cl := dial(t, c.runAddrs[1])
	led := newLedger()
	sg0 := neuronsIn(0, c.opts.subgraphs, 3, 1)
	sg1 := neuronsIn(1, c.opts.subgraphs, 1, 1)
	for _, n := range append(append([]model.NeuronID{}, sg0...), sg1...) {
		mustDo(t, cl, model.Request{Op: model.OpCreateNeuron, Neuron: n})
	}
	before := routeOf(t, c, 0)
	if before.Primary != 1 {
		t.Fatalf("subgraph 0 starts on territory %d", before.Primary)
	}
	stim := startStimulators(cl, led, [][]model.NeuronID{sg0[:1], sg0[1:2], sg0[2:], sg1}, 6*time.Second)
	waitAcked(t, led, 60, 30*time.Second)

	a.signal(syscall.SIGSTOP)
	pausedAt := time.Now()
	// Cut the old host's etcd now, not when it resumes: its route cache is
	// fed by a watch, and a watch event for the move, forwarded by the proxy
	// while the process was stopped, would sit in its socket buffer and tell
	// it about the move on waking, before its first append reached the log
	// (CI saw exactly that: "route names territory 2").
	etcdProxy.cut()
	var after model.Route
	for {
		after = routeOf(t, c, 0)
		if after.Primary == 2 {
			break
		}
		if time.Since(pausedAt) > 40*time.Second {
			t.Fatalf("subgraph 0 still routed to territory %d 40s after its host froze", after.Primary)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ops := b.waitOperational(30*time.Second, 0, 1)
	movedAt := time.Now()
	newEpoch := uint64(num(ops[0], "epoch"))
	ackedAtMove, _ := led.counts()
	waitAcked(t, led, ackedAtMove+40, 30*time.Second)
	t.Logf("subgraph 0 moved to territory 2 (epoch %d -> %d) %v after the freeze; writes resumed",
		before.Epoch, newEpoch, movedAt.Sub(pausedAt).Round(time.Millisecond))

	// The old primary wakes up, unable to reach etcd, with client requests
	// and its own timers queued.
	a.signal(syscall.SIGCONT)
	var why string
	a.waitRecords(30*time.Second, "step-down of subgraph 0", func(rs []map[string]any) bool {
		for _, r := range rs {
			if str(r, "msg") == "stepped down" && num(r, "subgraph") == 0 {
				why = str(r, "why")
				return true
			}
		}
		return false
	})
	t.Logf("old primary stepped down from subgraph 0: %s", why)
	if why != "fenced by a newer writer" {
		t.Errorf("the old primary stepped down because %q, not because the log fenced it", why)
	}
	etcdProxy.heal()
	time.Sleep(time.Second)
	if err := stim.halt(); err != nil {
		t.Fatal(err)
	}
	acked, unknown := led.counts()
	t.Logf("%d writes acknowledged, %d with an unknown outcome", acked, unknown)

	// The topic of subgraph 0, message by message: after open(E), no data
	// message of an epoch below E.
	l := c.openLog()
	msgs := scanTopic(t, c.svc.PulsarURL, l.Topic(0))
	var maxOpen uint64
	opens := 0
	for i, m := range msgs {
		switch m.Kind {
		case "open":
			maxOpen = max(maxOpen, m.Epoch)
			opens++
		case "data":
			if m.Epoch < maxOpen {
				t.Errorf("topic message %d: data at epoch %d (lsn %d) after open(%d)", i, m.Epoch, m.LSN, maxOpen)
			}
		}
	}
	if opens < 2 || maxOpen != newEpoch {
		t.Errorf("topic of subgraph 0: %d opens, highest %d; the new primary's epoch %d", opens, maxOpen, newEpoch)
	}
	logs := checkAckedInLog(t, c, led, []model.SubgraphID{0, 1})
	// Every commit the old primary reported is an entry of its epoch.
	commits := 0
	for _, r := range a.records() {
		if str(r, "msg") != "committed" || num(r, "subgraph") != 0 {
			continue
		}
		commits++
		lsn, epoch := num(r, "lsn"), uint64(num(r, "epoch"))
		if lsn < 1 || int(lsn) > len(logs[0]) || logs[0][lsn-1].WriterEpoch != epoch || logs[0][lsn-1].Type.String() != str(r, "type") {
			t.Errorf("the old primary reported lsn %d committed at epoch %d (%s); the log disagrees", lsn, epoch, str(r, "type"))
		}
	}
	if commits == 0 {
		t.Error("no commit facts in the old primary's debug log")
	}
	var last uint64
	for _, ev := range logs[0] {
		if ev.WriterEpoch < last {
			t.Errorf("subgraph 0: lsn %d written at epoch %d after epoch %d", ev.LSN, ev.WriterEpoch, last)
		}
		last = ev.WriterEpoch
	}
	t.Logf("subgraph 0: %d topic messages, %d opens, %d entries, last at epoch %d", len(msgs), opens, len(logs[0]), last)

	// Both hosts still answer; subgraph 0 is served by territory 2.
	r := readNeuron(t, dial(t, c.runAddrs[0]), sg0[0])
	if !r.Exists {
		t.Errorf("neuron %d gone", sg0[0])
	}
	if out, code := clientCLI(t, c.runAddrs[0], "stimulate", fmt.Sprint(sg0[0]), "1"); code != 0 {
		t.Errorf("stimulate after the move: exit %d %q", code, out)
	}
	a.term()
	b.term()
	mgr.term()
}
