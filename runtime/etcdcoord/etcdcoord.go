// Package etcdcoord is the coordination-store port (model.CoordRequest) on
// etcd's v3 client.
//
// Mapping: a model key's ModRevision is etcd's mod_revision (0: absent, which
// is what etcd compares an absent key's mod_revision against); CoordTxn is an
// etcd transaction whose compares are all `mod_revision == N`; leases are etcd
// leases (TTL rounded up to whole seconds; etcd may raise it to its minimum).
//
// Outcomes: an error etcd reports before applying a request is definite and
// comes back as a ServiceErr: ErrInvalid for the request itself (etcd's
// InvalidArgument: empty key, duplicate key in a branch, more than
// model.MaxTxnOps operations, more than model.MaxRequestBytes), ErrLeaseExpired
// for a lease not found, ErrUnavailable otherwise (permission, too many
// requests, ...); a deadline, a cancellation or a transport failure comes
// back as an error: the request may or may not have been applied.
package etcdcoord

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"

	"territory/model"
)

// Config connects to an etcd cluster.
type Config struct {
	Endpoints   []string
	DialTimeout time.Duration
	TLS         *tls.Config
	Username    string
	Password    string // a secret: never log it
}

// Coord is the coordination port on one etcd client.
type Coord struct {
	cli    *clientv3.Client
	own    bool
	logger *slog.Logger
}

// Dial connects to etcd.
func Dial(cfg Config, logger *slog.Logger) (*Coord, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: cfg.Endpoints, DialTimeout: cfg.DialTimeout, TLS: cfg.TLS,
		Username: cfg.Username, Password: cfg.Password,
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %v: %w", cfg.Endpoints, err)
	}
	c := New(cli, logger)
	c.own = true
	return c, nil
}

// New wraps an existing client (Close does not close it).
func New(cli *clientv3.Client, logger *slog.Logger) *Coord {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Coord{cli: cli, logger: logger}
}

// Client is the underlying etcd client.
func (c *Coord) Client() *clientv3.Client { return c.cli }

// Close closes the client if Dial made it.
func (c *Coord) Close() error {
	if c.own {
		return c.cli.Close()
	}
	return nil
}

// definite maps an etcd error to a ServiceErr when etcd certainly did not
// apply the request; ok is false when the outcome is unknown.
func definite(err error) (model.ServiceErr, bool) {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return 0, false
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return model.ErrLeaseExpired, true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		switch ee.Code() {
		case codes.InvalidArgument:
			// The request itself: an empty key, a key written twice in a
			// branch, too many operations, too large.
			return model.ErrInvalid, true
		case codes.FailedPrecondition, codes.NotFound, codes.OutOfRange,
			codes.PermissionDenied, codes.Unauthenticated, codes.ResourceExhausted, codes.AlreadyExists:
			return model.ErrUnavailable, true
		}
	}
	return 0, false
}

func (c *Coord) fail(what string, err error) (model.CoordResponse, model.ServiceErr, error) {
	if se, ok := definite(err); ok {
		return model.CoordResponse{}, se, nil
	}
	return model.CoordResponse{}, model.ErrNone, fmt.Errorf("etcd %s: %w", what, err)
}

func kvs(in []*mvccpb.KeyValue) []model.KV {
	if len(in) == 0 {
		return nil
	}
	out := make([]model.KV, len(in))
	for i, kv := range in {
		out[i] = model.KV{Key: string(kv.Key), Value: kv.Value, ModRevision: kv.ModRevision, Lease: kv.Lease}
	}
	return out
}

func ops(in []model.TxnOp) ([]clientv3.Op, error) {
	out := make([]clientv3.Op, 0, len(in))
	for _, op := range in {
		switch op.Kind {
		case model.TxnPut:
			var opts []clientv3.OpOption
			if op.Lease != 0 {
				opts = append(opts, clientv3.WithLease(clientv3.LeaseID(op.Lease)))
			}
			out = append(out, clientv3.OpPut(op.Key, string(op.Value), opts...))
		case model.TxnDelete:
			out = append(out, clientv3.OpDelete(op.Key))
		default:
			return nil, fmt.Errorf("unknown txn op kind %d", op.Kind)
		}
	}
	return out, nil
}

// Do runs one coordination request. CoordWatch is not a request/response
// call: use Watch.
func (c *Coord) Do(ctx context.Context, req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
	switch req.Kind {
	case model.CoordGet:
		r, err := c.cli.Get(ctx, req.Key)
		if err != nil {
			return c.fail("get", err)
		}
		return model.CoordResponse{Revision: r.Header.Revision, KVs: kvs(r.Kvs)}, model.ErrNone, nil
	case model.CoordRange:
		r, err := c.cli.Get(ctx, req.Key, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
		if err != nil {
			return c.fail("range", err)
		}
		return model.CoordResponse{Revision: r.Header.Revision, KVs: kvs(r.Kvs)}, model.ErrNone, nil
	case model.CoordTxn:
		// etcd's default limit, whatever this server's: a request the
		// default would refuse is refused here as well, as the simulator
		// does, so that a server with a larger limit hides no such request.
		if model.CoordRequestBytes(req) > model.MaxRequestBytes {
			return model.CoordResponse{}, model.ErrInvalid, nil
		}
		cmps := make([]clientv3.Cmp, len(req.Compares))
		for i, cp := range req.Compares {
			cmps[i] = clientv3.Compare(clientv3.ModRevision(cp.Key), "=", cp.ModRevision)
		}
		then, err := ops(req.Then)
		if err != nil {
			return model.CoordResponse{}, model.ErrUnavailable, nil
		}
		els, err := ops(req.Else)
		if err != nil {
			return model.CoordResponse{}, model.ErrUnavailable, nil
		}
		r, err := c.cli.Txn(ctx).If(cmps...).Then(then...).Else(els...).Commit()
		if err != nil {
			return c.fail("txn", err)
		}
		return model.CoordResponse{Revision: r.Header.Revision, Succeeded: r.Succeeded}, model.ErrNone, nil
	case model.CoordLeaseGrant:
		ttl := max((req.TTLMs+999)/1000, 1)
		r, err := c.cli.Grant(ctx, ttl)
		if err != nil {
			return c.fail("lease grant", err)
		}
		return model.CoordResponse{Revision: r.Revision, Lease: int64(r.ID)}, model.ErrNone, nil
	case model.CoordLeaseKeepAlive:
		r, err := c.cli.KeepAliveOnce(ctx, clientv3.LeaseID(req.Lease))
		if err != nil {
			return c.fail("lease keepalive", err)
		}
		return model.CoordResponse{Revision: r.Revision, Lease: int64(r.ID)}, model.ErrNone, nil
	case model.CoordLeaseRevoke:
		r, err := c.cli.Revoke(ctx, clientv3.LeaseID(req.Lease))
		if err != nil {
			return c.fail("lease revoke", err)
		}
		return model.CoordResponse{Revision: r.Header.Revision}, model.ErrNone, nil
	case model.CoordWatch:
		return model.CoordResponse{}, model.ErrNone, errors.New("etcd: CoordWatch goes through Watch, not Do")
	}
	return model.CoordResponse{}, model.ErrNone, fmt.Errorf("etcd: unknown request kind %d", req.Kind)
}

// Watch watches every key under prefix. It returns once etcd has created the
// watch (or with ctx's error), then calls fn for every change, in revision
// order, from its own goroutine, until ctx is done. A broken watch stream is
// resumed from the revision after the last event; if etcd has compacted that
// revision away the gap is logged and the watch resumes from the present.
func (c *Coord) Watch(ctx context.Context, prefix string, fn func(model.WatchEvent)) error {
	ctx = clientv3.WithRequireLeader(ctx)
	// Each attempt has its own context, so that giving up on a broken stream
	// also releases it.
	var cancel context.CancelFunc = func() {}
	start := func(rev int64) clientv3.WatchChan {
		cancel()
		var wctx context.Context
		wctx, cancel = context.WithCancel(ctx)
		opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCreatedNotify()}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		return c.cli.Watch(wctx, prefix, opts...)
	}
	wch := start(0)
	var next int64
	select {
	case r, ok := <-wch:
		if !ok || r.Err() != nil {
			cancel()
			if !ok {
				return fmt.Errorf("etcd watch %q: %w", prefix, context.Cause(ctx))
			}
			return fmt.Errorf("etcd watch %q: %w", prefix, r.Err())
		}
		next = r.Header.Revision + 1
	case <-ctx.Done():
		cancel()
		return ctx.Err()
	}
	go func() {
		defer func() { cancel() }()
		for {
			for r := range wch {
				if r.CompactRevision > 0 {
					c.logger.Warn("etcd watch: events compacted away; resuming from the present", "prefix", prefix, "compact_revision", r.CompactRevision)
					next = 0
					break
				}
				if err := r.Err(); err != nil {
					c.logger.Warn("etcd watch broke; resuming", "prefix", prefix, "err", err)
					break
				}
				for _, ev := range r.Events {
					kv := ev.Kv
					fn(model.WatchEvent{KV: model.KV{Key: string(kv.Key), Value: kv.Value, ModRevision: kv.ModRevision, Lease: kv.Lease},
						Deleted: ev.Type == clientv3.EventTypeDelete})
					next = kv.ModRevision + 1
				}
			}
			if ctx.Err() != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			wch = start(next)
		}
	}()
	return nil
}
