package replog

import (
	"errors"
	"math"
	"testing"

	"territory/conformance"
	"territory/model"
	"territory/sim/kernel"
)

// simLog runs the log suite on the simulated bookies. The log is event
// driven: Do issues the request and runs the kernel until its callback
// fires; Send issues it (or not: the request is lost) and does not wait, so
// its acknowledgements are processed by whatever runs the kernel next.
type simLog struct {
	k    *kernel.Kernel
	l    *Log
	lose conformance.Alternate
}

func newSimLog(t testing.TB) *simLog {
	k := kernel.New(1, 10_000_000)
	l, err := New(k, k.Stream("replog"), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return &simLog{k: k, l: l}
}

// Client: every process talks to the one simulated broker.
func (s *simLog) Client() conformance.LogClient { return s }

func (s *simLog) Do(req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
	var (
		resp model.LogResponse
		serr model.ServiceErr
		done bool
	)
	s.l.Do(req, func(r model.LogResponse, e model.ServiceErr) {
		resp, serr, done = r, e, true
		s.k.Stop()
	})
	if err := s.k.Run(math.MaxInt64); err != nil {
		return resp, serr, err
	}
	if !done {
		return resp, serr, errors.New("replog: the kernel ran dry without an answer")
	}
	return resp, serr, nil
}

func (s *simLog) Send(req model.LogRequest) {
	if s.lose.AnswerLost() {
		s.l.Do(req, func(model.LogResponse, model.ServiceErr) {})
	}
}

// LoseNode crashes the first bookie of the stream's ensemble.
func (s *simLog) LoseNode(stream uint32) error {
	s.l.CrashBookie(s.l.Ensemble(stream)[0])
	return nil
}

// Restart crashes every bookie and restarts it with its disk (the simulated
// broker keeps no state of its own beyond what the bookies hold).
func (s *simLog) Restart() error {
	for i := range s.l.Bookies() {
		s.l.CrashBookie(i)
	}
	for i := range s.l.Bookies() {
		s.l.RestartBookie(i)
	}
	return nil
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.LogCases(), nil, func(t *testing.T) conformance.LogService { return newSimLog(t) })
}

// ---- planted violations: each broken log must fail the named cases ----

// brokenLog wraps the simulated log with one defect.
type brokenLog struct {
	*simLog
	exceptions map[conformance.Exception]string
	do         func(s *simLog, req model.LogRequest) (model.LogResponse, model.ServiceErr, error)
	send       func(b *brokenLog, req model.LogRequest)
	held       []model.LogRequest
}

func (b *brokenLog) Client() conformance.LogClient { return b }

func (b *brokenLog) Exceptions() map[conformance.Exception]string { return b.exceptions }

func (b *brokenLog) Do(req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
	r, se, err := b.do(b.simLog, req)
	if req.Kind == model.LogOpen && len(b.held) > 0 {
		// A lost append that lands after a later open, at the new epoch.
		for _, h := range b.held {
			h.Epoch = b.l.Epoch(h.Stream)
			h.LSN = b.l.Committed(h.Stream)[len(b.l.Committed(h.Stream))-1].LSN + 1
			b.simLog.Do(h)
		}
		b.held = nil
	}
	return r, se, err
}

func (b *brokenLog) Send(req model.LogRequest) {
	if b.send != nil {
		b.send(b, req)
		return
	}
	b.simLog.Send(req)
}

// fencedRetryOK answers a fenced writer's retry of a committed entry with the
// same data OK (what runtime/pulsarlog may do, declared there).
func fencedRetryOK(s *simLog, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
	r, se, err := s.Do(req)
	if c := s.l.Committed(req.Stream); req.Kind == model.LogAppend && se == model.ErrFenced &&
		req.LSN <= uint64(len(c)) && string(c[req.LSN-1].Data) == string(req.Data) {
		return model.LogResponse{LSN: req.LSN, TailLSN: uint64(len(c))}, model.ErrNone, err
	}
	return r, se, err
}

func plain(s *simLog, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
	return s.Do(req)
}

func TestConformancePlanted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cases []string
		do    func(s *simLog, req model.LogRequest) (model.LogResponse, model.ServiceErr, error)
		send  func(b *brokenLog, req model.LogRequest)
		exc   conformance.Exception
	}{
		{name: "a fenced writer's retry answered OK, undeclared", cases: []string{"lost-ack-then-fence"},
			do: fencedRetryOK},
		{name: "a fenced writer's retry answered OK when it had not landed, though declared", cases: []string{"lost-ack-then-fence"},
			exc: conformance.FencedRetryMayAnswerOK,
			do: func(s *simLog, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
				r, se, err := s.Do(req)
				if req.Kind == model.LogAppend && se == model.ErrFenced {
					return model.LogResponse{LSN: req.LSN, TailLSN: req.LSN}, model.ErrNone, err
				}
				return r, se, err
			}},
		{name: "no fencing: appends take the stream's epoch", cases: []string{"fencing", "lost-ack-then-fence"},
			do: func(s *simLog, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
				if req.Kind == model.LogAppend {
					req.Epoch = s.l.Epoch(req.Stream)
				}
				if req.Kind == model.LogOpen && req.Epoch < s.l.Epoch(req.Stream) {
					req.Epoch = s.l.Epoch(req.Stream)
				}
				return s.Do(req)
			}},
		{name: "retries refused (of committed or in-flight entries)", cases: []string{"append-rules", "lost-ack-retry"},
			do: func(s *simLog, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
				if req.Kind == model.LogAppend && req.LSN <= uint64(len(s.l.Committed(req.Stream))+s.l.Pending(req.Stream)) {
					return model.LogResponse{LSN: req.LSN}, model.ErrLSNConflict, nil
				}
				return s.Do(req)
			}},
		{name: "a lost append lands after the fence", cases: []string{"lost-ack-then-fence"},
			send: func(b *brokenLog, req model.LogRequest) { b.held = append(b.held, req) }},
		{name: "reads ignore FromLSN", cases: []string{"append-read", "read-paging"},
			do: func(s *simLog, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
				if req.Kind == model.LogRead {
					req.FromLSN = 1
				}
				return s.Do(req)
			}},
		{name: "reads ignore MaxEntries", cases: []string{"read-paging"},
			do: func(s *simLog, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
				if req.Kind == model.LogRead {
					req.MaxEntries = 1000
				}
				return s.Do(req)
			}},
		{name: "open answers a stale tail", cases: []string{"fencing", "new-client-reads"},
			do: func(s *simLog, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
				r, se, err := s.Do(req)
				if req.Kind == model.LogOpen && r.TailLSN > 0 {
					r.TailLSN--
				}
				return r, se, err
			}},
		{name: "gap accepted as a conflict", cases: []string{"append-rules"},
			do: func(s *simLog, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
				r, se, err := s.Do(req)
				if se == model.ErrLSNGap {
					se = model.ErrLSNConflict
				}
				return r, se, err
			}},
		{name: "one stream's open fences all", cases: []string{"streams-independent"},
			do: func(s *simLog, req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
				if req.Kind == model.LogOpen {
					for _, id := range s.l.Streams() {
						if id != req.Stream && s.l.Epoch(id) < req.Epoch && len(s.l.Committed(id)) > 0 {
							s.Do(model.LogRequest{Kind: model.LogOpen, Stream: id, Epoch: req.Epoch})
						}
					}
				}
				return s.Do(req)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range tc.cases {
				do := tc.do
				if do == nil {
					do = plain
				}
				svc := &brokenLog{simLog: newSimLog(t), do: do, send: tc.send}
				if tc.exc != "" {
					svc.exceptions = map[conformance.Exception]string{tc.exc: "planted"}
				}
				if err := conformance.Find(conformance.LogCases(), name).Run(svc, ""); err == nil {
					t.Errorf("case %s passed a log whose %s", name, tc.name)
				} else {
					t.Logf("case %s caught it: %v", name, err)
				}
			}
		})
	}
}

// TestFencedRetryException: a log that answers a fenced writer's retry of its
// own landed entry OK passes lost-ack-then-fence when it declares
// conformance.FencedRetryMayAnswerOK (as runtime/pulsarlog does), and only
// then (TestConformancePlanted).
func TestFencedRetryException(t *testing.T) {
	svc := &brokenLog{simLog: newSimLog(t), do: fencedRetryOK,
		exceptions: map[conformance.Exception]string{conformance.FencedRetryMayAnswerOK: "declared"}}
	if err := conformance.Find(conformance.LogCases(), "lost-ack-then-fence").Run(svc, ""); err != nil {
		t.Fatal(err)
	}
}
