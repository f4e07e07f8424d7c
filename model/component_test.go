package model

import "testing"

// probe is a component defined only in this test: it proves that a new
// protocol registers with the host, gets its own tags and timers back from the
// router, sees the lifecycle hooks, and takes its own messages, without an
// edit of the host or of another component.
type probe struct {
	noHooks
	t        *Territory
	id       compID
	became   []SubgraphID
	results  []uint8
	timers   []uint8
	messages int
}

const (
	probeRead  uint8 = iota // a coordination read of the subgraph's route
	probeTimer              // a timer
)

func (k *probe) operationalHook(p *primary) {
	k.became = append(k.became, p.sg)
	k.t.coord(scoped(k.id, probeRead, p), CoordRequest{Kind: CoordGet, Key: RouteKey(p.sg)})
	k.t.afterMs(scoped(k.id, probeTimer, p), 5)
}

func (k *probe) operational(p *primary, _ bool)         { k.operationalHook(p) }
func (k *probe) onResult(_ *primary, c call, _ *result) { k.results = append(k.results, c.tag) }
func (k *probe) onTimer(_ *primary, c call)             { k.timers = append(k.timers, c.tag) }
func (k *probe) message(_ HostID, m *Message) bool      { k.messages++; return m.Recovered != nil }

func TestATestOnlyComponentRegistersAndGetsItsOwnResults(t *testing.T) {
	tr, err := NewTerritory(DefaultTerritoryConfig(7, 1))
	if err != nil {
		t.Fatal(err)
	}
	k := &probe{t: tr}
	k.id = tr.register(k)
	out := &Outbox{}
	tr.Step(0, Start{}, out)
	boot := effects[CoordCall](out)[0]
	out.Reset()
	tr.Step(1, CoordResult{ReqID: boot.ReqID, Resp: CoordResponse{KVs: routesKVs(1, 7, 0)}}, out)
	claim := effects[CoordCall](out)[0]
	out.Reset()
	tr.Step(2, CoordResult{ReqID: claim.ReqID, Resp: CoordResponse{Succeeded: true, Revision: 5}}, out)
	load := effects[CoordCall](out)[0]
	out.Reset()
	tr.Step(2, CoordResult{ReqID: load.ReqID}, out)
	open := effects[LogCall](out)[0]
	out.Reset()
	tr.Step(3, LogResult{ReqID: open.ReqID, Resp: LogResponse{TailLSN: 0}}, out)
	if len(k.became) != 1 || k.became[0] != 0 {
		t.Fatalf("the component did not see the subgraph become operational: %v", k.became)
	}
	var read, timer uint64
	for _, c := range effects[CoordCall](out) {
		if c.Req.Kind == CoordGet {
			read = c.ReqID
		}
	}
	for _, s := range effects[SetTimer](out) {
		if c := tr.pending[s.ID]; c.comp == k.id {
			timer = s.ID
		}
	}
	if read == 0 || timer == 0 {
		t.Fatalf("the component's call and timer were not routed: %v", out.Effects)
	}
	tr.Step(4, CoordResult{ReqID: read}, &Outbox{})
	tr.Step(5, TimerFired{ID: timer}, &Outbox{})
	tr.Step(6, CoordResult{ReqID: read}, &Outbox{}) // a duplicate is dropped by the router
	if len(k.results) != 1 || k.results[0] != probeRead || len(k.timers) != 1 || k.timers[0] != probeTimer {
		t.Fatalf("results %v timers %v, want one of each with the component's own tags", k.results, k.timers)
	}
	// A message no built-in component takes reaches the new one.
	tr.Step(7, MessageIn{From: 9, Msg: &Message{Recovered: &Recovered{Territory: 9}}}, &Outbox{})
	if k.messages != 1 {
		t.Fatalf("the component saw %d messages, want 1", k.messages)
	}
}

func TestRouterDropsResultsOfAnOlderClaim(t *testing.T) {
	tr, out := bootTerritory(t)
	out.Reset()
	tr.Step(4, MessageIn{From: 50, Msg: &Message{Request: &Request{ID: EventUUID{9, 1}, Op: OpCreateNeuron, Neuron: 5}}}, out)
	app := effects[LogCall](out)[0]
	c := tr.pending[app.ReqID]
	if c.comp != tr.writes.id || c.tag != writeAppend || !c.scoped {
		t.Fatalf("the append is routed as %+v", c)
	}
	// An LSN conflict re-claims: a new generation, and the old append's
	// duplicate result belongs to nobody.
	tr.Step(5, LogResult{ReqID: app.ReqID, Outcome: OutcomeFailed, Err: ErrLSNConflict}, &Outbox{})
	tr.pending[app.ReqID] = c // as if the driver delivered it again
	o := &Outbox{}
	tr.Step(6, LogResult{ReqID: app.ReqID, Resp: LogResponse{LSN: 2, TailLSN: 2}}, o)
	if len(o.Effects) != 0 {
		t.Fatalf("a result of the previous claim was delivered: %v", o.Effects)
	}
}
