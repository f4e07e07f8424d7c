package sim

import (
	"fmt"
	"slices"

	"territory/faults"
	"territory/linearizability"
	"territory/model"
	"territory/sim/blobstore"
	"territory/sim/coordstore"
	"territory/sim/invariants"
	"territory/sim/kernel"
	"territory/sim/netsim"
	"territory/sim/replog"
)

type hostKind uint8

const (
	kindTerritory hostKind = iota
	kindClient
	kindService
	kindManager
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
	out         model.Outbox
	pending     map[uint64]struct{} // service calls awaiting a result, this incarnation
	lost        bool                // gone for good: never restarts
	paused      bool                // frozen: inputs wait in held
	held        []model.Input
	offsetUs    int64 // wall-clock error: skews and jumps
	driftPM     int64 // the clock runs this many ppm fast (negative: slow)
	driftFromUs int64 // virtual time the current drift started
	disk        *disk // local disk: survives crashes (less unsynced writes), not host loss
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

// World is one simulated cluster and its checkers.
type World struct {
	cfg   Config
	seed  uint64
	k     *kernel.Kernel
	net   *netsim.Network
	coord *coordstore.Store
	log   *replog.Log
	blob  *blobstore.Store
	hosts []*host // by HostID; hosts[0] is unused

	coordID, logID, blobID model.HostID
	territories            []*host
	clients                []*host
	managerHost            *host

	rndWorkload, rndFaults, rndServices, rndClients *kernel.Rand

	// fault state
	activePartitions []faults.Fault
	coordExtraUs     int64
	blobExtraUs      int64
	ackLossPM        int64
	blobErrPM        int64
	blobAmbigPM      int64
	diskTornPM       int64
	diskCorruptPM    int64
	coordTickAt      int64 // when the pending lease tick runs, 0 if none

	// checking
	recorder   *linearizability.Recorder
	opIDs      map[model.EventUUID]linearizability.OpID
	acked      invariants.AckedWrites
	writers    *invariants.SingleWriter
	folds      *invariants.Folds
	violations []invariants.Violation
	appendHost map[streamEpoch]model.HostID
	// firstAppendUs: when an entry was first sent to the log, until it commits
	firstAppendUs map[appendKey]int64
	ops           int
	unknownOps    int
	stopIssuing   bool
	trace         uint64
	dur           *durability
	lin           *linChecks
}

type streamEpoch struct {
	stream uint32
	epoch  uint64
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
		recorder: linearizability.NewRecorder(), opIDs: map[model.EventUUID]linearizability.OpID{},
		writers: invariants.NewSingleWriter(), folds: invariants.NewFolds(cfg.Subgraphs, model.GenesisPolicy()),
		appendHost: map[streamEpoch]model.HostID{}, firstAppendUs: map[appendKey]int64{},
		trace: 14695981039346656037}
	w.dur = newDurability(w)
	w.lin = newLinChecks(w)
	w.rndWorkload = w.k.Stream("workload")
	w.rndFaults = w.k.Stream("faults")
	w.rndServices = w.k.Stream("services")
	w.rndClients = w.k.Stream("clients")
	w.net = netsim.New(w.k, w.k.Stream("network"), cfg.Net)
	w.coord = coordstore.New()
	var err error
	if w.log, err = replog.New(w.k, w.k.Stream("log"), cfg.Log); err != nil {
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
	w.coord.SetNotifier(w.notifyWatch)
	w.log.SetCommitHook(w.onLogCommit)
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

// ---- trace ----

// mix folds one word into the trace hash (FNV-1a, a byte at a time would be
// slower; a multiply-xorshift per word is enough to tell runs apart).
func (w *World) mix(v uint64) {
	w.trace ^= v
	w.trace *= 0x100000001b3
	w.trace ^= w.trace >> 29
}

func inputTag(in model.Input) uint64 {
	switch in := in.(type) {
	case model.Start:
		return 1
	case model.MessageIn:
		switch m := in.Msg; {
		case m.Request != nil:
			return 2<<56 ^ m.Request.ID.Lo ^ m.Request.ID.Hi<<20
		case m.Reply != nil:
			return 3<<56 ^ m.Reply.ID.Lo ^ m.Reply.ID.Hi<<20 ^ uint64(m.Reply.Result.Status)<<40
		case m.Recovered != nil:
			return 10<<56 ^ uint64(m.Recovered.Subgraph)<<32 ^ m.Recovered.Epoch
		case m.CommitRecovery != nil:
			return 11<<56 ^ uint64(m.CommitRecovery.Subgraph)<<32 ^ m.CommitRecovery.Epoch
		}
		return 2 << 56
	case model.CoordResult:
		return 4<<56 ^ in.ReqID ^ uint64(in.Outcome)<<48
	case model.LogResult:
		return 5<<56 ^ in.ReqID ^ uint64(in.Outcome)<<48 ^ in.Resp.TailLSN<<24
	case model.BlobResult:
		return 6<<56 ^ in.ReqID ^ uint64(in.Outcome)<<48
	case model.TimerFired:
		return 7<<56 ^ in.ID
	case model.WatchEvent:
		return 8<<56 ^ uint64(in.KV.ModRevision)
	case model.Submit:
		return 9<<56 ^ in.Req.ID.Lo
	case model.DiskResult:
		return 12<<56 ^ in.ReqID ^ uint64(in.Outcome)<<48 ^ uint64(len(in.Resp.Data))<<20
	}
	return 0
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
	w.net.Send(from, to.id, func() { w.step(to, model.MessageIn{From: from, Msg: msg}) })
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
		lat := w.rndServices.Between(w.cfg.CoordMinUs, w.cfg.CoordMaxUs) + w.coordExtraUs
		w.k.After(lat, func() {
			resp, err := w.coord.Apply(w.k.NowUs(), caller, req)
			if req.Kind == model.CoordTxn && err == model.ErrNone {
				w.dur.onTxn(req, resp.Succeeded)
			}
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
	req := e.Req
	if req.Kind == model.LogAppend {
		if k := (appendKey{req.Stream, req.Epoch, req.LSN}); w.firstAppendUs[k] == 0 {
			w.firstAppendUs[k] = w.k.NowUs()
		}
	}
	if req.Kind == model.LogAppend || req.Kind == model.LogOpen {
		// One epoch, one writer: the host that opens (or first uses) an
		// epoch owns it, and any other host using it is a broken claim, even
		// if the log would refuse the append.
		key := streamEpoch{req.Stream, req.Epoch}
		if owner, ok := w.appendHost[key]; ok && owner != h.id {
			w.violations = append(w.violations, invariants.Violation{Invariant: invariants.SingleWriterEpoch, AtUs: w.k.NowUs(),
				Detail: fmt.Sprintf("stream %d epoch %d: %s by %s, but the epoch belongs to %s", req.Stream, req.Epoch, logOpName(req.Kind), h.name, w.hosts[owner].name)})
		} else if !ok {
			w.appendHost[key] = h.id
		}
	}
	w.call(h, w.logID, e.ReqID, e.TimeoutMs, model.LogResult{ReqID: e.ReqID, Outcome: model.OutcomeTimeout}, func(reply func(model.Input)) {
		w.log.Do(req, func(resp model.LogResponse, err model.ServiceErr) {
			if req.Kind == model.LogAppend && err == model.ErrNone && w.rndServices.Chance(w.ackLossPM) {
				return // committed, but the acknowledgement is lost: an ambiguous append
			}
			out := model.LogResult{ReqID: e.ReqID, Resp: resp, Err: err}
			if err != model.ErrNone {
				out.Outcome = model.OutcomeFailed
			}
			reply(out)
		})
	})
}

func logOpName(k model.LogOpKind) string {
	if k == model.LogOpen {
		return "open"
	}
	return "append"
}

func (w *World) onLogCommit(stream uint32, lsn uint64, epoch uint64, data []byte) {
	now := w.k.NowUs()
	sg := model.SubgraphID(stream)
	w.lin.committed(stream, lsn, now)
	w.writers.Committed(now, stream, lsn, epoch, w.appendHost[streamEpoch{stream, epoch}])
	first := w.firstAppendUs[appendKey{stream, epoch, lsn}]
	delete(w.firstAppendUs, appendKey{stream, epoch, lsn})
	ev, res, applied := w.folds.Committed(now, sg, model.LogEntry{LSN: lsn, Data: data})
	w.dur.onCommit(sg, ev, res, applied, first, w.folds.LastHeartbeatMs(sg))
}

func (w *World) blobCall(h *host, e model.BlobCall) {
	req := e.Req
	w.call(h, w.blobID, e.ReqID, e.TimeoutMs, model.BlobResult{ReqID: e.ReqID, Outcome: model.OutcomeTimeout}, func(reply func(model.Input)) {
		lat := w.rndServices.Between(w.cfg.BlobMinUs, w.cfg.BlobMaxUs) + w.blobExtraUs
		w.k.After(lat, func() {
			if w.rndServices.Chance(w.blobErrPM) {
				reply(model.BlobResult{ReqID: e.ReqID, Outcome: model.OutcomeFailed, Err: model.ErrUnavailable})
				return
			}
			w.dur.onBlobOp(req)
			resp, err := w.blob.Apply(req)
			if req.Kind == model.BlobPut && err == model.ErrNone && w.rndServices.Chance(w.blobAmbigPM) {
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
		if q := w.cfg.Territory.QueueLimit; q > 0 {
			cfg.QueueLimit = q
		}
		t, err := model.NewTerritory(cfg)
		if err != nil {
			panic(fmt.Sprintf("sim: %v", err)) // the config was validated
		}
		h.node, h.territory = t, t
	case kindClient:
		session := uint64(h.id)<<32 | uint64(h.incarnation+1)
		cfg := model.DefaultClientConfig(h.id, session, w.cfg.Subgraphs)
		c, err := model.NewClient(cfg, w.rndClients.Fork())
		if err != nil {
			panic(fmt.Sprintf("sim: %v", err))
		}
		h.node, h.client = c, c
	case kindManager:
		cfg := model.DefaultManagerConfig(h.id, w.cfg.Subgraphs, w.territoryIDs())
		w.cfg.Manager.apply(&cfg)
		m, err := model.NewManager(cfg)
		if err != nil {
			panic(fmt.Sprintf("sim: %v", err))
		}
		h.node, h.manager = m, m
	}
	w.step(h, model.Start{})
}

func (w *World) crash(h *host) {
	if !h.up {
		return
	}
	if h.territory != nil {
		w.dur.down(h)
	}
	h.up = false
	h.paused, h.held = false, nil
	h.disk.crash()
	h.incarnation++
	h.node, h.territory, h.client, h.manager = nil, nil, nil, nil
	h.pending = map[uint64]struct{}{}
	w.coord.DropWatches(h.id)
}

// ---- observation and workload ----

func (w *World) observe(h *host, f model.Fact) {
	w.lin.observe(f)
	switch f := f.(type) {
	case model.FactOpDone:
		w.opDone(h, f)
	case model.FactOperational:
		w.dur.operational(f)
		if st, _ := h.territory.State(f.Subgraph); st != nil {
			if v, _ := w.folds.Compare(w.k.NowUs(), h.name, st); v != nil {
				w.violations = append(w.violations, *v)
			}
		}
	case model.FactSnapshotCommitted:
		w.dur.snapshotsCommitted++
	case model.FactSnapshotLoaded:
		w.dur.loaded(f)
	case model.FactAdopted:
		w.dur.adopted(f)
	case model.FactCommitted, model.FactSteppedDown, model.FactSnapshotStarted:
	default:
		panic(fmt.Sprintf("sim: unknown fact %T", f))
	}
}

func (w *World) opDone(h *host, f model.FactOpDone) {
	id, ok := w.opIDs[f.Request.ID]
	if !ok {
		panic(fmt.Sprintf("sim: client %s finished an operation never submitted: %s", h.name, f.Request.ID))
	}
	delete(w.opIDs, f.Request.ID)
	out, sent := toLinOutput(f)
	switch {
	case !sent:
		w.recorder.Discard(id) // never sent: not an operation, not an acknowledged write
	case f.Unknown:
		w.recorder.Return(id, out, w.k.NowUs())
		w.unknownOps++
	default:
		w.recorder.Return(id, out, w.k.NowUs())
		if f.Request.Op.IsRead() {
			break
		}
		sg := model.SubgraphOf(f.Request.RoutingNeuron(), w.cfg.Subgraphs)
		w.acked.Acked(w.k.NowUs(), sg, f.Request.ID, f.Request.Op)
	}
	w.scheduleNext(h)
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
	req := w.nextOp()
	req.ID = c.client.NewID()
	w.ops++
	w.opIDs[req.ID] = w.recorder.Call(c.index, w.toLinInput(&req), w.k.NowUs())
	w.step(c, model.Submit{Req: req})
}

// ---- running ----

// Run executes the whole scenario and the final checks.
func (w *World) Run() (*Outcome, error) {
	boot, err := model.InitialRoutes(w.cfg.Subgraphs, w.territoryIDs(), w.cfg.Policy)
	if err != nil {
		return nil, err
	}
	if _, e := w.coord.Apply(0, 0, boot); e != model.ErrNone {
		return nil, fmt.Errorf("bootstrap routes: %s", e)
	}
	for _, h := range w.territories {
		w.boot(h)
	}
	w.boot(w.managerHost)
	for _, c := range w.clients {
		w.boot(c)
		for i := 0; i < w.cfg.Workload.InFlight; i++ {
			w.scheduleNext(c)
		}
	}
	w.scheduleFaults()
	if w.cfg.CheckEvery > 0 {
		w.scheduleChecks()
	}
	end := w.cfg.DurationMs * 1000
	w.k.At(end, func() { w.stopIssuing = true })
	// Liveness: once the last fault healed, every subgraph must have an
	// operational primary within the scenario's bound.
	livenessAt := (w.cfg.Schedule.LastEndMs() + w.cfg.LivenessMs) * 1000
	w.k.At(livenessAt, func() { w.checkLiveness(w.cfg.LivenessMs) })
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
		w.checkStates()
		w.dur.checkSnapshots()
		if w.k.NowUs() < w.cfg.DurationMs*1000 {
			w.k.After(w.cfg.CheckEvery*1000, tick)
		}
	}
	w.k.After(w.cfg.CheckEvery*1000, tick)
}

// checkStates compares every served subgraph with the fold of its log.
func (w *World) checkStates() {
	for _, h := range w.territories {
		if !h.up {
			continue
		}
		for _, sg := range h.territory.Operational() {
			st, _ := h.territory.State(sg)
			if v, _ := w.folds.Compare(w.k.NowUs(), h.name, st); v != nil {
				w.violations = append(w.violations, *v)
			}
		}
	}
}

// primaryOf returns the territory serving sg as operational primary at the
// route's epoch, if any.
func (w *World) primaryOf(sg model.SubgraphID) (*host, uint64) {
	kv, ok := w.coord.Peek(model.RouteKey(sg))
	if !ok {
		return nil, 0
	}
	r, err := model.ParseRoute(kv)
	if err != nil || int(r.Primary) >= len(w.hosts) {
		return nil, 0
	}
	h := w.hosts[r.Primary]
	if !h.up || h.territory == nil {
		return nil, 0
	}
	st, epoch := h.territory.State(sg)
	if st == nil || epoch != r.Epoch || !slices.Contains(h.territory.Operational(), sg) {
		return nil, 0
	}
	return h, st.AppliedLSN
}

// checkLiveness records every subgraph without an operational primary.
func (w *World) checkLiveness(sinceHealMs int64) {
	var unserved []model.SubgraphID
	for sg := model.SubgraphID(0); uint32(sg) < w.cfg.Subgraphs; sg++ {
		if h, _ := w.primaryOf(sg); h == nil {
			unserved = append(unserved, sg)
		}
	}
	if len(unserved) > 0 {
		w.violations = append(w.violations, invariants.Violation{Invariant: invariants.Liveness, AtUs: w.k.NowUs(),
			Detail: fmt.Sprintf("%d subgraph(s) without an operational primary %dms after the last fault healed: %v", len(unserved), sinceHealMs, unserved)})
	}
}

// Outcome is what one run found.
type Outcome struct {
	TraceHash     uint64
	Ops           int
	UnknownOps    int
	AckedWrites   int
	Events        uint64
	SimMs         int64
	Violations    []invariants.Violation
	History       *linearizability.Recorder
	RTOUs         []int64
	OutageUs      []int64
	Durability    DurabilityStats
	LogEntries    int
	NetStats      netsim.Stats
	MaxOpsPerKey  int
	MaxOpsKeyName string
	Logs          []linearizability.SubgraphLog // the committed logs, for the log checker
}

func (w *World) finish() *Outcome {
	now := w.k.NowUs()
	w.checkStates()
	w.violations = append(w.violations, w.writers.Violations()...)
	w.violations = append(w.violations, w.folds.Violations()...)
	w.violations = append(w.violations, w.acked.Check(now,
		func(sg model.SubgraphID) []model.LogEntry { return w.log.Committed(uint32(sg)) },
		func(sg model.SubgraphID) (uint64, bool) {
			h, applied := w.primaryOf(sg)
			return applied, h != nil
		})...)
	w.checkLiveness((now - w.cfg.Schedule.LastEndMs()*1000) / 1000)
	w.dur.finish()
	w.lin.finish()
	logs, err := w.lin.logs()
	if err != nil {
		panic(fmt.Sprintf("sim: committed log: %v", err)) // the fold read the same entries
	}
	invariants.Sort(w.violations)
	entries := 0
	for _, s := range w.log.Streams() {
		entries += len(w.log.Committed(s))
	}
	w.mix(uint64(len(w.violations)))
	key, n := w.recorder.MaxOpsPerKey()
	return &Outcome{TraceHash: w.trace, Ops: w.ops, UnknownOps: w.unknownOps, AckedWrites: w.acked.Count(),
		Events: w.k.Steps(), SimMs: now / 1000, Violations: w.violations, History: w.recorder,
		RTOUs: w.dur.rtoUs, OutageUs: w.dur.outageUs, Durability: w.dur.stats(), LogEntries: entries, NetStats: w.net.Stats(), MaxOpsPerKey: n, MaxOpsKeyName: key, Logs: logs}
}
