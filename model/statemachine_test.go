package model

import (
	"testing"
)

type seqRand struct{ v uint64 }

func (r *seqRand) Uint64() uint64 { r.v += 7919; return r.v }

func effects[T Effect](out *Outbox) []T {
	var got []T
	for _, e := range out.Effects {
		if x, ok := e.(T); ok {
			got = append(got, x)
		}
	}
	return got
}

func routesKVs(n uint32, primary HostID, epoch uint64) []KV {
	var kvs []KV
	for i := uint32(0); i < n; i++ {
		kvs = append(kvs, KV{Key: RouteKey(SubgraphID(i)), Value: EncodeRoute(primary, epoch), ModRevision: int64(i + 1)})
	}
	return kvs
}

func newTestClient(t *testing.T) (*Client, *Outbox) {
	t.Helper()
	cfg := DefaultClientConfig(50, 9, 4)
	cfg.WatchRoutes = true // these tests follow the watch path
	c, err := NewClient(cfg, &seqRand{})
	if err != nil {
		t.Fatal(err)
	}
	out := &Outbox{}
	c.Step(0, Start{}, out)
	calls := effects[CoordCall](out)
	if len(calls) != 2 || calls[0].Req.Kind != CoordRange || calls[1].Req.Kind != CoordWatch {
		t.Fatalf("start must read and watch the routes: %v", out.Effects)
	}
	out.Reset()
	c.Step(1, CoordResult{ReqID: calls[0].ReqID, Resp: CoordResponse{KVs: routesKVs(4, 7, 1)}}, out)
	c.Step(1, CoordResult{ReqID: calls[1].ReqID}, out)
	return c, out
}

func TestClientRetriesWithTheSameUUIDThenGivesUpAsUnknown(t *testing.T) {
	c, out := newTestClient(t)
	req := Request{ID: c.NewID(), Op: OpStimulate, Neuron: 3, Value: 1}
	out.Reset()
	c.Step(10, Submit{Req: req}, out)
	sends := effects[Send](out)
	if len(sends) != 1 || sends[0].To != 7 || sends[0].Msg.Request.ID != req.ID {
		t.Fatalf("first attempt: %v", out.Effects)
	}
	now := int64(10)
	attempts := 1
	for i := 0; i < 100 && c.InFlight() > 0; i++ {
		timers := effects[SetTimer](out)
		if len(timers) == 0 {
			t.Fatalf("no timer pending after %v", out.Effects)
		}
		tm := timers[len(timers)-1]
		now += tm.AfterMs
		out.Reset()
		c.Step(now, TimerFired{ID: tm.ID}, out)
		for _, call := range effects[CoordCall](out) {
			out2 := &Outbox{}
			c.Step(now, CoordResult{ReqID: call.ReqID, Outcome: OutcomeTimeout}, out2)
			out.Effects = append(out.Effects, out2.Effects...)
		}
		for _, s := range effects[Send](out) {
			if s.Msg.Request.ID != req.ID {
				t.Fatalf("a retry changed the event_uuid: %s", s.Msg.Request.ID)
			}
			attempts++
		}
	}
	done := effects[Observe](out)
	if len(done) != 1 {
		t.Fatalf("operation never finished: %v", out.Effects)
	}
	f := done[0].Fact.(FactOpDone)
	if !f.Unknown || f.Request.ID != req.ID {
		t.Fatalf("a write that timed out must end unknown: %+v", f)
	}
	if attempts < 3 || now < 5000 {
		t.Fatalf("gave up too early: %d attempts by %dms", attempts, now)
	}
}

func TestClientBackoffIsCappedAndJittered(t *testing.T) {
	c, _ := newTestClient(t)
	seen := map[int64]bool{}
	for tries := 0; tries < 40; tries++ {
		d := c.jitteredBackoffMs(tries)
		b := backoffMs(c.cfg.BackoffBaseMs, c.cfg.BackoffCapMs, tries)
		if d < b/2 || d > b {
			t.Fatalf("backoff %d outside [%d, %d] at try %d", d, b/2, b, tries)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatalf("backoff barely varies: %v", seen)
	}
	if backoffMs(10, 400, 63) != 400 {
		t.Fatal("backoff not capped for large attempt counts")
	}
}

func TestClientFinalAnswerEndsTheOperation(t *testing.T) {
	c, out := newTestClient(t)
	req := Request{ID: c.NewID(), Op: OpCreateNeuron, Neuron: 3}
	c.Step(10, Submit{Req: req}, out)
	out.Reset()
	c.Step(12, MessageIn{From: 7, Msg: &Message{Reply: &Reply{ID: req.ID, Result: Result{Status: StatusWrongTerritory}}}}, out)
	if c.InFlight() != 1 || len(effects[CoordCall](out)) != 1 {
		t.Fatalf("wrong territory must refresh routes and retry: %v", out.Effects)
	}
	out.Reset()
	c.Step(13, MessageIn{From: 7, Msg: &Message{Reply: &Reply{ID: req.ID, Result: Result{Status: StatusAlreadyExists}}}}, out)
	done := effects[Observe](out)
	if len(done) != 1 || done[0].Fact.(FactOpDone).Result.Status != StatusAlreadyExists || c.InFlight() != 0 {
		t.Fatalf("final answer: %v", out.Effects)
	}
}

// bootTerritory drives a territory through claim, open and an empty replay of
// subgraph 0 (of 1), returning it operational at epoch 1.
func bootTerritory(t *testing.T) (*Territory, *Outbox) {
	t.Helper()
	tr, err := NewTerritory(DefaultTerritoryConfig(7, 1))
	if err != nil {
		t.Fatal(err)
	}
	out := &Outbox{}
	tr.Step(0, Start{}, out)
	boot := effects[CoordCall](out)[0]
	out.Reset()
	tr.Step(1, CoordResult{ReqID: boot.ReqID, Resp: CoordResponse{KVs: routesKVs(1, 7, 0)}}, out)
	claim := effects[CoordCall](out)
	if len(claim) != 1 || claim[0].Req.Kind != CoordTxn || claim[0].Req.Compares[0].ModRevision != 1 {
		t.Fatalf("claim must CAS the route: %v", out.Effects)
	}
	out.Reset()
	tr.Step(2, CoordResult{ReqID: claim[0].ReqID, Resp: CoordResponse{Succeeded: true, Revision: 5}}, out)
	load := effects[CoordCall](out)
	if len(load) != 1 || load[0].Req.Kind != CoordRange || load[0].Req.Key != SnapshotPrefix(0) {
		t.Fatalf("a fresh claim loads the latest snapshot first: %v", out.Effects)
	}
	out.Reset()
	tr.Step(2, CoordResult{ReqID: load[0].ReqID, Resp: CoordResponse{}}, out)
	open := effects[LogCall](out)
	if len(open) != 1 || open[0].Req.Kind != LogOpen || open[0].Req.Epoch != 1 {
		t.Fatalf("open at the claimed epoch: %v", out.Effects)
	}
	out.Reset()
	tr.Step(3, LogResult{ReqID: open[0].ReqID, Resp: LogResponse{TailLSN: 0}}, out)
	if ops := tr.Operational(); len(ops) != 1 {
		t.Fatalf("not operational: %v", out.Effects)
	}
	// A new stream's first event adopts the cluster's policy.
	adopt := effects[LogCall](out)
	if len(adopt) != 1 || adopt[0].Req.Kind != LogAppend || adopt[0].Req.LSN != 1 {
		t.Fatalf("the first append must adopt the policy: %v", out.Effects)
	}
	if ev, err := DecodeEvent(adopt[0].Req.Data); err != nil || ev.Type != EvAdoptPolicy || ev.Policy != tr.cfg.Policy {
		t.Fatalf("policy adoption event: %+v %v", ev, err)
	}
	out.Reset()
	tr.Step(3, LogResult{ReqID: adopt[0].ReqID, Resp: LogResponse{LSN: 1, TailLSN: 1}}, out)
	if st, _ := tr.State(0); st.Policy != tr.cfg.Policy {
		t.Fatalf("policy not adopted: %+v", st.Policy)
	}
	return tr, out
}

func TestTerritoryAcksOnlyAfterCommitAndDedupsRetries(t *testing.T) {
	tr, out := bootTerritory(t)
	req := &Request{ID: EventUUID{9, 1}, Op: OpCreateNeuron, Neuron: 5}
	out.Reset()
	tr.Step(4, MessageIn{From: 50, Msg: &Message{Request: req}}, out)
	if len(effects[Send](out)) != 0 {
		t.Fatal("answered before the log committed")
	}
	appends := effects[LogCall](out)
	if len(appends) != 1 || appends[0].Req.LSN != 2 || appends[0].Req.Epoch != 1 {
		t.Fatalf("append: %v", out.Effects)
	}
	// The append times out (ambiguous): the retry is the same LSN, same bytes.
	out.Reset()
	tr.Step(5, LogResult{ReqID: appends[0].ReqID, Outcome: OutcomeTimeout}, out)
	timers := effects[SetTimer](out)
	out.Reset()
	tr.Step(20, TimerFired{ID: timers[0].ID}, out)
	retry := effects[LogCall](out)
	if len(retry) != 1 || retry[0].Req.LSN != 2 || string(retry[0].Req.Data) != string(appends[0].Req.Data) {
		t.Fatalf("retry must repeat the same append: %v", out.Effects)
	}
	// The client retries meanwhile: no second append, it waits for the first.
	out.Reset()
	tr.Step(21, MessageIn{From: 50, Msg: &Message{Request: req}}, out)
	if len(out.Effects) != 0 {
		t.Fatalf("a duplicate request while in flight: %v", out.Effects)
	}
	out.Reset()
	tr.Step(22, LogResult{ReqID: retry[0].ReqID, Resp: LogResponse{LSN: 2, TailLSN: 2}}, out)
	sends := effects[Send](out)
	if len(sends) != 1 || sends[0].Msg.Reply.Result.Status != StatusOK {
		t.Fatalf("ack after commit: %v", out.Effects)
	}
	// A late retry gets the recorded answer without a new append.
	out.Reset()
	tr.Step(23, MessageIn{From: 50, Msg: &Message{Request: req}}, out)
	if len(effects[LogCall](out)) != 0 || len(effects[Send](out)) != 1 || effects[Send](out)[0].Msg.Reply.Result.Status != StatusOK {
		t.Fatalf("dedup: %v", out.Effects)
	}
}

func TestFencedTerritoryStepsDownAndAcksNothing(t *testing.T) {
	tr, out := bootTerritory(t)
	req := &Request{ID: EventUUID{9, 1}, Op: OpStimulate, Neuron: 5, Value: 1}
	out.Reset()
	tr.Step(4, MessageIn{From: 50, Msg: &Message{Request: req}}, out)
	app := effects[LogCall](out)[0]
	out.Reset()
	tr.Step(5, LogResult{ReqID: app.ReqID, Outcome: OutcomeFailed, Err: ErrFenced}, out)
	sends := effects[Send](out)
	if len(sends) != 1 || sends[0].Msg.Reply.Result.Status != StatusWrongTerritory {
		t.Fatalf("fenced: %v", out.Effects)
	}
	if len(tr.Operational()) != 0 {
		t.Fatal("a fenced territory still serves")
	}
}

func TestReadWaitsForTheBarrierAndChecksTheEpoch(t *testing.T) {
	tr, out := bootTerritory(t)
	read := &Request{ID: EventUUID{9, 2}, Op: OpReadNeuron, Neuron: 5}
	out.Reset()
	tr.Step(4, MessageIn{From: 50, Msg: &Message{Request: read}}, out)
	if len(effects[Send](out)) != 0 {
		t.Fatal("read answered before the barrier")
	}
	barrier := effects[CoordCall](out)[0]
	// The barrier compares only this subgraph's route with the claim's revision.
	if barrier.Req.Kind != CoordTxn || len(barrier.Req.Compares) != 1 || barrier.Req.Compares[0] != (Compare{Key: RouteKey(0), ModRevision: 5}) ||
		len(barrier.Req.Then) != 0 || len(barrier.Req.Else) != 0 {
		t.Fatalf("the barrier must compare the covered route only: %+v", barrier.Req)
	}
	// Someone else claimed the subgraph at epoch 2 meanwhile: the compare
	// fails, and the route is read back with one get.
	out.Reset()
	tr.Step(5, CoordResult{ReqID: barrier.ReqID, Resp: CoordResponse{Succeeded: false}}, out)
	if len(effects[Send](out)) != 0 {
		t.Fatalf("a failed barrier answered the read: %v", out.Effects)
	}
	get := effects[CoordCall](out)
	if len(get) != 1 || get[0].Req.Kind != CoordGet || get[0].Req.Key != RouteKey(0) {
		t.Fatalf("a failed barrier must read the covered route: %v", out.Effects)
	}
	out.Reset()
	tr.Step(6, CoordResult{ReqID: get[0].ReqID, Resp: CoordResponse{KVs: routesKVs(1, 8, 2)}}, out)
	sends := effects[Send](out)
	if len(sends) != 1 || sends[0].Msg.Reply.Result.Status != StatusWrongTerritory || len(tr.Operational()) != 0 {
		t.Fatalf("a deposed primary must not serve the read: %v", out.Effects)
	}
}

func TestClientWatchMovesTheRoute(t *testing.T) {
	c, out := newTestClient(t)
	req := Request{ID: c.NewID(), Op: OpReadNeuron, Neuron: 3}
	sg := SubgraphOf(3, 4)
	c.Step(2, WatchEvent{KV: KV{Key: RouteKey(sg), Value: EncodeRoute(8, 2), ModRevision: 9}}, out)
	out.Reset()
	c.Step(3, Submit{Req: req}, out)
	if s := effects[Send](out); len(s) != 1 || s[0].To != 8 {
		t.Fatalf("the watched route change was not used: %v", out.Effects)
	}
}

// tickOnce fires the territory's periodic tick.
func tickOnce(t *testing.T, tr *Territory, now int64, out *Outbox) {
	t.Helper()
	for id, tm := range tr.pending {
		if tm.comp == hostComp && tm.tag == hostTick {
			out.Reset()
			tr.Step(now, TimerFired{ID: id}, out)
			return
		}
	}
	t.Fatal("no tick timer set")
}

func TestStalePollDoesNotDeposeAndReadoptionIgnoresOldResults(t *testing.T) {
	tr, out := bootTerritory(t)
	// A write in flight at epoch 1.
	out.Reset()
	tr.Step(4, MessageIn{From: 50, Msg: &Message{Request: &Request{ID: EventUUID{9, 1}, Op: OpCreateNeuron, Neuron: 5}}}, out)
	old := effects[LogCall](out)[0]
	// A poll answered from before our claim (revision 1 < 5, epoch 0) must not depose us.
	tr.syncRoutes(routesKVs(1, 7, 0))
	if len(tr.Operational()) != 1 {
		t.Fatal("a stale route poll deposed the primary")
	}
	// A newer route naming us at another epoch deposes and re-adopts ...
	out.Reset()
	tr.out = out
	tr.syncRoutes([]KV{{Key: RouteKey(0), Value: EncodeRoute(7, 3), ModRevision: 9}})
	tr.out = nil
	if len(tr.Operational()) != 0 {
		t.Fatal("a newer route did not depose the primary")
	}
	// ... and the old append's result, arriving now, belongs to nobody.
	out.Reset()
	tr.Step(5, LogResult{ReqID: old.ReqID, Resp: LogResponse{LSN: 2, TailLSN: 2}}, out)
	if len(effects[Send](out)) != 0 {
		t.Fatalf("a result of the previous claim was taken by the new one: %v", out.Effects)
	}
}

func TestHeartbeatIDsAreUniquePerClaim(t *testing.T) {
	tr, out := bootTerritory(t)
	seen := map[EventUUID]bool{}
	for i := 0; i < 12; i++ {
		tickOnce(t, tr, int64(100+i*250), out)
		for _, c := range effects[LogCall](out) {
			if c.Req.Kind != LogAppend {
				continue
			}
			ev, _ := DecodeEvent(c.Req.Data)
			if ev.Type == EvHeartbeat {
				if seen[ev.UUID] || ev.UUID.Lo>>32 != 1 {
					t.Fatalf("heartbeat id %s reused or without the epoch", ev.UUID)
				}
				seen[ev.UUID] = true
				out2 := &Outbox{}
				tr.Step(int64(100+i*250), LogResult{ReqID: c.ReqID, Resp: LogResponse{LSN: ev.LSN, TailLSN: ev.LSN}}, out2)
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("an idle subgraph logged no heartbeat")
	}
}

func TestFailedAlivePutGrantsAgain(t *testing.T) {
	tr, out := bootTerritory(t)
	var grant uint64
	for id, c := range tr.pending {
		if c.comp == hostComp && c.tag == hostLeaseGrant {
			grant = id
		}
	}
	out.Reset()
	tr.Step(10, CoordResult{ReqID: grant, Resp: CoordResponse{Lease: 77}}, out)
	put := effects[CoordCall](out)
	if len(put) != 1 || put[0].Req.Then[0].Key != AliveKey(7) {
		t.Fatalf("alive put: %v", out.Effects)
	}
	out.Reset()
	tr.Step(11, CoordResult{ReqID: put[0].ReqID, Outcome: OutcomeTimeout}, out)
	tickOnce(t, tr, 300, out)
	regrant := false
	for _, c := range effects[CoordCall](out) {
		regrant = regrant || c.Req.Kind == CoordLeaseGrant
	}
	if !regrant {
		t.Fatalf("a timed-out alive put was never retried: %v", out.Effects)
	}
}

func TestClientWithoutARouteBacksOffAndGivesUp(t *testing.T) {
	c, err := NewClient(DefaultClientConfig(50, 9, 4), &seqRand{})
	if err != nil {
		t.Fatal(err)
	}
	out := &Outbox{}
	c.Step(0, Start{}, out)
	read := effects[CoordCall](out)[0]
	out.Reset()
	c.Step(1, CoordResult{ReqID: read.ReqID, Resp: CoordResponse{}}, out) // routes read: none exist
	req := Request{ID: c.NewID(), Op: OpReadNeuron, Neuron: 3}
	out.Reset()
	c.Step(2, Submit{Req: req}, out)
	if len(effects[CoordCall](out)) != 0 || len(effects[SetTimer](out)) != 1 {
		t.Fatalf("no route: expected a backoff timer, not an immediate re-read: %v", out.Effects)
	}
	now := int64(2)
	for i := 0; i < 200 && c.InFlight() > 0; i++ {
		timers := effects[SetTimer](out)
		if len(timers) == 0 {
			t.Fatalf("stuck without a timer: %v", out.Effects)
		}
		now += timers[0].AfterMs
		out.Reset()
		c.Step(now, TimerFired{ID: timers[0].ID}, out)
		for _, call := range effects[CoordCall](out) {
			o := &Outbox{}
			c.Step(now, CoordResult{ReqID: call.ReqID, Resp: CoordResponse{}}, o)
			out.Effects = append(out.Effects, o.Effects...)
		}
	}
	if c.InFlight() != 0 || now < 5000 {
		t.Fatalf("an operation without a route never finished (in flight %d at %dms)", c.InFlight(), now)
	}
}

func TestAClaimCutOffFromTheStoreReleasesItsClients(t *testing.T) {
	tr, out := bootTerritory(t)
	out.Reset()
	tr.Step(4, MessageIn{From: 50, Msg: &Message{Request: &Request{ID: EventUUID{9, 1}, Op: OpCreateNeuron, Neuron: 5}}}, out)
	app := effects[LogCall](out)[0]
	// The log reports a conflict: the territory re-claims, and the store never answers.
	out.Reset()
	tr.Step(5, LogResult{ReqID: app.ReqID, Outcome: OutcomeFailed, Err: ErrLSNConflict}, out)
	now := int64(5)
	released := false
	for i := 0; i < 40 && !released; i++ {
		for _, c := range effects[CoordCall](out) {
			o := &Outbox{}
			tr.Step(now, CoordResult{ReqID: c.ReqID, Outcome: OutcomeTimeout}, o)
			out.Effects = append(out.Effects, o.Effects...)
		}
		for _, s := range effects[Send](out) {
			if s.Msg.Reply != nil && s.Msg.Reply.Result.Status == StatusUnavailable {
				released = true
			}
		}
		var timer *SetTimer
		for _, e := range effects[SetTimer](out) {
			if tm := tr.pending[e.ID]; tm.comp == tr.claims.id && tm.tag == claimRetry {
				timer = &e
			}
		}
		if timer == nil {
			break
		}
		now += timer.AfterMs
		out.Reset()
		tr.Step(now, TimerFired{ID: timer.ID}, out)
	}
	if !released {
		t.Fatal("a client waited forever on a territory that cannot reach the store")
	}
}
