// Package transport carries model.Messages between hosts over gRPC
// (proto/territory/v1/transport.proto).
//
// Every pair of processes talks over one long-lived bidirectional stream
// (Link) that the dialing side opens. A process dials the addresses of its
// static host table (host id -> address); a process that serves learns from
// each envelope it receives which stream leads back to the sender, so a client
// that does not listen (the CLI) gets its replies on the stream it opened.
// Hosts registered in this process are delivered to directly.
//
// Delivery is best effort, as the protocols assume: a message to a host with
// no route, or that finds a full queue or a broken stream, is dropped.
package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"territory/model"
	pb "territory/proto/territorypb"
)

// DeliverFunc hands a message to a local host; false if it was dropped.
type DeliverFunc func(from model.HostID, msg *model.Message) bool

// CoordReader answers read-only coordination calls for clients (CoordRead).
type CoordReader func(ctx context.Context, req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error)

// CoordWatcher serves route watches for clients (CoordWatch): it returns once
// the watch is established, then calls fn for every change under prefix until
// ctx is done (the contract of driver.Coord.Watch).
type CoordWatcher func(ctx context.Context, prefix string, fn func(model.WatchEvent)) error

// Config configures a transport.
type Config struct {
	// Listen is the address to serve on ("" = do not serve: a pure client).
	Listen string
	// Hosts is the static host table: host id -> address to dial.
	Hosts map[model.HostID]string
	// ServerTLS and ClientTLS enable TLS (nil: plaintext, for loopback and dev).
	ServerTLS *tls.Config
	ClientTLS *tls.Config
	// QueueSize bounds the messages queued per stream (default 1024).
	QueueSize int
	Logger    *slog.Logger
	// Info is what the Info RPC answers (nil: Info is unimplemented).
	Info *pb.InfoResponse
	// CoordRead serves the CoordRead RPC (nil: unimplemented).
	CoordRead CoordReader
	// CoordWatch serves the CoordWatch RPC; it needs CoordRead too, for the
	// current keys sent after the watch is established (nil: unimplemented).
	CoordWatch CoordWatcher
}

// Transport is one process's endpoint.
type Transport struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	srv    *grpc.Server
	lis    net.Listener
	wg     sync.WaitGroup

	mu      sync.Mutex
	local   map[model.HostID]DeliverFunc
	learned map[model.HostID]*link
	peers   map[string]*peer
	drops   uint64
}

// New creates the transport and, if cfg.Listen is set, starts serving.
func New(cfg Config) (*Transport, error) {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{cfg: cfg, ctx: ctx, cancel: cancel,
		local: map[model.HostID]DeliverFunc{}, learned: map[model.HostID]*link{}, peers: map[string]*peer{}}
	if cfg.Listen != "" {
		lis, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("transport: listen %s: %w", cfg.Listen, err)
		}
		var opts []grpc.ServerOption
		if cfg.ServerTLS != nil {
			opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.ServerTLS)))
		}
		t.lis = lis
		t.srv = grpc.NewServer(opts...)
		pb.RegisterTransportServer(t.srv, &server{t: t})
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			if err := t.srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				cfg.Logger.Error("transport: serve", "err", err)
			}
		}()
	}
	return t, nil
}

// Addr is the address the transport serves on ("" if it does not).
func (t *Transport) Addr() string {
	if t.lis == nil {
		return ""
	}
	return t.lis.Addr().String()
}

// Register makes host id local: messages to it are delivered by fn.
func (t *Transport) Register(id model.HostID, fn DeliverFunc) {
	t.mu.Lock()
	t.local[id] = fn
	t.mu.Unlock()
}

// Unregister removes a local host.
func (t *Transport) Unregister(id model.HostID) {
	t.mu.Lock()
	delete(t.local, id)
	t.mu.Unlock()
}

// SetHost adds or changes a static route.
func (t *Transport) SetHost(id model.HostID, addr string) {
	t.mu.Lock()
	if t.cfg.Hosts == nil {
		t.cfg.Hosts = map[model.HostID]string{}
	}
	t.cfg.Hosts[id] = addr
	t.mu.Unlock()
}

// Dropped counts messages dropped for want of a route or of queue space.
func (t *Transport) Dropped() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.drops
}

// Close stops serving and dialing. Queued messages are dropped.
func (t *Transport) Close() {
	t.cancel()
	if t.srv != nil {
		t.srv.Stop()
	}
	t.mu.Lock()
	for _, p := range t.peers {
		p.conn.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

// Send delivers msg from a local host to host to, best effort, without blocking.
func (t *Transport) Send(from, to model.HostID, msg *model.Message) {
	env, ok := toPB(from, to, msg)
	if !ok {
		t.cfg.Logger.Warn("transport: message kind not carried; dropped", "from", from, "to", to)
		t.drop()
		return
	}
	t.mu.Lock()
	if fn := t.local[to]; fn != nil {
		t.mu.Unlock()
		if !fn(from, msg) {
			t.drop()
		}
		return
	}
	var q chan *pb.Envelope
	if addr, ok := t.cfg.Hosts[to]; ok {
		q = t.peerLocked(addr).q
	} else if l := t.learned[to]; l != nil {
		q = l.q
	}
	t.mu.Unlock()
	if q == nil {
		t.drop()
		return
	}
	select {
	case q <- env:
	default:
		t.drop()
	}
}

func (t *Transport) drop() {
	t.mu.Lock()
	t.drops++
	t.mu.Unlock()
}

// deliverLocal hands an arriving envelope to its local host.
func (t *Transport) deliverLocal(env *pb.Envelope) {
	msg, err := fromPB(env)
	if err != nil {
		t.cfg.Logger.Warn("transport: invalid message dropped", "from", env.From, "to", env.To, "err", err)
		t.drop()
		return
	}
	t.mu.Lock()
	fn := t.local[model.HostID(env.To)]
	t.mu.Unlock()
	if fn == nil || !fn(model.HostID(env.From), msg) {
		t.drop()
	}
}

// ---- serving side ----

type link struct{ q chan *pb.Envelope }

type server struct {
	pb.UnimplementedTransportServer
	t *Transport
}

func (s *server) Link(stream grpc.BidiStreamingServer[pb.Envelope, pb.Envelope]) error {
	t := s.t
	l := &link{q: make(chan *pb.Envelope, t.cfg.QueueSize)}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		for {
			select {
			case env := <-l.q:
				if err := stream.Send(env); err != nil {
					cancel()
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	var learned []model.HostID
	defer func() {
		t.mu.Lock()
		for _, id := range learned {
			if t.learned[id] == l {
				delete(t.learned, id)
			}
		}
		t.mu.Unlock()
	}()
	for {
		env, err := stream.Recv()
		if err != nil {
			return nil
		}
		from := model.HostID(env.From)
		t.mu.Lock()
		if t.learned[from] != l {
			t.learned[from] = l
			learned = append(learned, from)
		}
		t.mu.Unlock()
		t.deliverLocal(env)
	}
}

func (s *server) Info(context.Context, *pb.InfoRequest) (*pb.InfoResponse, error) {
	if s.t.cfg.Info == nil {
		return s.UnimplementedTransportServer.Info(context.Background(), nil)
	}
	return s.t.cfg.Info, nil
}

func (s *server) CoordRead(ctx context.Context, req *pb.CoordReadRequest) (*pb.CoordReadResponse, error) {
	if s.t.cfg.CoordRead == nil {
		return s.UnimplementedTransportServer.CoordRead(ctx, req)
	}
	if err := routesOnly(req); err != nil {
		return nil, err
	}
	kind := model.CoordGet
	if req.Prefix {
		kind = model.CoordRange
	}
	resp, se, err := s.t.cfg.CoordRead(ctx, model.CoordRequest{Kind: kind, Key: req.Key})
	if err != nil {
		return nil, err
	}
	out := &pb.CoordReadResponse{Revision: resp.Revision, ServiceErr: uint32(se)}
	for _, kv := range resp.KVs {
		out.Kvs = append(out.Kvs, &pb.KV{Key: kv.Key, Value: kv.Value, ModRevision: kv.ModRevision, Lease: kv.Lease})
	}
	return out, nil
}

// readable are the prefixes a client may read through CoordRead: the routes
// (its routing cache), the migration records and the alive keys (territoryd
// status and migrate). The RPC runs with the daemon's credentials, so
// nothing else is served: not the snapshot records, the policy or any other
// key. A range must itself lie inside one (a range of "routes" or "" would
// reach further).
var readable = []string{model.RoutesPrefix, model.MigrationsPrefix, model.AlivePrefix}

func routesOnly(req *pb.CoordReadRequest) error {
	for _, p := range readable {
		if strings.HasPrefix(req.Key, p) {
			return nil
		}
	}
	what := "key"
	if req.Prefix {
		what = "prefix"
	}
	return status.Errorf(codes.PermissionDenied, "transport: coordination read of %s %q refused: clients may read only keys under %q", what, req.Key, readable)
}

// ---- dialing side ----

type peer struct {
	addr string
	conn *grpc.ClientConn
	q    chan *pb.Envelope
}

func dialOpts(tlsCfg *tls.Config) []grpc.DialOption {
	if tlsCfg != nil {
		return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg))}
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
}

// peerLocked returns the peer for addr, starting it on first use.
func (t *Transport) peerLocked(addr string) *peer {
	if p := t.peers[addr]; p != nil {
		return p
	}
	conn, err := grpc.NewClient(addr, dialOpts(t.cfg.ClientTLS)...)
	p := &peer{addr: addr, conn: conn, q: make(chan *pb.Envelope, t.cfg.QueueSize)}
	t.peers[addr] = p
	if err != nil {
		t.cfg.Logger.Error("transport: bad peer address", "addr", addr, "err", err)
		p.conn = nil
		return p // its queue fills and drops
	}
	t.wg.Add(1)
	go t.runPeer(p)
	return p
}

// runPeer keeps one Link stream to the peer open and writes its queue to it,
// reconnecting with capped backoff.
func (t *Transport) runPeer(p *peer) {
	defer t.wg.Done()
	client := pb.NewTransportClient(p.conn)
	backoff := 50 * time.Millisecond
	for t.ctx.Err() == nil {
		ctx, cancel := context.WithCancel(t.ctx)
		stream, err := client.Link(ctx)
		if err == nil {
			backoff = 50 * time.Millisecond
			go func() {
				for {
					env, err := stream.Recv()
					if err != nil {
						cancel()
						return
					}
					t.deliverLocal(env)
				}
			}()
		write:
			for {
				select {
				case env := <-p.q:
					if err := stream.Send(env); err != nil {
						break write
					}
				case <-ctx.Done():
					break write
				}
			}
		}
		cancel()
		if t.ctx.Err() != nil {
			return
		}
		t.cfg.Logger.Debug("transport: link down; reconnecting", "addr", p.addr, "err", err)
		select {
		case <-time.After(backoff):
		case <-t.ctx.Done():
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// ---- conversion ----

func toPB(from, to model.HostID, msg *model.Message) (*pb.Envelope, bool) {
	env := &pb.Envelope{From: uint32(from), To: uint32(to)}
	switch {
	case msg == nil:
		return nil, false
	case msg.Request != nil:
		r := msg.Request
		env.Body = &pb.Envelope_Request{Request: &pb.Request{Id: &pb.EventUUID{Hi: r.ID.Hi, Lo: r.ID.Lo}, Op: uint32(r.Op),
			Neuron: uint64(r.Neuron), Pre: uint64(r.Pre), Post: uint64(r.Post), Value: r.Value, Stale: r.Stale, MinLsn: r.MinLSN}}
	case msg.Reply != nil:
		r := msg.Reply
		env.Body = &pb.Envelope_Reply{Reply: &pb.Reply{Id: &pb.EventUUID{Hi: r.ID.Hi, Lo: r.ID.Lo},
			Result: &pb.Result{Status: uint32(r.Result.Status), Reason: uint32(r.Result.Reason), Value: r.Result.Value, Exists: r.Result.Exists,
				Lsn: r.Result.LSN, Proxy: r.Result.Proxy, InDegree: r.Result.InDegree, OutDegree: r.Result.OutDegree}}}
	case msg.Recovered != nil:
		r := msg.Recovered
		env.Body = &pb.Envelope_Recovered{Recovered: &pb.Recovered{Territory: uint32(r.Territory), Subgraph: uint32(r.Subgraph), Epoch: r.Epoch}}
	case msg.CommitRecovery != nil:
		r := msg.CommitRecovery
		env.Body = &pb.Envelope_CommitRecovery{CommitRecovery: &pb.CommitRecovery{Subgraph: uint32(r.Subgraph), Epoch: r.Epoch, TimestampMs: r.TimestampMs}}
	case msg.Saga != nil:
		g := msg.Saga
		env.Body = &pb.Envelope_Saga{Saga: &pb.SagaMsg{Kind: uint32(g.Kind), Id: &pb.EventUUID{Hi: g.ID.Hi, Lo: g.ID.Lo}, Pre: uint64(g.Pre), Post: uint64(g.Post),
			Weight: g.Weight, Status: uint32(g.Status), Reason: uint32(g.Reason), Release: g.Release, Unlink: g.Unlink, Outcome: uint32(g.Outcome)}}
	case msg.Migration != nil:
		env.Body = &pb.Envelope_Migration{Migration: migToPB(msg.Migration)}
	default:
		return nil, false
	}
	return env, true
}

func uuid(u *pb.EventUUID) model.EventUUID {
	return model.EventUUID{Hi: u.GetHi(), Lo: u.GetLo()}
}

// fromPB converts an arriving envelope; an error says what is wrong with it
// (the envelope is then dropped, like a lost one).
func fromPB(env *pb.Envelope) (*model.Message, error) {
	switch b := env.Body.(type) {
	case *pb.Envelope_Request:
		r := b.Request
		if r.Op > 255 {
			return nil, fmt.Errorf("request: op %d out of range", r.Op)
		}
		return &model.Message{Request: &model.Request{ID: uuid(r.Id), Op: model.OpKind(r.Op),
			Neuron: model.NeuronID(r.Neuron), Pre: model.NeuronID(r.Pre), Post: model.NeuronID(r.Post), Value: r.Value, Stale: r.Stale, MinLSN: r.MinLsn}}, nil
	case *pb.Envelope_Reply:
		r := b.Reply
		res := r.GetResult()
		if res.GetStatus() > 255 || res.GetReason() > 255 {
			return nil, fmt.Errorf("reply: status %d or reason %d out of range", res.GetStatus(), res.GetReason())
		}
		return &model.Message{Reply: &model.Reply{ID: uuid(r.Id), Result: model.Result{Status: model.Status(res.GetStatus()),
			Reason: model.Reason(res.GetReason()), Value: res.GetValue(), Exists: res.GetExists(), LSN: res.GetLsn(), Proxy: res.GetProxy(),
			InDegree: res.GetInDegree(), OutDegree: res.GetOutDegree()}}}, nil
	case *pb.Envelope_Recovered:
		r := b.Recovered
		return &model.Message{Recovered: &model.Recovered{Territory: model.HostID(r.Territory), Subgraph: model.SubgraphID(r.Subgraph), Epoch: r.Epoch}}, nil
	case *pb.Envelope_CommitRecovery:
		r := b.CommitRecovery
		return &model.Message{CommitRecovery: &model.CommitRecovery{Subgraph: model.SubgraphID(r.Subgraph), Epoch: r.Epoch, TimestampMs: r.TimestampMs}}, nil
	case *pb.Envelope_Saga:
		g := b.Saga
		if g.Kind == 0 || g.Kind > 255 || g.Status > 255 || g.Reason > 255 || g.Outcome > 255 || g.Id == nil {
			return nil, fmt.Errorf("saga: kind %d, status %d, reason %d, outcome %d or a missing id: not a saga message the core knows", g.Kind, g.Status, g.Reason, g.Outcome)
		}
		return &model.Message{Saga: &model.SagaMsg{Kind: model.SagaMsgKind(g.Kind), ID: uuid(g.Id), Pre: model.NeuronID(g.Pre), Post: model.NeuronID(g.Post),
			Weight: g.Weight, Status: model.Status(g.Status), Reason: model.Reason(g.Reason), Release: g.Release, Unlink: g.Unlink, Outcome: model.SagaOutcome(g.Outcome)}}, nil
	case *pb.Envelope_Migration:
		g, err := migFromPB(b.Migration)
		if err != nil {
			return nil, err
		}
		return &model.Message{Migration: g}, nil
	}
	return nil, fmt.Errorf("envelope without a body the core knows (%T)", env.Body)
}
