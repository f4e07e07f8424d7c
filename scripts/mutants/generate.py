# generate.py: writes scripts/mutants/*.patch from the edits below, against the
# current tree. Rerun it when a patch no longer applies. Each edit must match once.
#
# An entry is name: (scenarios, description, edits) or (scenarios, description,
# edits, headers); headers (a dict) and HEADERS[name] become header lines of the
# patch that scripts/mutants.sh reads (see its top comment and scripts/README.md):
#   'expect':   the check(s) expected to catch it (required): an invariant name,
#               linearizable, model-assertion, or a Go test name for a test patch
#   'test':     go test arguments: the patch is caught by a Go test, not by sim
#               runs (then scenarios is '')
#   'services': real services the test needs (pulsar s3 gcs azure)
import subprocess, os, shutil, sys
import pathlib
root=str(pathlib.Path(__file__).resolve().parents[2])
# The check expected to catch each mutation (kept apart from the entries, so
# that edits of the entries and of these lines do not collide).
HEADERS = {
 'skip-checksum': {'expect': 'state-is-fold-of-log'},
 'digest-keeps-old-weight': {'expect': 'state-is-fold-of-log'},
 'replay-from-snapshot-lsn': {'expect': 'state-is-fold-of-log'},
 'commit-without-txn': {'expect': 'one-committed-snapshot'},
 'decay-not-logged': {'expect': 'state-is-fold-of-log'},
 'paused-primary-acks': {'expect': 'no-acked-write-lost'},
 'delete-superseded-immediately': {'expect': 'blob-retention'},
 'drop-uuid-dedup': {'expect': 'linearizable'},
 'dedup-window-200ms': {'expect': 'logcheck:log-once'},
 'connect-off-by-one': {'expect': 'degree-policy'},
 'ignore-in-degree': {'expect': 'degree-policy'},
 'decay-base-after-writes': {'expect': 'decay-bounded'},
 'heartbeat-wrong-clock': {'expect': 'decay-bounded'},
 'saga-reserve-no-slot': {'expect': 'saga-no-leak'},
 'saga-accept-ignores-in-degree': {'expect': 'degree-policy'},
 'saga-commit-on-refusal': {'expect': 'saga-atomic'},
 'saga-commit-keeps-reservation': {'expect': 'saga-compensate'},
 'saga-pending-means-released': {'expect': 'saga-atomic'},
 'saga-unlink-never-closed': {'expect': 'saga-terminates'},
 'saga-answer-at-reserve': {'expect': 'saga-atomic'},
 'saga-named-by-client-id': {'expect': 'saga-atomic,saga-compensate,logcheck:log-once'},
 'saga-accept-never-sent': {'expect': 'saga-timeout'},
 'egress-cursor-before-publish': {'expect': 'egress-no-gap'},
 'egress-skip-after-restart': {'expect': 'egress-no-gap'},
 'proxy-applies-out-of-order': {'expect': 'proxy-prefix'},
 'proxy-double-applies-redelivery': {'expect': 'proxy-prefix'},
 'migration-flip-without-cas': {'expect': 'at-most-one-primary'},
 'migration-catchup-from-snapshot-lsn': {'expect': 'exactly-once-apply'},
 'migration-dest-live-before-catchup': {'expect': 'linearizable,liveness,no-acked-write-lost,state-is-fold-of-log'},
 'migration-source-acks-after-flip': {'expect': 'at-most-one-primary'},
 'migration-release-without-cas': {'expect': 'at-most-one-primary'},
 'migration-retry-leaves-dest': {'expect': 'migration-transitions'},
 'proxy-stale-read-names-next-lsn': {'expect': 'stale-read-prefix'},
 'client-forgets-stale-floor': {'expect': 'stale-read-monotonic'},
 'proxy-keeps-unadjacent-replica': {'expect': 'proxy-adjacent'},
 'proxy-no-reread-on-adjacency': {'expect': 'egress-no-gap'},
 'proxy-snapshot-no-rewind': {'expect': 'egress-no-gap'},
 'proxy-snapshot-reapplies-its-lsn': {'expect': 'proxy-prefix'},
}
muts = {
 'skip-checksum': ("snapshot-gc crash-recovery", "a corrupt snapshot blob is loaded: the checksum checks are skipped", [
   ('model/snapshot.go', 'binary.LittleEndian.Uint32(data[len(data)-4:]); got != want {', 'binary.LittleEndian.Uint32(data[len(data)-4:]); false && got != want {'),
   ('model/snapload_component.go', '	if len(data) != cand.Size || crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) != cand.Checksum {', '	if false && (len(data) != cand.Size || crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) != cand.Checksum) {'),
 ]),
 'replay-from-snapshot-lsn': ("crash-recovery host-loss", "recovery replays from the snapshot's LSN instead of LSN + 1, and the fold's dedup is gone", [
   ('model/claim_component.go', 'FromLSN: p.state.AppliedLSN + 1, MaxEntries', 'FromLSN: max(p.state.AppliedLSN, 1), MaxEntries'),
   ('model/claim_component.go', '		if e.LSN != p.state.AppliedLSN+1 {\n			break', '		if e.LSN > p.state.AppliedLSN+1 {\n			break'),
   ('model/subgraph.go', '	if ev.LSN <= s.AppliedLSN {\n		if r, ok := s.dedup.get(ev.UUID); ok {\n			return r, false\n		}\n		return Result{}, false\n	}\n	if ev.LSN != s.AppliedLSN+1 {', '	if ev.LSN < s.AppliedLSN {\n		return Result{}, false\n	}\n	if ev.LSN > s.AppliedLSN+1 {'),
   ('model/subgraph.go', '	s.AppliedLSN = ev.LSN\n	if !ev.UUID.IsZero() {\n		if r, ok := s.dedup.get(ev.UUID); ok {\n			return r, false\n		}\n	}', '	s.AppliedLSN = ev.LSN'),
 ]),
 'commit-without-txn': ("snapshot-gc pause-fencing crash-recovery", "the snapshot commit is blind writes, not one compare-and-swap transaction", [
   ('model/territory_snapshot.go', '		Compares: []Compare{{Key: SnapshotHeadKey(p.sg), ModRevision: j.headRev}, {Key: key, ModRevision: j.recRev}},\n', ''),
   ('model/territory_snapshot.go', '			if r.LSN >= j.lsn {', '			if false && r.LSN >= j.lsn {'),
 ]),
 'decay-not-logged': ("crash-recovery clock-skew", "recovery decay is applied to the live state instead of being logged as an event", [
   ('model/recovery_component.go', '	r.t.writes.submit(p, &write{req: Request{ID: RecoveryUUID(p.sg, s.epoch)}, internal: EvTerritoryRecovered,\n		tsMs: c.TimestampMs, body: RecoveryBody{LastHeartbeatMs: s.baseMs}})', '	p.state.decay(DecayFactorPM(p.state.Policy.DecayPerSecondPM, c.TimestampMs-s.baseMs))\n	s.due = false'),
 ]),
 'paused-primary-acks': ("pause-fencing", "a fenced (paused, then resumed) primary keeps acknowledging writes", [
   ('model/write_component.go', '	case res.Err == ErrFenced:\n		t.stepDown(p, stepDownWhy{reason: StepDownFenced})', '	case res.Err == ErrFenced:\n		ev, _ := DecodeEvent(w.data)\n		r, _ := p.state.Apply(&ev)\n		s.inflight = nil\n		k.finish(s, w, r)\n		k.pump(p, s)'),
 ]),
 'delete-superseded-immediately': ("snapshot-gc crash-recovery", "the reconciler deletes superseded blobs without waiting for the grace period", [
   ('model/manager_reconcile.go', '			limit = r.cfg.GraceMs', '			limit = 0'),
 ]),
 'dedup-window-200ms': ("services network", "the dedup table keeps a request's result for 200 ms of logged time instead of DedupWindowMs: a retry after a lost answer (request timeout 300 ms) applies twice", [
   ('model/dedup.go', '		if d.len() <= DedupMaxEntries && e.tsMs >= d.maxTsMs-DedupWindowMs {', '		if d.len() <= DedupMaxEntries && e.tsMs >= d.maxTsMs-200 {'),
 ]),
 'drop-uuid-dedup': ("services network", "the event_uuid dedup is gone: a retried write applies twice", [
   ('model/write_component.go', '	if r, ok := p.state.Deduped(req.ID); ok {\n		k.t.reply(from, req.ID, r)\n		return\n	}\n', ''),
   ('model/write_component.go', '		if r, ok := p.state.Deduped(w.req.ID); ok {\n			k.finish(s, w, r)\n			continue\n		}\n', ''),
   ('model/subgraph.go', '	s.AppliedLSN = ev.LSN\n	if !ev.UUID.IsZero() {\n		if r, ok := s.dedup.get(ev.UUID); ok {\n			return r, false\n		}\n	}', '	s.AppliedLSN = ev.LSN'),
 ]),
 'connect-off-by-one': ("basic services", "a connect is rejected one synapse before the out-degree limit", [
   ('model/subgraph.go', '	if pre.OutDegree >= s.Policy.MaxOutDegree {', '	if pre.OutDegree+1 >= s.Policy.MaxOutDegree {'),
 ]),
 'ignore-in-degree': ("basic services", "the in-degree limit of the policy is not enforced", [
   ('model/subgraph.go', '	if post.InDegree >= s.Policy.MaxInDegree {', '	if false && post.InDegree >= s.Policy.MaxInDegree {'),
 ]),
 'decay-base-after-writes': ("crash-recovery host-loss", "the recovery decays from the last heartbeat when the event is logged, after writes that reached the new primary first", [
   ('model/recovery_component.go', 'body: RecoveryBody{LastHeartbeatMs: s.baseMs}})', 'body: RecoveryBody{LastHeartbeatMs: p.state.LastHeartbeatMs}})'),
 ]),
 'barrier-checks-first-route-only': ("", "a read barrier compares only the route of its first subgraph: reads of the other subgraphs it covers are served without a route check", [
   ('model/territory_barrier.go', '				req.Compares = append(req.Compares, Compare{Key: RouteKey(sg), ModRevision: sub.modRev})\n', '				if len(req.Compares) == 0 {\n					req.Compares = append(req.Compares, Compare{Key: RouteKey(sg), ModRevision: sub.modRev})\n				}\n'),
 ], {'expect': 'TestBarrierCoversAtMostATxnOfSubgraphs', 'test': '-run TestBarrierCoversAtMostATxnOfSubgraphs ./model'}),
 'recheck-ignores-route-value': ("", "after a failed barrier, the route get serves the read whatever the route says", [
   ('model/territory_barrier.go', '	if kv != nil && string(kv.Value) == string(p.routeValue) {\n', '	if kv != nil {\n'),
 ], {'expect': 'TestFailedBarrierRechecksEachRoute', 'test': '-run TestFailedBarrierRechecksEachRoute ./model'}),
 'saga-named-by-client-id': ("sagas", "a saga is named by its client's event_uuid, not by the Reserve's LSN: a connect re-sent after the dedup window (an import re-run: Workload.ResendPM) starts a saga that the checks and the first one's late messages confuse with the first", [
   ('model/saga_state.go', '	if ev.Type == EvSagaReserve && ev.Saga.Instance {', '	if false && ev.Type == EvSagaReserve && ev.Saga.Instance {'),
 ]),
 'migration-sync-complete-fails': ("", "the migration state machine lets SYNC_COMPLETE fall back to FAILED (the seed has no such edge: T_dest is live by then)", [
   ('model/migration.go', '	case MigSyncComplete:\n		return to == MigCommitted\n', '	case MigSyncComplete:\n		return to == MigCommitted || to == MigFailed\n'),
 ], {'expect': 'TestMigrationTransitionIsTheSeedDiagram', 'test': '-run TestMigrationTransitionIsTheSeedDiagram ./model'}),
 'migration-retry-keeps-epoch': ("", "a migration retry (FAILED -> PENDING) keeps the old migration_epoch and attempt count: the attempt bound never bites and old messages match the new attempt", [
   ('model/migration.go', '		if next.Epoch <= rec.Epoch || next.Attempts != rec.Attempts+1 {', '		if false && (next.Epoch <= rec.Epoch || next.Attempts != rec.Attempts+1) {'),
   ('model/migration.go', '		if !rec.RetriesLeft() {', '		if false && !rec.RetriesLeft() {'),
 ], {'expect': 'TestMigrationCASGuardsTheMachine', 'test': '-run TestMigrationCASGuardsTheMachine ./model'}),
 'digest-keeps-old-weight': ("basic", "the incremental digest adds a synapse's new weight without taking out the old one: live state and fold agree with each other, only the end-of-run recomputation can tell", [
   ('model/subgraph_digest.go', '	if old, ok := s.synapses[k]; ok {\n		s.sums.synapses -= synapseHash(k, old)\n	}\n	s.synapses[k] = w\n', '	s.synapses[k] = w\n'),
 ]),
 'skip-read-barrier': ("split-brain chaos network pause-fencing", "reads are answered from the local state without the read barrier: a deposed primary serves stale reads", [
   ('model/territory_host.go', '	t.reads = append(t.reads, pendingRead{from: from, req: *req})\n	t.startBarrier()\n', '	t.reply(from, req.ID, p.state.Read(req))\n'),
 ]),
 'heartbeat-wrong-clock': ("crash-recovery clock-skew", "heartbeats are stamped with time since process start, not the host's wall clock", [
   ('model/write_component.go', '		ts := k.t.nowMs // a heartbeat', '		ts := k.t.ticks * k.t.cfg.TickMs // a heartbeat'),
   ('model/write_component.go', '	ev.TimestampMs = k.t.nowMs\n', '	ev.TimestampMs = k.t.ticks * k.t.cfg.TickMs\n'),
 ]),
 'reject-some-stimulates': ("basic services", "the territory answers about 30% of stimulates 'rejected' without logging them", [
   ('model/territory_host.go', '	sg := SubgraphOf(req.RoutingNeuron(), t.cfg.Subgraphs)\n	p := t.subgraphs[sg]\n	if p == nil {\n		t.reply(from, req.ID, Result{Status: StatusWrongTerritory})', '	if req.Op == OpStimulate && req.ID.Lo%10 < 3 {\n		t.reply(from, req.ID, Result{Status: StatusRejected})\n		return\n	}\n	sg := SubgraphOf(req.RoutingNeuron(), t.cfg.Subgraphs)\n	p := t.subgraphs[sg]\n	if p == nil {\n		t.reply(from, req.ID, Result{Status: StatusWrongTerritory})'),
 ]),
 'ack-stimulate-unlogged': ("", "the territory acknowledges about 10% of stimulates without logging them (acknowledged writes dropped): caught against the real cluster by sim chaos's checks (no-acked-write-lost, logcheck log-lost)", [
   ('model/territory_host.go', '	sg := SubgraphOf(req.RoutingNeuron(), t.cfg.Subgraphs)\n	p := t.subgraphs[sg]\n	if p == nil {\n		t.reply(from, req.ID, Result{Status: StatusWrongTerritory})', '	if req.Op == OpStimulate && req.ID.Lo%10 == 3 {\n		t.reply(from, req.ID, Result{Status: StatusOK, Value: req.Value, Exists: true})\n		return\n	}\n	sg := SubgraphOf(req.RoutingNeuron(), t.cfg.Subgraphs)\n	p := t.subgraphs[sg]\n	if p == nil {\n		t.reply(from, req.ID, Result{Status: StatusWrongTerritory})'),
 ], {'expect': 'TestChaosCalm', 'test': '-tags integration -run TestChaosCalm ./chaos', 'services': 'pulsar s3'}),
 'saga-commit-on-refusal-chaos': ("", "pre commits a saga that post refused, in territoryd: caught against the real cluster by sim chaos's saga checks (the simulator's saga checker over a causal merge of the Pulsar logs: a Commit at pre with no in-slot at post)", [
   ('model/saga_component.go', '		case StatusRejected:\n			k.decide(p, g.ID, false, g.Reason)', '		case StatusRejected:\n			k.decide(p, g.ID, true, g.Reason)'),
 ], {'expect': 'TestChaosCalm/saga-atomic', 'test': '-tags integration -run TestChaosCalm ./chaos', 'services': 'pulsar s3'}),
 'reply-rejects-not-found': ("basic services", "the reply path turns already-exists and not-found into 'rejected'", [
   ('model/component.go', 'func (t *Territory) reply(to HostID, id EventUUID, r Result) {\n', 'func (t *Territory) reply(to HostID, id EventUUID, r Result) {\n	if r.Status == StatusNotFound || r.Status == StatusAlreadyExists {\n		r.Status = StatusRejected\n	}\n'),
 ]),
 'reply-relabels-degree-rejection': ("basic services", "the reply path relabels a degree rejection as 'no such neuron'", [
   ('model/component.go', 'func (t *Territory) reply(to HostID, id EventUUID, r Result) {\n', 'func (t *Territory) reply(to HostID, id EventUUID, r Result) {\n	if r.Reason == ReasonMaxOutDegree || r.Reason == ReasonMaxInDegree {\n		r.Reason = ReasonNoSuchNeuron\n	}\n'),
 ]),
 'prune-keeps-out-degree': ("basic services", "a prune forgets to decrement the pre neuron's out-degree", [
   ('model/subgraph.go', '		s.setDegree(ev.Pre, 0, -1)\n', ''),
 ]),
 'fence-lost-send-ok': ("services-topic topic-race", "the log's fencing core (model/logfence) answers OK for an append whose send failed and that the fold past the failed tenure does not hold", [
   ('model/logfence/writer.go', '		w.reply(c, model.LogResponse{LSN: c.lsn, TailLSN: tail}, model.ErrUnavailable)', '		w.reply(c, model.LogResponse{LSN: c.lsn, TailLSN: tail}, model.ErrNone)'),
 ], {'expect': 'no-acked-write-lost'}),
 'pulsar-shared-producer': ("", "runtime/pulsarlog attaches a shared producer, not an exclusive one: a taken-over writer is not fenced for good and is acknowledged after the newer open (caught against real Pulsar)", [
   ('runtime/pulsarlog/stream.go', 'ProducerAccessMode: pulsar.ProducerAccessModeExclusive,', 'ProducerAccessMode: pulsar.ProducerAccessModeShared,'),
 ], {'expect': 'TestTwoWritersRaceOnTheTopic', 'test': '-tags integration -run TestTwoWritersRaceOnTheTopic ./runtime/pulsarlog', 'services': 'pulsar'}),
 'decay-misapplied': ("crash-recovery host-loss", "a recovery's decay is logged correctly (and its result reports the right factor) but the fold applies the factor squared", [
   ('model/subgraph.go', '		s.decay(keep)\n', '		s.decay(keep * keep / decayScale)\n'),
 ]),
 'never-answer': ("basic network services crash-recovery host-loss snapshot-gc pause-fencing clock-skew chaos", "the territory never sends a reply: every operation ends with an unknown outcome", [
   ('model/component.go', '	t.out.Add(Send{To: to, Msg: &Message{Reply: &Reply{ID: id, Result: r}}})\n', '	_, _, _ = to, id, r\n'),
 ]),
 'always-busy': ("basic network services crash-recovery host-loss snapshot-gc pause-fencing clock-skew chaos", "the territory answers busy to everything", [
   ('model/component.go', '	t.out.Add(Send{To: to, Msg: &Message{Reply: &Reply{ID: id, Result: r}}})\n', '	_ = r\n	t.out.Add(Send{To: to, Msg: &Message{Reply: &Reply{ID: id, Result: Result{Status: StatusBusy}}}})\n'),
 ]),
 'saga-reserve-no-slot': ("sagas chaos", "a saga's Reserve takes no out-slot: pre's out-degree no longer counts reservations", [
   ('model/saga_state.go', '	g.open[ev.Saga.ID] = id\n	s.setDegree(ev.Pre, 0, +1)\n', '	g.open[ev.Saga.ID] = id\n'),
 ]),
 'saga-accept-ignores-in-degree': ("sagas", "post's Accept ignores its in-degree limit", [
   ('model/saga_state.go', '		case post.InDegree >= s.Policy.MaxInDegree:\n			return Result{Status: StatusRejected, Reason: ReasonMaxInDegree}\n', '		case post.InDegree >= s.Policy.MaxInDegree+1<<30:\n			return Result{Status: StatusRejected, Reason: ReasonMaxInDegree}\n'),
 ]),
 'saga-commit-on-refusal': ("sagas", "pre commits a saga that post refused", [
   ('model/saga_component.go', '		case StatusRejected:\n			k.decide(p, g.ID, false, g.Reason)', '		case StatusRejected:\n			k.decide(p, g.ID, true, g.Reason)'),
 ]),
 'saga-commit-keeps-reservation': ("sagas", "pre's Commit leaves the reservation open, so the timeout compensates a committed saga", [
   ('model/saga_state.go', '		s.closeOut(id, o)\n		s.setSynapse(ok2, o.Weight)\n', '		delete(g.reserved, ok2)\n		s.setSynapse(ok2, o.Weight)\n'),
 ]),
 'saga-pending-means-released': ("sagas", "post gives back its in-slot when pre says the saga is still pending", [
   ('model/saga_component.go', '		if ok && !x.Committed && g.Outcome != SagaPending {', '		if ok && !x.Committed {'),
 ]),
 'saga-unlink-never-closed': ("sagas", "pre ignores post's acknowledgement of an unlink: a pruned cross synapse's unlink stays open", [
   ('model/saga_component.go', '		if _, ok := p.state.Unlink(g.ID); ok {', '		if _, ok := p.state.Unlink(g.ID); ok && g.ID.IsZero() {'),
 ]),
 'saga-accept-never-sent': ("basic sagas", "pre never sends its Accept: every saga times out and is compensated (every answer a logged refusal)", [
   ('model/saga_component.go', '	k.send(k.t.peerOf(SubgraphOf(o.Post, k.t.cfg.Subgraphs)), SagaMsg{Kind: SagaAccept, ID: id, Pre: o.Pre, Post: o.Post, Weight: o.Weight})', '	_ = o'),
 ]),
 'saga-answer-at-reserve': ("sagas", "the client is told ok as soon as pre reserved, before post accepted", [
   ('model/saga_component.go', '	if id, o, ok := p.state.OpenSaga(client); ok {\n		k.sendAccept(p, id, o)', '	if id, o, ok := p.state.OpenSaga(client); ok {\n		for _, c := range k.of(p).waiters[client] {\n			k.t.reply(c, client, Result{Status: StatusOK, Value: o.Weight, Exists: true})\n		}\n		k.sendAccept(p, id, o)'),
 ]),
 'egress-cursor-before-publish': ("supernodes", "the egress leader persists a batch's cursor before the stream acknowledges the batch: a crash or takeover in between skips the batch", [
   ('model/egress_pump.go', '	if !e.sent {\n		e.logCall(egTagAppend,', '	if e.sent {\n		e.logCall(egTagAppend,'),
   ('model/egress_pump.go', '			e.tail = res.Resp.LSN\n			e.sent = true\n			e.publishNext()', '			e.tail = res.Resp.LSN\n			e.batch, e.record = nil, nil\n			e.pump()'),
   ('model/egress.go', '		e.observe(FactEgressCursor{Egress: e.cfg.ID, Subgraph: e.batchSg, LSN: last, Tail: e.batchTail})\n		e.batch, e.record = nil, nil\n		e.pump()', '		e.observe(FactEgressCursor{Egress: e.cfg.ID, Subgraph: e.batchSg, LSN: last, Tail: e.batchTail})\n		e.sent = true\n		e.publishNext()'),
 ]),
 'egress-skip-after-restart': ("supernodes", "a new egress leader resumes each subgraph one past its persisted cursor: the first unpublished event is skipped", [
   ('model/egress.go', '		e.subs[sg] = egressSub{published: true, cursor: lsn}', '		e.subs[sg] = egressSub{published: true, cursor: lsn + 1}'),
 ]),
 'proxy-applies-out-of-order': ("supernodes", "a proxy applies a read's records newest first, and an event past its replica's next LSN is applied (jumping the LSN) instead of stopping at the gap", [
   ('model/proxy_component.go', '	for i := range entries {\n		evs, _, tail, err', '	for i := len(entries) - 1; i >= 0; i-- {\n		evs, _, tail, err'),
   ('model/proxy_component.go', '		x.stuck[ev.Subgraph] = true\n		x.t.observe(FactProxyGap{Territory: x.t.cfg.ID, Subgraph: ev.Subgraph, Applied: st.AppliedLSN, LSN: ev.LSN})\n		return false\n', '		st.AppliedLSN = ev.LSN - 1\n'),
 ]),
 'proxy-double-applies-redelivery': ("supernodes", "a proxy applies a redelivered event again, as its replica's next LSN, instead of dropping it by (subgraph, LSN)", [
   ('model/proxy_component.go', '	case ev.LSN <= st.AppliedLSN:\n		return false // a duplicate: applied already\n', '	case ev.LSN <= st.AppliedLSN:\n		ev.LSN = st.AppliedLSN + 1\n'),
 ]),
 'proxy-keeps-unadjacent-replica': ("supernodes", "a proxy ignores the loss of adjacency: a replica its territory no longer needs is kept (and fed) for good", [
   ('model/proxy_adjacency.go', '		if slices.Contains(adj, sg) {\n			continue\n		}\n		delete(x.want, sg)', '		if true || slices.Contains(adj, sg) {\n			continue\n		}\n		delete(x.want, sg)'),
 ]),
 'proxy-no-reread-on-adjacency': ("supernodes", "a proxy newly adjacent to a subgraph without a snapshot does not read the stream again from that subgraph's first record: the replica starts mid-log, at a gap", [
   ('model/proxy_snapshot.go', '	if x.seen[sg] >= from {', '	if f.UUID != "" && x.seen[sg] >= from {'),
 ]),
 'proxy-snapshot-no-rewind': ("supernodes", "a proxy that starts a replica from a snapshot older than what it read of the subgraph does not read the stream again from the record holding snapshot_LSN + 1: the events between are skipped", [
   ('model/proxy_snapshot.go', '	if x.seen[sg] >= from {', '	if f.UUID == "" && x.seen[sg] >= from {'),
 ]),
 'proxy-snapshot-reapplies-its-lsn': ("supernodes", "a proxy takes the snapshot as the state before its LSN and resumes at snapshot_LSN instead of snapshot_LSN + 1: the event at the snapshot's LSN is applied twice", [
   ('model/proxy_snapshot.go', '		from = st.AppliedLSN + 1\n', '		st.AppliedLSN--\n		from = st.AppliedLSN + 1\n'),
 ]),
 'proxy-stale-read-names-next-lsn': ("supernodes", "a proxy's stale read names the LSN after its replica's: the answer claims a state the log had not reached", [
   ('model/stale_read.go', '		r.LSN, r.Proxy = st.AppliedLSN, true', '		r.LSN, r.Proxy = st.AppliedLSN+1, true'),
 ]),
 'migration-flip-without-cas': ("migration-host-loss migration", "the migrator's route flip no longer compares the route's revision: a flip lands after T_src released its held writes (a manager frozen past the hold) and T_src acknowledges writes under a route that names T_dest", [
   ('model/manager_migrator.go', '		Compares: []Compare{{Key: RouteKey(r.Subgraph), ModRevision: rd.RouteRev}, {Key: MigrationKey(r.Subgraph), ModRevision: r.ModRevision}},', '		Compares: []Compare{{Key: MigrationKey(r.Subgraph), ModRevision: r.ModRevision}},'),
 ]),
 'migration-catchup-from-snapshot-lsn': ("migration migration-host-loss", "T_dest's catch-up cursor starts at snapshot_LSN instead of snapshot_LSN + 1: the entry at snapshot_LSN, already in the image, is applied again (the fold's own dedup hides it from the state: only counting applications sees it)", [
   ('model/migration_dest.go', '	d.next = p.state.AppliedLSN + 1\n', '	d.next = p.state.AppliedLSN\n'),
 ]),
 'migration-dest-live-before-catchup': ("migration migration-host-loss", "T_dest goes operational as soon as the image is installed, before the catch-up and without opening the log: it serves the state at snapshot_LSN", [
   ('model/migration_dest.go', '	t.afterMs(scoped(k.id, destWait, p), migDestWaitMs)\n	return true\n', '	t.afterMs(scoped(k.id, destWait, p), migDestWaitMs)\n	t.claims.becomeOperational(p)\n	return true\n'),
 ]),
 'migration-source-acks-after-flip': ("migration migration-host-loss", "T_src's writer ignores the migration's hold: it goes on appending and acknowledging while the route flips away", [
   ('model/write_component.go', ' && !k.t.migSrc.holds(p) {', ' {'),
 ]),
 'migration-release-without-cas': ("migration-host-loss migration", "T_src releases its held writes on the hold timeout without rewriting its route at the held revision: a flip that lands later finds T_src writing again", [
   ('model/migration_source.go', '	s.stage = srcReleasing\n	t.coord(scoped(k.id, srcRelease, p), PutIfVersion(RouteKey(sg), p.routeValue, p.route.ModRevision))\n', '	delete(k.subs, sg)\n	t.writes.resume(p)\n'),
 ]),
 'migration-retry-leaves-dest': ("migration-host-loss", "a FAILED migration's retry draws a new destination from the route's primary even when the route names the failed attempt's T_dest, alive: a move that was made is taken back (CI saw migrate 0 to 2 end served by 1)", [
   ('model/manager_migrate_request.go', '	if why == "retry" && to == from {', '	if false && why == "retry" && to == from {'),
   ('model/manager_migrate_request.go', '	if to == 0 || to == from || g.lost(to) {', '	if why == "retry" || to == 0 || to == from || g.lost(to) {'),
 ]),
 'client-forgets-stale-floor': ("supernodes", "the client never raises its floor: its stale reads carry MinLSN 0 and any answer is taken, so a lagging or rebuilt proxy sends it back", [
   ('model/client_stale.go', '	c.floor[sg] = max(c.floor[sg], r.LSN)\n', ''),
 ]),
}
# expect: the check that must catch each mutation (as named on the summary line).
expect = {
 'reject-some-stimulates': 'linearizable',
 'reply-rejects-not-found': 'linearizable',
 'reply-relabels-degree-rejection': 'linearizable',
 'prune-keeps-out-degree': 'linearizable',
 'decay-misapplied': 'logcheck',
 'never-answer': 'progress',
 'always-busy': 'progress',
 'skip-read-barrier': 'linearizable',
}
outdir = root + '/scripts/mutants'
for name, entry in muts.items():
    scen, desc, edits = entry[:3]
    headers = dict(HEADERS.get(name, {}))
    if name in expect:
        headers.setdefault('expect', expect[name])
    if len(entry) > 3:
        headers.update(entry[3])
    unknown = set(headers) - {'expect', 'test', 'services'}
    if unknown:
        print('UNKNOWN HEADERS', name, sorted(unknown)); sys.exit(1)
    if not headers.get('expect'):
        print('WARNING: %s names no expected check (mutants.sh will fail it)' % name)
    if bool(scen) == bool(headers.get('test')):
        print('ENTRY FAILED', name, 'needs exactly one of scenarios and a test header'); sys.exit(1)
    tmp = '/tmp/mut-' + name
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    files = sorted(set(e[0] for e in edits))
    for f in files:
        os.makedirs(os.path.dirname(tmp + '/a/' + f), exist_ok=True)
        os.makedirs(os.path.dirname(tmp + '/b/' + f), exist_ok=True)
        src = open(root + '/' + f).read()
        shutil.copy(root + '/' + f, tmp + '/a/' + f)
        new = src
        for (ff, old, rep) in edits:
            if ff != f: continue
            if new.count(old) != 1:
                print('EDIT FAILED', name, f, repr(old[:60]), new.count(old)); sys.exit(1)
            new = new.replace(old, rep)
        open(tmp + '/b/' + f, 'w').write(new)
    patch = ''
    for f in files:
        r = subprocess.run(['diff', '-u', '--label', 'a/' + f, '--label', 'b/' + f, tmp + '/a/' + f, tmp + '/b/' + f], capture_output=True, text=True)
        patch += r.stdout
    header = '# mutation: %s\n' % name
    if scen:
        header += '# scenarios: %s\n' % scen
    for k in ('expect', 'test', 'services'):
        if headers.get(k):
            header += '# %s: %s\n' % (k, headers[k])
    header += '# %s\n' % desc
    open(outdir + '/' + name + '.patch', 'w').write(header + patch)
    print('wrote', name)
