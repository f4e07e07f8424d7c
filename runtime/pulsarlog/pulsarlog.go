// Package pulsarlog is the production replicated log (RLS): one persistent
// Pulsar topic per subgraph stream, stored on BookKeeper, with the semantics
// of the simulated log in sim/replog.
//
// # Layout
//
// Stream s is the topic persistent://<tenant>/<namespace>/<prefix>-<s>. Each
// message is one of (territory/model/logfence, record.go):
//
//	data(epoch, LSN)  payload = the entry's data
//	open(epoch)       LogOpen: raises the stream's epoch
//	attach(epoch)     the writer of the current epoch took the producer again
//
// The contents of a stream are defined by a fold over its messages in topic
// order (logfence.Fold.Apply): a data message is the entry at LSN L iff its epoch
// is the highest opened so far and L is the tail + 1. Everything else
// (duplicates, orphans behind a hole, stale epochs) is skipped by every reader.
//
// # Who decides
//
// Everything below that decides who may write and what the log holds (the
// markers, the fold, writer tenures, the attach procedure, what an open or
// append answers) is the sans-IO state machine logfence.Writer, which the
// simulator also runs against its simulated topic (sim/pulsartopic). This
// package only performs the effects it asks for (create the exclusive
// producer, send, fold the topic with a Reader, unload through the admin
// API, read an entry back) and feeds the results in (stream.go).
//
// # Single writer and fencing
//
// Writes go through an exclusive producer (ProducerAccessModeExclusive); all
// writers of a stream use one producer name. The Go client v0.21.0 does not
// offer ExclusiveWithFencing (the protocol has it, the client's API does not),
// so a writer that finds the producer taken checks the log first (if a higher
// epoch has opened it gives up with ErrFenced, without disturbing the holder)
// and otherwise takes the producer over by unloading the topic: the holder is
// disconnected, and when its client reconnects it presents its topic epoch,
// which the broker finds older than the one the new producer started, so it is
// answered ProducerFenced and closed for good (PIP-68 topic epochs, persisted
// in the managed ledger, so this holds across broker restarts).
//
// A producer's tenure is the interval between its attachment and its
// detachment. The broker guarantees (and the adapter relies on exactly this):
//
//	(B1) tenures of exclusive producers of a topic are disjoint: a new one
//	     attaches only after the previous one is detached, and a detached one
//	     never attaches again (topic epoch check above);
//	(B2) every message a producer gets persisted is persisted inside its
//	     tenure, and the managed ledger appends in arrival order, so all
//	     messages of a tenure precede all messages of any later tenure;
//	(B3) an acknowledgement is sent after the entry is persisted on the ack
//	     quorum and made visible to readers (last-add-confirmed advanced).
//
// A writer becomes the writer of epoch E only by (1) attaching a producer,
// (2) sending its marker open(E) (or attach(E)) synchronously through it, and
// (3) folding the topic from a known checkpoint up to its marker's position w
// (known from the acknowledgement, hence readable by B3) and checking that the
// fold just before w admits it: no open above E for an open, exactly E for an
// attach. It then sends data(E, L) through the same producer; any producer
// failure ends the tenure for good (the adapter never lets the client
// transparently use a new producer: it repeats steps 1-3 as an attach).
//
// Claim: once open(E2) has returned, no data(E1) with E1 < E2 is persisted
// after its marker x, so every stale entry lies before x and is inside the
// tail the open returned. Proof: a data(E1) at position y was sent in a tenure
// T1 of a writer whose marker w1 < y was admitted. The messages of a tenure
// form a contiguous block of the topic (B1, B2). If y > x, T1's block holds
// w1 and y and not x (x is in T2's block), so w1 > x; then the fold before w1
// contains open(E2) with E2 > E1 and w1 was not admitted: contradiction.
// Checking after the marker (step 3) rather than reading the tail before
// sending it closes the window in which the previous holder's last message is
// persisted but not yet visible: whatever precedes w in the topic is read.
// The adapter acknowledges a data message only as the tail+1 of an unbroken
// tenure, so an acknowledged message is an entry.
//
// This rests on B1-B3, i.e. on Pulsar's exclusive-producer implementation
// (AbstractTopic.incrementTopicEpochIfNeeded on the broker; the Go client
// closing a producer whose reconnect is refused as fenced, verified in
// v0.21.0). Readers also skip data at a stale epoch, so readers agree with
// each other whatever happens, but an acknowledged stale append would be lost
// if B1 ever broke.
//
// So a fenced writer's append fails: its producer is fenced (or closed), the
// failure is resolved by re-attaching, which finds the higher open and answers
// ErrFenced; an append that was in flight is answered OK only if the fold
// shows it landed before the new marker (the new writer's tail includes it),
// and ErrFenced otherwise. A lower epoch never disturbs a higher writer's
// producer unless the log check races with the higher open; then the higher
// writer's next send fails, it re-attaches (its epoch is still the highest)
// and carries on.
//
// # Idempotent appends
//
// LogAppend(E, L, d): L == tail+1 is sent; L ≤ tail answers OK if the entry
// holds d (compared by SHA-256, from a cache of recent entries or by reading
// the entry) and ErrLSNConflict otherwise; L within the entries in flight
// joins the in-flight send if d is identical (conflict otherwise); L beyond
// gives ErrLSNGap. The LSN is in the message properties and in the sequence id
// (logfence.SeqID: gen<<40 | LSN) with broker deduplication on, so a re-sent message
// is dropped by the broker and acknowledged. A send that fails leaves an
// unknown outcome; the adapter re-attaches, folds, and answers from the log:
// OK if the entry is there with the same data, ErrFenced if a higher epoch
// opened, ErrUnavailable (definitely not written; the old tenure can write
// nothing any more) otherwise.
//
// # Reads
//
// LogRead folds from the nearest checkpoint at or below FromLSN-1: the
// in-process index (one checkpoint every indexStride LSNs, learned from
// acknowledgements and reads), or the advisory checkpoint kept in the topic's
// properties (written after each open and every checkpointEvery appends), or
// the beginning of the topic. Without a checkpoint below FromLSN the scan
// starts at the beginning and skips: O(FromLSN) messages. Sequential reads
// reuse one reader per stream. A read stops at the last message id the
// broker reports when it starts (so it sees every append acknowledged before
// it began), and TailLSN is the committed tail at that id: from the fold when
// the read got there, otherwise from the index's latest checkpoint, after
// folding the stretch between that checkpoint and the id once (later reads
// find it in the index).
//
// Readers are defensive about redelivery: a message at or before the last
// position folded is skipped. (pulsar-client-go v0.21.0 has a data race
// between Reader.Next and the reconnect after a topic unload on the last
// dequeued position; a stale read of it can only restart the reader earlier,
// which this skip absorbs. The race detector reports it in the concurrent
// writers test.)
package pulsarlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/rest"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/sirupsen/logrus"

	"territory/model"
)

// Config configures the log.
type Config struct {
	ServiceURL  string // pulsar://host:6650
	AdminURL    string // http://host:8080
	Tenant      string // default "public"
	Namespace   string // default "territory"
	TopicPrefix string // default "subgraph"; topics are <prefix>-<stream>

	// Bookkeeper placement of every ledger of the namespace (default 3/3/2).
	EnsembleSize int
	WriteQuorum  int
	AckQuorum    int

	// OperationTimeout bounds client operations and each request whose
	// context has no deadline (default 30 s).
	OperationTimeout time.Duration

	// AuthToken, if set, authenticates both the client and the admin API.
	// The caller reads it from the environment or a file.
	AuthToken string

	// TLSTrustCertsFile, if set, is the PEM file of the CAs trusted for
	// pulsar+ssl:// and https:// connections (client and admin API).
	TLSTrustCertsFile string

	// SkipNamespaceSetup leaves the namespace and its policies alone (they are
	// managed elsewhere); by default New creates the tenant and namespace if
	// missing and sets the policies listed on setupNamespace.
	SkipNamespaceSetup bool

	// Logger for the Pulsar client (default: warnings and errors to stderr).
	Logger plog.Logger
}

func (c *Config) defaults() error {
	if c.ServiceURL == "" {
		return errors.New("pulsarlog: ServiceURL is required")
	}
	if c.AdminURL == "" {
		return errors.New("pulsarlog: AdminURL is required")
	}
	if c.Tenant == "" {
		c.Tenant = "public"
	}
	if c.Namespace == "" {
		c.Namespace = "territory"
	}
	if c.TopicPrefix == "" {
		c.TopicPrefix = "subgraph"
	}
	if c.EnsembleSize == 0 && c.WriteQuorum == 0 && c.AckQuorum == 0 {
		c.EnsembleSize, c.WriteQuorum, c.AckQuorum = 3, 3, 2
	}
	if c.AckQuorum < 1 || c.WriteQuorum < c.AckQuorum || c.EnsembleSize < c.WriteQuorum {
		return fmt.Errorf("pulsarlog: need 1 <= ack quorum (%d) <= write quorum (%d) <= ensemble (%d)",
			c.AckQuorum, c.WriteQuorum, c.EnsembleSize)
	}
	if c.OperationTimeout <= 0 {
		c.OperationTimeout = 30 * time.Second
	}
	if strings.ContainsAny(c.Tenant+c.Namespace+c.TopicPrefix, "/:") {
		return fmt.Errorf("pulsarlog: tenant %q, namespace %q and prefix %q must not contain '/' or ':'",
			c.Tenant, c.Namespace, c.TopicPrefix)
	}
	return nil
}

// Log is the replicated log on Pulsar. It is safe for concurrent use; appends
// to one stream may be pipelined (each is answered on its own).
type Log struct {
	cfg    Config
	client pulsar.Client
	admin  pulsaradmin.Client

	mu      sync.Mutex
	streams map[uint32]*stream
	closed  bool

	// stalls counts the readers re-created because a scan towards a
	// message known to exist received nothing for scanStall (read.go).
	stalls atomic.Int64
}

// ReaderRestarts is how many stalled readers were re-created so far.
func (l *Log) ReaderRestarts() int64 { return l.stalls.Load() }

// New connects to Pulsar and, unless cfg.SkipNamespaceSetup, prepares the
// namespace.
func New(ctx context.Context, cfg Config) (*Log, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = defaultLogger()
	}
	opts := pulsar.ClientOptions{
		URL:               cfg.ServiceURL,
		OperationTimeout:  cfg.OperationTimeout,
		ConnectionTimeout: min(cfg.OperationTimeout, 10*time.Second),
		Logger:            logger,
	}
	acfg := &pulsaradmin.Config{WebServiceURL: cfg.AdminURL}
	if cfg.TLSTrustCertsFile != "" {
		opts.TLSTrustCertsFilePath = cfg.TLSTrustCertsFile
		acfg.TLSTrustCertsFilePath = cfg.TLSTrustCertsFile
	}
	if cfg.AuthToken != "" {
		opts.Authentication = pulsar.NewAuthenticationToken(cfg.AuthToken)
		acfg.Token = cfg.AuthToken
	}
	client, err := pulsar.NewClient(opts)
	if err != nil {
		return nil, fmt.Errorf("pulsarlog: client for %s: %w", cfg.ServiceURL, err)
	}
	admin, err := pulsaradmin.NewClient(acfg)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("pulsarlog: admin client for %s: %w", cfg.AdminURL, err)
	}
	l := &Log{cfg: cfg, client: client, admin: admin, streams: make(map[uint32]*stream)}
	if !cfg.SkipNamespaceSetup {
		if err := l.setupNamespace(ctx); err != nil {
			client.Close()
			return nil, err
		}
	}
	return l, nil
}

// defaultLogger logs the client's warnings and errors to stderr.
func defaultLogger() plog.Logger {
	lr := logrus.New()
	lr.SetOutput(os.Stderr)
	lr.SetLevel(logrus.WarnLevel)
	return plog.NewLoggerWithLogrus(lr)
}

// Ping checks that the broker answers on the binary protocol: a topic lookup
// of stream 0 (which creates nothing), bounded by ctx.
func (l *Log) Ping(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		_, err := l.client.TopicPartitions(l.Topic(0))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("pulsarlog: broker %s: lookup of %s: %w", l.cfg.ServiceURL, l.Topic(0), err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pulsarlog: broker %s: no answer to a topic lookup: %w", l.cfg.ServiceURL, ctx.Err())
	}
}

// Namespace returns "tenant/namespace".
func (l *Log) Namespace() string { return l.cfg.Tenant + "/" + l.cfg.Namespace }

// Topic returns the topic of a stream.
func (l *Log) Topic(stream uint32) string {
	return fmt.Sprintf("persistent://%s/%s/%s-%d", l.cfg.Tenant, l.cfg.Namespace, l.cfg.TopicPrefix, stream)
}

// setupNamespace creates the tenant and namespace if missing and sets the
// policies the log relies on: nothing is ever deleted (retention -1/-1, no
// TTL, inactive topics kept), deduplication on, and the bookkeeper
// ensemble / write quorum / ack quorum.
func (l *Log) setupNamespace(ctx context.Context) error {
	ns := l.Namespace()
	if _, err := l.admin.Tenants().GetWithContext(ctx, l.cfg.Tenant); err != nil {
		if !isNotFound(err) {
			return fmt.Errorf("pulsarlog: get tenant %s: %w", l.cfg.Tenant, err)
		}
		clusters, err := l.admin.Clusters().List()
		if err != nil {
			return fmt.Errorf("pulsarlog: list clusters for tenant %s: %w", l.cfg.Tenant, err)
		}
		err = l.admin.Tenants().CreateWithContext(ctx, utils.TenantData{Name: l.cfg.Tenant, AllowedClusters: clusters})
		if err != nil && !isConflict(err) {
			return fmt.Errorf("pulsarlog: create tenant %s: %w", l.cfg.Tenant, err)
		}
	}
	nss, err := l.admin.Namespaces().GetNamespacesWithContext(ctx, l.cfg.Tenant)
	if err != nil {
		return fmt.Errorf("pulsarlog: list namespaces of %s: %w", l.cfg.Tenant, err)
	}
	if !slices.Contains(nss, ns) {
		if err := l.admin.Namespaces().CreateNamespaceWithContext(ctx, ns); err != nil && !isConflict(err) {
			return fmt.Errorf("pulsarlog: create namespace %s: %w", ns, err)
		}
	}
	nsn, err := utils.GetNamespaceName(ns)
	if err != nil {
		return fmt.Errorf("pulsarlog: namespace name %s: %w", ns, err)
	}
	steps := []struct {
		what string
		do   func() error
	}{
		{"retention -1/-1", func() error {
			return l.admin.Namespaces().SetRetentionWithContext(ctx, ns, utils.NewRetentionPolicies(-1, -1))
		}},
		{"message TTL 0 (none)", func() error { return l.admin.Namespaces().SetNamespaceMessageTTLWithContext(ctx, ns, 0) }},
		{"inactive topic deletion off", func() error {
			mode := utils.DeleteWhenNoSubscriptions
			return l.admin.Namespaces().SetInactiveTopicPoliciesWithContext(ctx, *nsn,
				utils.NewInactiveTopicPolicies(&mode, -1, false))
		}},
		{"deduplication on", func() error { return l.admin.Namespaces().SetDeduplicationStatusWithContext(ctx, ns, true) }},
		{fmt.Sprintf("persistence %d/%d/%d", l.cfg.EnsembleSize, l.cfg.WriteQuorum, l.cfg.AckQuorum), func() error {
			return l.admin.Namespaces().SetPersistenceWithContext(ctx, ns,
				utils.NewPersistencePolicies(l.cfg.EnsembleSize, l.cfg.WriteQuorum, l.cfg.AckQuorum, 0))
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("pulsarlog: namespace %s: set %s: %w", ns, s.what, err)
		}
	}
	return nil
}

func restCode(err error) int {
	var re rest.Error
	if errors.As(err, &re) {
		return re.Code
	}
	var rp *rest.Error
	if errors.As(err, &rp) && rp != nil {
		return rp.Code
	}
	return 0
}

func isNotFound(err error) bool { return restCode(err) == 404 }
func isConflict(err error) bool { return restCode(err) == 409 }

// Do runs one request. A ServiceErr is a definite answer; a non-nil error
// means the outcome is unknown (transport failure or timeout): the operation
// may or may not have happened.
func (l *Log) Do(ctx context.Context, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
	s, err := l.stream(req.Stream)
	if err != nil {
		return model.LogResponse{}, model.ErrNone, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.cfg.OperationTimeout)
		defer cancel()
	}
	switch req.Kind {
	case model.LogOpen:
		return s.open(ctx, req.Epoch)
	case model.LogAppend:
		return s.append(ctx, req)
	case model.LogRead:
		resp, err := s.read(ctx, req.FromLSN, req.MaxEntries)
		if err != nil {
			return resp, model.ErrNone, fmt.Errorf("read stream %d from lsn %d: %w", req.Stream, req.FromLSN, err)
		}
		return resp, model.ErrNone, nil
	}
	return model.LogResponse{}, model.ErrNone, fmt.Errorf("pulsarlog: stream %d: unknown request kind %d", req.Stream, req.Kind)
}

var errClosed = errors.New("pulsarlog: log closed")

func (l *Log) stream(id uint32) (*stream, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errClosed
	}
	s := l.streams[id]
	if s == nil {
		s = newStream(l, id)
		l.streams[id] = s
	}
	return s, nil
}

// Close closes every producer (ending this process's tenures) and reader,
// then the client. Requests in flight fail.
func (l *Log) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	ss := make([]*stream, 0, len(l.streams))
	for _, s := range l.streams {
		ss = append(ss, s)
	}
	l.mu.Unlock()
	for _, s := range ss {
		s.close()
	}
	l.client.Close()
}
