package driver

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"territory/model"
)

// Client runs a model.Client under a driver and turns its operations into
// blocking calls.
type Client struct {
	d       *Driver
	c       *model.Client
	metrics *Metrics
	session uint64
	waiters map[model.EventUUID]chan model.FactOpDone // owner-only
	started map[model.EventUUID]time.Time             // owner-only
}

// NewSession returns a random, non-zero session: the high half of every
// event_uuid a client incarnation makes. It must never repeat across
// incarnations (the territories' dedup tables outlive processes), so it is
// drawn from crypto/rand.
func NewSession() uint64 {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err)
		}
		if s := binary.LittleEndian.Uint64(b[:]); s != 0 {
			return s
		}
	}
}

type jitter struct{}

func (jitter) Uint64() uint64 { return mrand.Uint64() }

// NewClient builds a client node and its driver. cfg.Node and cfg.Observer
// are set here (a caller's Observer still sees every fact).
func NewClient(ccfg model.ClientConfig, cfg Config) (*Client, error) {
	c, err := model.NewClient(ccfg, jitter{})
	if err != nil {
		return nil, err
	}
	h := &Client{c: c, metrics: cfg.Metrics, session: ccfg.Session, waiters: map[model.EventUUID]chan model.FactOpDone{}, started: map[model.EventUUID]time.Time{}}
	user := cfg.Observer
	cfg.Node, cfg.ID = c, ccfg.ID
	cfg.Observer = func(id model.HostID, f model.Fact) {
		if done, ok := f.(model.FactOpDone); ok {
			if ch := h.waiters[done.Request.ID]; ch != nil {
				delete(h.waiters, done.Request.ID)
				status := done.Result.Status.String()
				if done.Unknown {
					status = "unknown"
				}
				h.metrics.op(done.Request.Op.String(), status, time.Since(h.started[done.Request.ID]))
				delete(h.started, done.Request.ID)
				ch <- done
			}
		}
		if user != nil {
			user(id, f)
		}
	}
	if h.d, err = New(cfg); err != nil {
		return nil, err
	}
	return h, nil
}

// Driver is the client's driver (Run it).
func (h *Client) Driver() *Driver { return h.d }

// ErrUnknownOutcome: the client gave up without a final answer; the write may
// or may not have happened.
var ErrUnknownOutcome = errors.New("outcome unknown: no final answer before the operation's deadline")

// Do runs one operation (req.ID is assigned here) and waits for its final
// answer. It returns ErrUnknownOutcome if the client gave up.
func (h *Client) Do(ctx context.Context, req model.Request) (model.Request, model.Result, error) {
	req.ID = model.EventUUID{}
	return h.do(ctx, req)
}

// DoID runs one operation under the event_uuid the caller chose, whose high
// half must be this client's session (model.ClientConfig.Session): a caller
// that submits the same operation again, in a later process say, gets the
// store's answer to the first (from the subgraph's dedup table) instead of a
// second application. Ids must not be reused for different operations, and
// one id may be in flight only once per client.
func (h *Client) DoID(ctx context.Context, req model.Request) (model.Request, model.Result, error) {
	if req.ID.IsZero() || req.ID.Hi != h.session {
		return req, model.Result{}, fmt.Errorf("request id %s is not of this client's session %016x", req.ID, h.session)
	}
	return h.do(ctx, req)
}

func (h *Client) do(ctx context.Context, req model.Request) (model.Request, model.Result, error) {
	ch := make(chan model.FactOpDone, 1)
	var dup bool
	err := h.d.Exec(ctx, func(step func(model.Input)) {
		if req.ID.IsZero() {
			req.ID = h.c.NewID()
		} else if h.waiters[req.ID] != nil {
			dup = true
			return
		}
		h.waiters[req.ID] = ch
		h.started[req.ID] = time.Now()
		step(model.Submit{Req: req})
	})
	if err != nil {
		return req, model.Result{}, err
	}
	if dup {
		return req, model.Result{}, fmt.Errorf("request %s is already in flight on this client", req.ID)
	}
	select {
	case done := <-ch:
		if done.Unknown {
			return done.Request, model.Result{}, ErrUnknownOutcome
		}
		return done.Request, done.Result, nil
	case <-ctx.Done():
		return req, model.Result{}, fmt.Errorf("%w (the operation may still complete)", ctx.Err())
	case <-h.d.Done():
		return req, model.Result{}, ErrStopped
	}
}
