package sim

import (
	"fmt"
	"strings"

	"territory/model"
	"territory/sim/invariants"
)

// migrationChecker guards migration-transitions over the coordination store's
// history (every CoordApplied), not over what the manager says: each write to
// a key under model.MigrationsPrefix must take the record along the seed's
// diagram (model.MigrationTransition) or be an in-place progress update of
// CATCHUP_STREAMING; the migration epoch changes only on a retry (FAILED ->
// PENDING), where it must grow and the attempt count must grow by one, and
// never past model.MigrationMaxAttempts; a retry never starts from the failed
// attempt's T_dest (the route names it only if the flip landed, and then the
// move is made: the manager removes the record instead). A value that is not a record is a
// violation too: nothing but the manager writes there.
type migrationChecker struct {
	last   map[string]model.MigrationRecord // by key: the record as last written (absent: none)
	lastUs map[string]int64                 // by key: when it was last written
}

// migrationStuckMs bounds how long a record may stay unchanged once faults
// heal: the longest phase (CATCHUP_STREAMING, 15 s by default) plus the
// longest retry backoff, with room to spare. migration-terminates.
const migrationStuckMs = 30_000

func newMigrationChecker(*View) Checker {
	return &migrationChecker{last: map[string]model.MigrationRecord{}, lastUs: map[string]int64{}}
}

func (*migrationChecker) Name() string { return "migration" }

func (c *migrationChecker) Observe(v *View, e BusEvent) {
	ca, ok := e.(CoordApplied)
	if !ok || ca.Err != model.ErrNone || ca.Req.Kind != model.CoordTxn {
		return
	}
	ops := ca.Req.Then
	if !ca.Resp.Succeeded {
		ops = ca.Req.Else
	}
	for _, op := range ops {
		if strings.HasPrefix(op.Key, model.MigrationsPrefix) {
			c.write(v, op)
		}
	}
}

func (c *migrationChecker) write(v *View, op model.TxnOp) {
	c.lastUs[op.Key] = v.NowUs()
	prev, had := c.last[op.Key]
	var from model.MigrationState
	if had {
		from = prev.State
	}
	if op.Kind == model.TxnDelete {
		if !had {
			return // deleting nothing changes nothing
		}
		delete(c.last, op.Key)
		if !model.MigrationTransition(from, 0) {
			v.Violate(invariants.MigrationTransitions, "%s deleted in %s (only a COMMITTED or FAILED record ends)", op.Key, from)
		}
		return
	}
	next, err := model.ParseMigrationRecord(model.KV{Key: op.Key, Value: op.Value})
	if err != nil {
		v.Violate(invariants.MigrationTransitions, "%s: a write that is not a migration record: %v", op.Key, err)
		return
	}
	c.last[op.Key] = next
	switch {
	case model.MigrationProgress(from, next.State):
		if next.Epoch != prev.Epoch || next.AckedLSN < prev.AckedLSN {
			v.Violate(invariants.MigrationTransitions, "%s: progress update of %s changed epoch %d -> %d or moved acked_lsn back %d -> %d",
				op.Key, from, prev.Epoch, next.Epoch, prev.AckedLSN, next.AckedLSN)
		}
		return
	case !model.MigrationTransition(from, next.State):
		v.Violate(invariants.MigrationTransitions, "%s: %s -> %s is not a transition of the migration state machine", op.Key, stateName(from), next.State)
		return
	}
	switch {
	case from == model.MigFailed: // a retry
		if next.Epoch <= prev.Epoch || next.Attempts != prev.Attempts+1 || next.Attempts > model.MigrationMaxAttempts {
			v.Violate(invariants.MigrationTransitions, "%s: retry from epoch %d attempt %d to epoch %d attempt %d (the epoch must grow, attempts by one, at most %d)",
				op.Key, prev.Epoch, prev.Attempts, next.Epoch, next.Attempts, model.MigrationMaxAttempts)
		}
		if prev.To != 0 && next.From == prev.To {
			// The route named the failed attempt's T_dest, serving: the
			// move was made, and a retry from there takes it back.
			v.Violate(invariants.MigrationTransitions, "%s: the retry moves the subgraph away from the failed attempt's T_dest %d (to %d)", op.Key, prev.To, next.To)
		}
	case had && next.Epoch != prev.Epoch:
		v.Violate(invariants.MigrationTransitions, "%s: %s -> %s changed the migration epoch %d -> %d outside a retry", op.Key, from, next.State, prev.Epoch, next.Epoch)
	}
}

func stateName(s model.MigrationState) string {
	if s == 0 {
		return "(no record)"
	}
	return s.String()
}

// Final: every record still in the store must have changed within
// migrationStuckMs of the end, if faults healed that long before it.
func (c *migrationChecker) Final(v *View) []invariants.Violation {
	end := v.NowUs()
	if end-v.Config().HealedMs()*1000 < migrationStuckMs*1000 {
		return nil
	}
	var out []invariants.Violation
	for _, kv := range v.CoordPeekPrefix(model.MigrationsPrefix) {
		at, seen := c.lastUs[kv.Key]
		if !seen || end-at > migrationStuckMs*1000 {
			out = append(out, invariants.Violation{Invariant: invariants.MigrationTerminates, AtUs: end,
				Detail: fmt.Sprintf("%s = %q unchanged since %.3fs (more than %d ms before the end, faults healed at %d ms)", kv.Key, kv.Value, float64(at)/1e6, migrationStuckMs, v.Config().HealedMs())})
		}
	}
	return out
}
