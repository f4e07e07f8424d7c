package transport

import (
	"context"
	"fmt"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"territory/model"
	pb "territory/proto/territorypb"
)

// watchQueueEvents bounds the changes a daemon holds for one slow watching
// client. A client that falls this far behind loses its stream, reconnects
// and is sent the current keys again: a bounded queue and a resync instead
// of an unbounded buffer or a coordination watch stalled by one reader.
const watchQueueEvents = 4096

// CoordWatch streams the changes under a prefix of the routes: first a
// message saying the watch is established, then the current keys as of a
// read made after that (so no change between the two is missed), then every
// change newer than that read. A change at or below the read's revision is
// already in it and is not sent again (it would overwrite a newer value).
func (s *server) CoordWatch(req *pb.CoordWatchRequest, stream pb.Transport_CoordWatchServer) error {
	if s.t.cfg.CoordWatch == nil || s.t.cfg.CoordRead == nil {
		return s.UnimplementedTransportServer.CoordWatch(req, stream)
	}
	if err := routesOnly(&pb.CoordReadRequest{Key: req.Prefix, Prefix: true}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	evs := make(chan model.WatchEvent, watchQueueEvents)
	overflow := make(chan struct{})
	overflowed := false
	if err := s.t.cfg.CoordWatch(ctx, req.Prefix, func(ev model.WatchEvent) {
		if overflowed {
			return
		}
		select {
		case evs <- ev:
		default:
			overflowed = true // fn is called from one goroutine (driver.Coord.Watch)
			close(overflow)
		}
	}); err != nil {
		return status.Errorf(codes.Unavailable, "transport: watch %q: %v", req.Prefix, err)
	}
	if err := stream.Send(&pb.CoordWatchEvent{Established: true}); err != nil {
		return err
	}
	cur, se, err := s.t.cfg.CoordRead(ctx, model.CoordRequest{Kind: model.CoordRange, Key: req.Prefix})
	if err != nil || se != model.ErrNone {
		return status.Errorf(codes.Unavailable, "transport: watch %q: reading the current keys: %v (%v)", req.Prefix, err, se)
	}
	for _, kv := range cur.KVs {
		if err := stream.Send(&pb.CoordWatchEvent{Initial: true, Kv: kvToPB(kv)}); err != nil {
			return err
		}
	}
	if err := stream.Send(&pb.CoordWatchEvent{Synced: true}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-overflow:
			return status.Errorf(codes.ResourceExhausted, "transport: watch %q: the client fell %d changes behind; reconnect for the current keys", req.Prefix, watchQueueEvents)
		case ev := <-evs:
			if ev.KV.ModRevision <= cur.Revision {
				continue
			}
			if err := stream.Send(&pb.CoordWatchEvent{Deleted: ev.Deleted, Kv: kvToPB(ev.KV)}); err != nil {
				return err
			}
		}
	}
}

func kvToPB(kv model.KV) *pb.KV {
	return &pb.KV{Key: kv.Key, Value: kv.Value, ModRevision: kv.ModRevision, Lease: kv.Lease}
}

// Watch implements driver.Coord.Watch through the daemon's CoordWatch: it
// returns once the daemon has established the watch, then calls fn for the
// current keys and every change until ctx is done. A broken stream (the
// daemon restarted, the client fell behind) is reopened with backoff; each
// new stream starts with the current keys, and a key delivered before but
// absent from them is delivered as deleted, so a gap in the stream leaves no
// stale entry behind.
func (r *Remote) Watch(ctx context.Context, prefix string, fn func(model.WatchEvent)) error {
	w := &remoteWatch{r: r, prefix: prefix, fn: fn, known: map[string]bool{}}
	stream, err := w.open(ctx)
	if err != nil {
		return err
	}
	go w.follow(ctx, stream)
	return nil
}

type remoteWatch struct {
	r      *Remote
	prefix string
	fn     func(model.WatchEvent)
	known  map[string]bool // keys delivered as present
}

func (w *remoteWatch) open(ctx context.Context) (pb.Transport_CoordWatchClient, error) {
	stream, err := w.r.client.CoordWatch(ctx, &pb.CoordWatchRequest{Prefix: w.prefix})
	if err != nil {
		return nil, fmt.Errorf("watch %q: %w", w.prefix, err)
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, fmt.Errorf("watch %q: %w", w.prefix, err)
	}
	if !first.Established {
		return nil, fmt.Errorf("watch %q: the daemon's first message does not say the watch is established", w.prefix)
	}
	return stream, nil
}

// follow delivers one stream's events, and reopens it when it breaks.
func (w *remoteWatch) follow(ctx context.Context, stream pb.Transport_CoordWatchClient) {
	const minBackoff, maxBackoff = 100 * time.Millisecond, 2 * time.Second
	backoff := minBackoff
	for {
		w.drain(stream)
		for {
			if ctx.Err() != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			var err error
			if stream, err = w.open(ctx); err == nil {
				backoff = minBackoff
				break
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// drain delivers a stream's events until it breaks. Keys known from an
// earlier stream and not among this one's initial keys were deleted while no
// stream was open; they are delivered as deleted once the daemon says the
// initial keys are all sent (a stream that breaks before that proves nothing).
func (w *remoteWatch) drain(stream pb.Transport_CoordWatchClient) {
	initial := map[string]bool{}
	for {
		ev, err := stream.Recv()
		if err != nil {
			return
		}
		if ev.Synced {
			var gone []string
			for k := range w.known { // order: sorted below
				if !initial[k] {
					gone = append(gone, k)
				}
			}
			sort.Strings(gone)
			for _, k := range gone {
				delete(w.known, k)
				w.fn(model.WatchEvent{KV: model.KV{Key: k}, Deleted: true})
			}
			continue
		}
		if ev.Kv == nil {
			continue
		}
		if ev.Initial {
			initial[ev.Kv.Key] = true
		}
		kv := model.KV{Key: ev.Kv.Key, Value: ev.Kv.Value, ModRevision: ev.Kv.ModRevision, Lease: ev.Kv.Lease}
		if ev.Deleted {
			delete(w.known, kv.Key)
		} else {
			w.known[kv.Key] = true
		}
		w.fn(model.WatchEvent{KV: kv, Deleted: ev.Deleted})
	}
}
