// Package election elects one leader among the processes that run a
// control-plane role (the Territory Manager first), on etcd's
// concurrency.Session and concurrency.Election.
//
// # What leadership means here
//
// A candidate holds a session: an etcd lease it keeps alive. It campaigns by
// writing a key under Config.Prefix attached to that lease; the key with the
// lowest create revision is the leader. The leader runs the role's lead
// function with a context that is cancelled as soon as this process can tell
// that its leadership may be over:
//
//   - the session ended: the lease was revoked, or it expired because no
//     keep-alive was answered within its TTL (etcd client's own bookkeeping,
//     checked about once a second);
//   - the lease's conservative deadline passed: every TTL/3 the leader
//     refreshes the lease itself and treats it as lost at (time the refresh
//     was sent + TTL), which is never later than etcd's own expiry as long as
//     the two clocks run at the same rate, even when the process cannot reach
//     etcd at all;
//   - the leader key was deleted or replaced (someone resigned us, an
//     operator deleted it), or the watch on it broke (including the etcd
//     member losing its raft leader: WithRequireLeader);
//   - the caller's context was cancelled (shutdown).
//
// When lead returns the process resigns (deletes its key, revokes its lease)
// and campaigns again after a bounded, jittered backoff. On shutdown it
// resigns at once, so a successor takes over without waiting for the TTL.
//
// # What leadership does NOT mean: it is not fencing
//
// Leadership by lease is advisory. The guard cancels the lead context at or
// before the instant etcd's lease expires, and etcd only deletes the key (and
// so lets a successor in) in its next expiry pass, every 500 ms; but nothing
// makes the lead function stop in time. A stopped process (GC pause,
// SIGSTOP, a VM migration) notices nothing until it runs again, a clock that
// runs fast or slow skews the deadline, and writes already in flight complete
// after the context is cancelled. Two leaders can therefore act at the same
// time for a moment.
//
// The Territory Manager is safe anyway, because none of its writes relies on
// being the only leader:
//
//   - reassigning a route is a compare-and-swap on the route key's mod
//     revision (model.PutIfVersion): of two managers moving the same
//     subgraph, one CAS wins and the other fails and re-reads; and the new
//     primary's claim bumps the epoch, which fences the old writer on the log;
//   - snapshot GC deletes a record in a transaction that compares its mod
//     revision (an UPLOADING/VERIFYING/SUPERSEDED record that changed since it
//     was listed is left alone; COMMITTED ones are never touched), and deletes
//     a blob only after that transaction succeeded or when the blob had no
//     record at all for longer than the orphan period; deletes are idempotent;
//   - a TerritoryRecovered event is committed by the primary under a uuid
//     derived from (subgraph, epoch), so two managers answering the same
//     announcement commit one event;
//   - a new leader starts with empty memory of liveness and of GC candidates,
//     so it waits a full host-loss and grace period before it acts.
//
// So two managers overlapping for a moment can duplicate work, never corrupt
// state. A role that ever needs real fencing of its etcd writes should add
// Term's key and create revision as a compare to every transaction it makes:
// etcd then rejects writes from a leader whose key is gone (see Term).
package election

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// ErrNoLeader: no candidate holds the election.
var ErrNoLeader = concurrency.ErrElectionNoLeader

// ErrLostLeadership is the cause (context.Cause) of a lead context cancelled
// because leadership may be over, as opposed to the caller's shutdown.
var ErrLostLeadership = errors.New("election: leadership lost")

// Config configures one candidate.
type Config struct {
	// Prefix is the election's key prefix in etcd, e.g. "election/manager".
	// Every candidate of one role uses the same prefix.
	Prefix string
	// Identity is this candidate's value under the leader key: what Leader
	// reports (a host id, an address).
	Identity string
	// SessionTTLSeconds is the lease TTL: how long a dead leader keeps the
	// role. 0 means 10. etcd raises a TTL below its minimum (about 1.5 x the
	// election timeout, 2 s by default) to that minimum.
	SessionTTLSeconds int
	// MinBackoff and MaxBackoff bound the wait before campaigning again after
	// a failure or a lost term (0: 100 ms and 5 s).
	MinBackoff, MaxBackoff time.Duration
	// Logger receives transitions (nil: discard).
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.SessionTTLSeconds == 0 {
		c.SessionTTLSeconds = 10
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case strings.TrimRight(c.Prefix, "/") == "":
		return c, errors.New("election: Prefix is required")
	case c.Identity == "":
		return c, errors.New("election: Identity is required")
	case c.SessionTTLSeconds < 1:
		return c, fmt.Errorf("election: SessionTTLSeconds %d: must be positive", c.SessionTTLSeconds)
	case c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff:
		return c, fmt.Errorf("election: backoff %s..%s", c.MinBackoff, c.MaxBackoff)
	}
	c.Prefix = strings.TrimRight(c.Prefix, "/")
	return c, nil
}

// Term identifies one leadership term. Revision (the leader key's create
// revision) grows with every term of the election, so it orders terms and can
// serve as a fencing token: a transaction that compares
// CreateRevision(Key) == Revision only succeeds while this term's key exists.
type Term struct {
	Key      string
	Revision int64
	Lease    clientv3.LeaseID
	Identity string
}

type termKey struct{}

// TermOf returns the term of a lead context.
func TermOf(ctx context.Context) (Term, bool) {
	t, ok := ctx.Value(termKey{}).(Term)
	return t, ok
}

// LeaderInfo describes the current leader.
type LeaderInfo struct {
	Identity string
	Term
}

// Leader reads the current leader of the election under prefix (ErrNoLeader:
// none). It is a linearizable read: the answer was true at some instant during
// the call, and may be stale by the time it returns.
func Leader(ctx context.Context, cli *clientv3.Client, prefix string) (LeaderInfo, error) {
	prefix = strings.TrimRight(prefix, "/") + "/"
	resp, err := cli.Get(ctx, prefix, clientv3.WithFirstCreate()...)
	if err != nil {
		return LeaderInfo{}, err
	}
	if len(resp.Kvs) == 0 {
		return LeaderInfo{}, ErrNoLeader
	}
	kv := resp.Kvs[0]
	id := string(kv.Value)
	return LeaderInfo{Identity: id, Term: Term{Key: string(kv.Key), Revision: kv.CreateRevision,
		Lease: clientv3.LeaseID(kv.Lease), Identity: id}}, nil
}

// Run campaigns until ctx is cancelled. Whenever this candidate is elected it
// calls lead with a context that is cancelled when leadership may be lost
// (context.Cause is then ErrLostLeadership, wrapped with the reason) or when
// ctx is done; TermOf(leadCtx) names the term. lead must return promptly once
// its context is cancelled: Run resigns only after lead returned. If lead
// returns by itself (an error, or nil) the candidate resigns and campaigns
// again after a backoff.
//
// Run returns nil once ctx is cancelled and any leadership resigned, an error
// for an invalid Config, or an error if the etcd client is closed.
func Run(ctx context.Context, cli *clientv3.Client, cfg Config, lead func(ctx context.Context) error) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	c := &candidate{cli: cli, cfg: cfg, lead: lead, log: cfg.Logger.With("election", cfg.Prefix, "identity", cfg.Identity)}
	backoff := cfg.MinBackoff
	for {
		if ctx.Err() != nil {
			return nil
		}
		if cli.Ctx().Err() != nil {
			return errors.New("election: the etcd client is closed")
		}
		c.lastTerm = 0
		led, err := c.round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err != nil:
			c.log.Warn("election round ended", "err", err, "led", led)
		default:
			c.log.Info("election round ended", "led", led)
		}
		// A term that lasted resets the backoff; failing fast grows it.
		if c.lastTerm > cfg.MaxBackoff {
			backoff = cfg.MinBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, cfg.MaxBackoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

type candidate struct {
	cli  *clientv3.Client
	cfg  Config
	lead func(context.Context) error
	log  *slog.Logger
	// lastTerm is how long the last round led (0: it did not).
	lastTerm time.Duration
}

// cleanupTimeout bounds resigning and revoking when leaving a round.
const cleanupTimeout = 2 * time.Second

// round opens a session, campaigns, and leads if elected. It always leaves
// the session closed (lease revoked, or left to expire if etcd is unreachable).
func (c *candidate) round(ctx context.Context) (led bool, err error) {
	grantSent := time.Now()
	sess, err := concurrency.NewSession(c.cli, concurrency.WithTTL(c.cfg.SessionTTLSeconds), concurrency.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("session: %w", err)
	}
	defer func() {
		// Orphan stops the keep-alive; revoke with a fresh context, since ctx
		// may be cancelled (Session.Close would use it).
		sess.Orphan()
		rctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if _, rerr := c.cli.Revoke(rctx, sess.Lease()); rerr != nil && c.cli.Ctx().Err() == nil {
			c.log.Debug("revoking the session lease", "err", rerr)
		}
	}()

	// Campaign blocks until elected; sess.Ctx() ends it if the session dies.
	el := concurrency.NewElection(sess, c.cfg.Prefix)
	if err := el.Campaign(sess.Ctx(), c.cfg.Identity); err != nil {
		return false, fmt.Errorf("campaign: %w", err)
	}
	// Campaign only waits for older keys to go: check that ours is still
	// there (the lease may have expired meanwhile), and watch it from here.
	resp, err := c.cli.Get(sess.Ctx(), el.Key())
	if err != nil {
		return false, fmt.Errorf("checking the leader key: %w", err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != el.Rev() {
		return false, fmt.Errorf("%w: the leader key vanished during the campaign", ErrLostLeadership)
	}
	term := Term{Key: el.Key(), Revision: el.Rev(), Lease: sess.Lease(), Identity: c.cfg.Identity}

	lctx, lose := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	stopSess := context.AfterFunc(sess.Ctx(), func() {
		if ctx.Err() != nil {
			return // shutdown, not a loss
		}
		lose(fmt.Errorf("%w: the session ended (lease expired or revoked)", ErrLostLeadership))
	})
	wg.Go(func() { c.watchKey(lctx, lose, term, resp.Header.Revision) })
	wg.Go(func() { c.guardLease(lctx, lose, term.Lease, grantSent) })

	c.log.Info("elected", "term", term.Revision)
	elected := time.Now()
	err = c.lead(context.WithValue(lctx, termKey{}, term))
	why := context.Cause(lctx)
	lose(nil)
	stopSess()
	wg.Wait()
	c.lastTerm = time.Since(elected)
	c.log.Info("leadership over", "term", term.Revision, "lead_err", err, "cause", why)

	rctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if rerr := el.Resign(rctx); rerr != nil && c.cli.Ctx().Err() == nil {
		c.log.Debug("resigning", "err", rerr)
	}
	if err == nil && why != nil && errors.Is(why, ErrLostLeadership) {
		err = why
	}
	return true, err
}

// watchKey ends the term when the leader key is deleted or replaced, or the
// watch breaks (WithRequireLeader: also when the etcd member loses quorum).
func (c *candidate) watchKey(ctx context.Context, lose context.CancelCauseFunc, t Term, rev int64) {
	wch := c.cli.Watch(clientv3.WithRequireLeader(ctx), t.Key, clientv3.WithRev(rev+1))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			lose(fmt.Errorf("%w: watching the leader key: %v", ErrLostLeadership, err))
			return
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE || ev.Kv.CreateRevision != t.Revision {
				lose(fmt.Errorf("%w: the leader key was deleted", ErrLostLeadership))
				return
			}
		}
	}
	if ctx.Err() == nil {
		lose(fmt.Errorf("%w: the watch on the leader key closed", ErrLostLeadership))
	}
}

// guardLease ends the term at a conservative local deadline for the lease.
// etcd expires a lease no earlier than (time we sent the request that granted
// or refreshed it + its TTL), so the guard keeps that bound: the grant first,
// then a KeepAliveOnce of its own every TTL/3. A healthy lease keeps moving
// the deadline forward; a leader cut off from etcd stops at that deadline,
// which is at or before etcd's expiry as long as the two clocks run at the
// same rate. (The client's own keep-alive bookkeeping only notices about a
// second after its deadline, which it measures from when the answer arrived.)
func (c *candidate) guardLease(ctx context.Context, lose context.CancelCauseFunc, lease clientv3.LeaseID, grantSent time.Time) {
	ttl := time.Duration(c.cfg.SessionTTLSeconds) * time.Second
	every := ttl / 3
	deadline := grantSent.Add(ttl)
	// The first refresh may come after a long campaign, when the grant's
	// bound is long past: it gets its full time, the later ones do not.
	first := true
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		sent := time.Now()
		if !first && !sent.Before(deadline) {
			lose(fmt.Errorf("%w: the session lease was not confirmed before its deadline", ErrLostLeadership))
			return
		}
		qdl := sent.Add(every)
		if !first && deadline.Before(qdl) {
			qdl = deadline
		}
		first = false
		qctx, cancel := context.WithDeadline(ctx, qdl)
		resp, err := c.cli.KeepAliveOnce(qctx, lease)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			lose(fmt.Errorf("%w: the session lease expired", ErrLostLeadership))
			return
		case err == nil:
			if d := sent.Add(time.Duration(resp.TTL) * time.Second); d.After(deadline) {
				deadline = d
			}
		}
		now := time.Now()
		if !now.Before(deadline) {
			lose(fmt.Errorf("%w: the session lease was not confirmed before its deadline (%v)", ErrLostLeadership, err))
			return
		}
		next := sent.Add(every)
		if deadline.Before(next) {
			next = deadline
		}
		timer.Reset(max(next.Sub(now), 0))
	}
}
