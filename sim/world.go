package sim

import (
	"fmt"

	"territory/model"
	"territory/sim/blobstore"
	"territory/sim/coordstore"
	"territory/sim/invariants"
	"territory/sim/kernel"
	"territory/sim/netsim"
)

type hostKind uint8

const (
	kindTerritory hostKind = iota
	kindClient
	kindService
	kindManager
	kindEgress
)

// host is one simulated process.
type host struct {
	id          model.HostID
	name        string
	kind        hostKind
	index       int // among hosts of its kind
	up          bool
	incarnation int
	node        model.Node
	territory   *model.Territory
	client      *model.Client
	manager     *model.Manager
	egress      *model.Egress
	out         model.Outbox
	pending     map[uint64]struct{} // service calls awaiting a result, this incarnation
	lost        bool                // gone for good: never restarts
	paused      bool                // frozen: inputs wait in held
	held        []model.Input
	offsetUs    int64        // wall-clock error: skews and jumps
	driftPM     int64        // the clock runs this many ppm fast (negative: slow)
	driftFromUs int64        // virtual time the current drift started
	disk        *disk        // local disk: survives crashes (less unsynced writes), not host loss
	resend      []resendable // a client's finished cross-subgraph connects (Workload.ResendPM)
}

// wallMs is the host's wall clock: virtual time plus its offset and drift.
func (h *host) wallMs(nowUs int64) int64 {
	return (nowUs + h.clockErrUs(nowUs)) / 1000
}

func (h *host) clockErrUs(nowUs int64) int64 {
	return h.offsetUs + (nowUs-h.driftFromUs)*h.driftPM/1_000_000
}

// timerUs is how long a timer of afterMs on this host's clock takes in
// virtual time: a fast clock fires early.
func (h *host) timerUs(afterMs int64) int64 {
	us := max(afterMs, 0) * 1000
	if h.driftPM != 0 {
		us = us * 1_000_000 / (1_000_000 + h.driftPM)
	}
	return us
}

// World is one simulated cluster: hosts, services, the network, the fault
// state and the trace. What happens is published on the checker bus (bus.go);
// the checkers (checkers.go, durability.go) judge it.
type World struct {
	cfg   Config
	seed  uint64
	k     *kernel.Kernel
	net   *netsim.Network
	coord *coordstore.Store
	log   logService // sim/log_topic.go
	blob  *blobstore.Store
	hosts []*host // by HostID; hosts[0] is unused

	coordID, logID, blobID model.HostID
	territories            []*host
	clients                []*host
	managerHost            *host
	egressHosts            []*host
	estream                logService   // the egress topic (sim/egress.go); nil without egress
	estreamID              model.HostID // its service host
	rndEgress              *kernel.Rand // egress topic: lost acks and redelivery

	rndWorkload, rndFaults, rndClients *kernel.Rand
	// one stream per component: adding or changing one does not shift the others
	rndCoord     *kernel.Rand // coordination-store latency
	rndBlob      *kernel.Rand // object-store latency
	rndBlobFault *kernel.Rand // object-store errors and lost answers
	rndAckLoss   *kernel.Rand // lost append acknowledgements
	rndDisk      *kernel.Rand // local-disk latency
	rndMigFaults *kernel.Rand // faults aimed at migration steps
	migLosses    int

	// fault state
	faultsInProgress faultState // active faults and pause holds (faultexec.go)
	coordExtraUs     int64
	blobExtraUs      int64
	ackLossPM        int64
	blobErrPM        int64
	blobAmbigPM      int64
	diskTornPM       int64
	diskCorruptPM    int64
	coordTickAt      int64 // when the pending lease tick runs, 0 if none

	// checking
	checkers   []Checker
	view       *View
	violations []invariants.Violation
	// firstSent: who first sent an entry to the log and when, until it commits
	firstSent   map[appendKey]sentBy
	ops         int
	resent      int // connects sent again under their first event_uuid (Workload.ResendPM)
	diskFaults  int
	stopIssuing bool
	trace       uint64
	deposed     DeposedStats
	asked       map[deposedKey]bool // requests a deposed primary was asked, until answered: is it a read
}

type sentBy struct {
	host model.HostID
	atUs int64
}

type appendKey struct {
	stream uint32
	epoch  uint64
	lsn    uint64
}

// NewWorld builds the world for one run.
func NewWorld(cfg Config, seed uint64) (*World, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Schedule.Sort()
	w := &World{cfg: cfg, seed: seed, k: kernel.New(seed, cfg.MaxSteps),
		firstSent: map[appendKey]sentBy{}, trace: 14695981039346656037}
	w.view = &View{w: w}
	w.rndWorkload = w.k.Stream("workload")
	w.rndFaults = w.k.Stream("faults")
	w.rndCoord = w.k.Stream("coord")
	w.rndBlob = w.k.Stream("blob")
	w.rndBlobFault = w.k.Stream("blob-faults")
	w.rndAckLoss = w.k.Stream("log-ack-loss")
	w.rndDisk = w.k.Stream("disk")
	w.rndClients = w.k.Stream("clients")
	w.rndMigFaults = w.k.Stream("migration-faults")
	w.net = netsim.New(w.k, w.k.Stream("network"), cfg.Net)
	w.coord = coordstore.New()
	rndLeaseLag := w.k.Stream("coord-lease-lag")
	w.coord.SetExpiryLag(func() int64 { return rndLeaseLag.Between(0, coordstore.MaxExpiryLagUs) })
	var err error
	if w.log, err = w.newLog(); err != nil {
		return nil, fmt.Errorf("world: %w", err)
	}
	w.blob = blobstore.New()
	w.hosts = []*host{nil}
	add := func(name string, kind hostKind, index int) *host {
		h := &host{id: model.HostID(len(w.hosts)), name: name, kind: kind, index: index, pending: map[uint64]struct{}{}, disk: newDisk()}
		w.hosts = append(w.hosts, h)
		return h
	}
	for i, n := range cfg.TerritoryNames() {
		w.territories = append(w.territories, add(n, kindTerritory, i))
	}
	for i, n := range cfg.ClientNames() {
		w.clients = append(w.clients, add(n, kindClient, i))
	}
	w.managerHost = add(ManagerHostName, kindManager, 0)
	w.coordID = add(CoordHostName, kindService, 0).id
	w.logID = add(LogHostName, kindService, 1).id
	w.blobID = add(BlobHostName, kindService, 2).id
	if cfg.Egress > 0 {
		if err := w.newEgress(add); err != nil {
			return nil, fmt.Errorf("world: %w", err)
		}
	}
	w.coord.SetNotifier(w.notifyWatch)
	w.log.SetCommitHook(w.onLogCommit)
	for _, mk := range checkerRegistry {
		w.AddChecker(mk(w.view))
	}
	return w, nil
}

func (w *World) hostByName(name string) *host {
	for _, h := range w.hosts[1:] {
		if h.name == name {
			return h
		}
	}
	panic(fmt.Sprintf("sim: no host %q (the schedule was validated)", name))
}

// ---- stepping a host ----

func (w *World) step(h *host, in model.Input) {
	if !h.up {
		return
	}
	if h.paused {
		h.held = append(h.held, in) // a frozen process runs nothing; its inputs wait
		return
	}
	now := w.k.NowUs()
	w.mix(uint64(now))
	w.mix(uint64(h.id)<<32 ^ inputTag(in))
	w.mixInput(in)
	h.out.Reset()
	h.node.Step(h.wallMs(now), in, &h.out)
	inc := h.incarnation
	for _, e := range h.out.Effects {
		if h.incarnation != inc {
			break // an observer crashed the host mid-step (never today, but keep it safe)
		}
		w.execute(h, e)
	}
}

func (w *World) execute(h *host, e model.Effect) {
	w.mixEffect(e)
	switch e := e.(type) {
	case model.Send:
		w.send(h, e)
	case model.CoordCall:
		w.coordCall(h, e)
	case model.LogCall:
		w.logCall(h, e)
	case model.BlobCall:
		w.blobCall(h, e)
	case model.DiskCall:
		w.diskCall(h, e)
	case model.SetTimer:
		inc, id := h.incarnation, e.ID
		w.k.After(h.timerUs(e.AfterMs), func() {
			if h.incarnation == inc {
				w.step(h, model.TimerFired{ID: id})
			}
		})
	case model.Observe:
		w.observe(h, e.Fact)
	default:
		panic(fmt.Sprintf("sim: unknown effect %T", e))
	}
}

func (w *World) send(h *host, e model.Send) {
	if int(e.To) <= 0 || int(e.To) >= len(w.hosts) {
		panic(fmt.Sprintf("sim: host %s sends to unknown host %d", h.name, e.To))
	}
	to, from, msg := w.hosts[e.To], h.id, e.Msg
	w.noteReply(h, msg)
	w.net.Send(from, to.id, func() {
		w.noteDelivery(to, msg)
		if msg.Reply != nil && to.kind == kindClient && to.up {
			w.publish(ReplySeen{Client: to.id, From: from, Reply: *msg.Reply})
		}
		w.step(to, model.MessageIn{From: from, Msg: msg})
	})
}

// call runs one service call: request over the network to the service host,
// the service's own latency and semantics (exec), the answer back. A timer
// delivers a timeout if no answer arrives in time; whichever comes first wins.
func (w *World) call(h *host, svc model.HostID, reqID uint64, timeoutMs int64, timeout model.Input, exec func(reply func(model.Input))) {
	if _, dup := h.pending[reqID]; dup {
		panic(fmt.Sprintf("sim: host %s reuses request id %d", h.name, reqID))
	}
	h.pending[reqID] = struct{}{}
	inc := h.incarnation
	deliver := func(in model.Input) {
		if h.incarnation != inc {
			return
		}
		if _, ok := h.pending[reqID]; !ok {
			return // timed out already
		}
		delete(h.pending, reqID)
		w.step(h, in)
	}
	w.k.After(max(timeoutMs, 1)*1000, func() { deliver(timeout) })
	w.net.Send(h.id, svc, func() {
		exec(func(result model.Input) {
			w.net.Send(svc, h.id, func() { deliver(result) })
		})
	})
}

func (w *World) coordCall(h *host, e model.CoordCall) {
	req, caller := e.Req, h.id
	w.call(h, w.coordID, e.ReqID, e.TimeoutMs, model.CoordResult{ReqID: e.ReqID, Outcome: model.OutcomeTimeout}, func(reply func(model.Input)) {
		lat := w.rndCoord.Between(w.cfg.CoordMinUs, w.cfg.CoordMaxUs) + w.coordExtraUs
		w.k.After(lat, func() {
			resp, err := w.coord.Apply(w.k.NowUs(), caller, req)
			w.publish(CoordApplied{Caller: caller, Req: req, Resp: resp, Err: err})
			w.migrationFaults(req, resp, err)
			w.scheduleCoordTick()
			out := model.CoordResult{ReqID: e.ReqID, Resp: resp, Err: err}
			if err != model.ErrNone {
				out.Outcome = model.OutcomeFailed
			}
			reply(out)
		})
	})
}

// scheduleCoordTick makes leases expire on time even when no call arrives.
// One tick is scheduled at a time, for the earliest expiry.
func (w *World) scheduleCoordTick() {
	at, ok := w.coord.NextExpiryUs()
	if !ok || (w.coordTickAt > 0 && w.coordTickAt <= at) {
		return
	}
	at = max(at, w.k.NowUs())
	w.coordTickAt = at
	w.k.At(at, func() {
		w.coordTickAt = 0
		w.coord.Tick(w.k.NowUs())
		w.scheduleCoordTick()
	})
}

func (w *World) notifyWatch(watcher model.HostID, ev model.WatchEvent) {
	to := w.hosts[watcher]
	w.net.Send(w.coordID, watcher, func() { w.step(to, ev) })
}

func (w *World) logCall(h *host, e model.LogCall) {
	if e.Req.Stream == model.EgressStream && w.estream != nil {
		w.egressCall(h, e)
		return
	}
	// The request belongs to the incarnation that sends it: the host may
	// crash (and restart as the next one) while it crosses the network.
	req, caller, inc := e.Req, h.id, h.incarnation
	if req.Kind == model.LogAppend {
		if k := (appendKey{req.Stream, req.Epoch, req.LSN}); w.firstSent[k].atUs == 0 {
			w.firstSent[k] = sentBy{h.id, w.k.NowUs()}
		}
	}
	if req.Kind == model.LogAppend || req.Kind == model.LogOpen {
		w.publish(LogSent{Host: h.id, Req: req})
	}
	w.call(h, w.logID, e.ReqID, e.TimeoutMs, model.LogResult{ReqID: e.ReqID, Outcome: model.OutcomeTimeout}, func(reply func(model.Input)) {
		w.log.Do(caller, inc, req, func(resp model.LogResponse, err model.ServiceErr) {
			// committed, but the acknowledgement is lost: an ambiguous append
			lost := req.Kind == model.LogAppend && err == model.ErrNone && w.rndAckLoss.Chance(w.ackLossPM)
			w.publish(LogAnswered{Host: caller, Req: req, Resp: resp, Err: err, Lost: lost})
			if lost {
				return
			}
			out := model.LogResult{ReqID: e.ReqID, Resp: resp, Err: err}
			if err != model.ErrNone {
				out.Outcome = model.OutcomeFailed
			}
			reply(out)
		})
	})
}

func (w *World) onLogCommit(stream uint32, lsn uint64, epoch uint64, data []byte) {
	k := appendKey{stream, epoch, lsn}
	first := w.firstSent[k]
	delete(w.firstSent, k)
	w.publish(EntryCommitted{Stream: stream, LSN: lsn, Epoch: epoch, Data: data, Writer: first.host, FirstSentUs: first.atUs})
}

func (w *World) blobCall(h *host, e model.BlobCall) {
	req := e.Req
	w.call(h, w.blobID, e.ReqID, e.TimeoutMs, model.BlobResult{ReqID: e.ReqID, Outcome: model.OutcomeTimeout}, func(reply func(model.Input)) {
		lat := w.rndBlob.Between(w.cfg.BlobMinUs, w.cfg.BlobMaxUs) + w.blobExtraUs
		w.k.After(lat, func() {
			if w.rndBlobFault.Chance(w.blobErrPM) {
				reply(model.BlobResult{ReqID: e.ReqID, Outcome: model.OutcomeFailed, Err: model.ErrUnavailable})
				return
			}
			resp, err := w.blob.Apply(req)
			w.publish(BlobApplied{Req: req, Resp: resp, Err: err})
			if req.Kind == model.BlobPut && err == model.ErrNone && w.rndBlobFault.Chance(w.blobAmbigPM) {
				return // stored, but the answer is lost
			}
			out := model.BlobResult{ReqID: e.ReqID, Resp: resp, Err: err}
			if err != model.ErrNone {
				out.Outcome = model.OutcomeFailed
			}
			reply(out)
		})
	})
}

// ---- host lifecycle ----

func (w *World) boot(h *host) {
	h.up = true
	h.pending = map[uint64]struct{}{}
	switch h.kind {
	case kindTerritory:
		cfg := model.DefaultTerritoryConfig(h.id, w.cfg.Subgraphs)
		cfg.Policy = w.cfg.Policy
		cfg.Manager = w.managerHost.id
		cfg.Proxy = w.cfg.Egress > 0
		cfg.SagaTimeoutMs = w.cfg.SagaTimeoutMs()
		if q := w.cfg.Territory.QueueLimit; q > 0 {
			cfg.QueueLimit = q
		}
		if b := w.cfg.Territory.MigChunkBytes; b > 0 {
			cfg.MigChunkBytes, cfg.MigChunkWindow = b, 1
		}
		t, err := model.NewTerritory(cfg)
		if err != nil {
			panic(fmt.Sprintf("sim: %v", err)) // the config was validated
		}
		h.node, h.territory = t, t
	case kindClient:
		session := uint64(h.id)<<32 | uint64(h.incarnation+1)
		cfg := model.DefaultClientConfig(h.id, session, w.cfg.Subgraphs)
		cfg.WatchRoutes = h.index < w.cfg.Workload.WatchingClients
		if w.cfg.Workload.StalePM > 0 {
			cfg.Home = w.territories[h.index%len(w.territories)].id
		}
		c, err := model.NewClient(cfg, w.rndClients.Fork())
		if err != nil {
			panic(fmt.Sprintf("sim: %v", err))
		}
		h.node, h.client = c, c
		h.resend = nil // their event_uuids are of the last incarnation's session
	case kindManager:
		cfg := model.DefaultManagerConfig(h.id, w.cfg.Subgraphs, w.territoryIDs())
		w.cfg.Manager.apply(&cfg)
		w.migrationManager(&cfg, h.incarnation)
		m, err := model.NewManager(cfg)
		if err != nil {
			panic(fmt.Sprintf("sim: %v", err))
		}
		h.node, h.manager = m, m
	case kindEgress:
		e, err := model.NewEgress(model.DefaultEgressConfig(h.id, w.cfg.Subgraphs))
		if err != nil {
			panic(fmt.Sprintf("sim: %v", err))
		}
		h.node, h.egress = e, e
	}
	w.publish(HostChanged{Host: h.id, Change: HostBooted})
	w.step(h, model.Start{})
	if h.kind == kindClient { // a client (re)starts its workload
		for i := 0; i < w.cfg.Workload.InFlight; i++ {
			w.scheduleNext(h)
		}
	}
}

// crash stops a host (a lost host is marked lost first).
func (w *World) crash(h *host) {
	if !h.up {
		return
	}
	change := HostCrashed
	if h.lost {
		change = HostLost
	}
	w.publish(HostChanged{Host: h.id, Change: change})
	h.up = false
	h.paused, h.held = false, nil
	h.disk.crash()
	h.incarnation++
	h.node, h.territory, h.client, h.manager, h.egress = nil, nil, nil, nil, nil
	h.pending = map[uint64]struct{}{}
	w.coord.DropWatches(h.id)
}

// ---- observation and workload ----

func (w *World) observe(h *host, f model.Fact) {
	if f, ok := f.(model.FactOpDone); ok {
		w.publish(OpReturned{Client: h.id, ClientIndex: h.index, Done: f})
		w.keepForResend(h, f)
		w.scheduleNext(h)
		return
	}
	w.publish(FactObserved{Host: h.id, Fact: f})
}

// pause freezes a host: inputs wait until resume.
func (w *World) pause(h *host) {
	if h.up && !h.paused {
		w.publish(HostChanged{Host: h.id, Change: HostPaused})
		h.paused = true
	}
}

func (w *World) scheduleNext(c *host) {
	if w.stopIssuing || (w.cfg.Workload.MaxOps > 0 && w.ops >= w.cfg.Workload.MaxOps) {
		return
	}
	think := w.rndWorkload.Between(w.cfg.Workload.ThinkMinUs, w.cfg.Workload.ThinkMaxUs)
	inc := c.incarnation
	w.k.After(think, func() {
		if c.incarnation == inc && c.up && !w.stopIssuing {
			w.submit(c)
		}
	})
}

func (w *World) submit(c *host) {
	if w.cfg.Workload.MaxOps > 0 && w.ops >= w.cfg.Workload.MaxOps {
		return
	}
	req, ok := w.resendOne(c)
	if !ok {
		req = w.nextOp()
		req.ID = c.client.NewID()
	}
	w.ops++
	w.publish(OpCalled{Client: c.id, ClientIndex: c.index, Req: req})
	w.step(c, model.Submit{Req: req})
}

// ---- running ----

// Run executes the whole scenario and the final checks.
func (w *World) Run() (*Outcome, error) {
	plan, err := model.NewBootstrapPlan(w.cfg.Subgraphs, w.territoryIDs(), w.cfg.Policy)
	if err != nil {
		return nil, err
	}
	for i, req := range plan.Txns() {
		if r, e := w.coord.Apply(0, 0, req); e != model.ErrNone || !r.Succeeded {
			return nil, fmt.Errorf("bootstrap transaction %d: %s (succeeded %v)", i, e, r.Succeeded)
		}
	}
	for _, h := range w.territories {
		w.boot(h)
	}
	w.boot(w.managerHost)
	for _, e := range w.egressHosts {
		w.boot(e)
	}
	for _, c := range w.clients {
		w.boot(c)
	}
	w.scheduleFaults()
	if w.cfg.CheckEvery > 0 {
		w.scheduleChecks()
	}
	end := w.cfg.IssueEndMs() * 1000
	w.k.At(end, func() { w.stopIssuing = true })
	// The healed check: the scenario's bound after the last fault healed.
	livenessAt := (max(w.cfg.Schedule.LastEndMs(), w.cfg.Migration.faultsEndMs()) + w.cfg.LivenessMs) * 1000
	w.k.At(livenessAt, func() { w.publish(Tick{Kind: TickHealed}) })
	if err := w.k.Run(max(end+w.cfg.DrainMs*1000, livenessAt)); err != nil {
		return nil, err
	}
	return w.finish(), nil
}

func (w *World) territoryIDs() []model.HostID {
	ids := make([]model.HostID, len(w.territories))
	for i, h := range w.territories {
		ids[i] = h.id
	}
	return ids
}

func (w *World) scheduleChecks() {
	var tick func()
	tick = func() {
		w.publish(Tick{Kind: TickPeriodic})
		if w.k.NowUs() < w.cfg.DurationMs*1000 {
			w.k.After(w.cfg.CheckEvery*1000, tick)
		}
	}
	w.k.After(w.cfg.CheckEvery*1000, tick)
}

// corruptBlobs damages stored snapshot blobs (a fault): the committed snapshot of
// every subgraph of one random territory, the ones its recovery will try
// first, or, when none is committed yet, one random blob.
func (w *World) corruptBlobs() {
	var keys []string
	t := w.territories[w.rndFaults.Intn(len(w.territories))]
	if t.territory != nil {
		for _, sg := range t.territory.Operational() {
			if head, ok := w.coord.Peek(model.SnapshotHeadKey(sg)); ok {
				if r, err := model.ParseHead(sg, head); err == nil {
					keys = append(keys, r.Location)
				}
			}
		}
	}
	if len(keys) == 0 {
		all := w.blob.Keys(model.SnapshotBlobPrefix)
		if len(all) == 0 {
			return
		}
		keys = []string{all[w.rndFaults.Intn(len(all))]}
	}
	for _, key := range keys {
		w.corruptBlob(key)
	}
}

func (w *World) corruptBlob(key string) {
	var ok bool
	if w.rndFaults.Chance(750_000) { // a flipped byte often still parses: the checksum must catch it
		ok = w.blob.Corrupt(key, w.rndFaults.Intn(1<<20))
	} else {
		data, _ := w.blob.Object(key)
		ok = w.blob.Truncate(key, w.rndFaults.Intn(max(1, len(data))))
	}
	if ok {
		w.publish(BlobCorrupted{Key: key})
	}
}
