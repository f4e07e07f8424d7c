package locallog

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"territory/conformance"
	"territory/model"
)

// devLog runs the log suite on the dev log. bbolt locks its file per
// process, so every client of a case shares the one handle (the dev log has
// exactly one process); Send's lost acknowledgement is a request really in
// flight on another goroutine, racing the case's next requests.
type devLog struct {
	t        *testing.T
	path     string
	mu       sync.Mutex
	l        *UnreplicatedLocalLog
	inflight sync.WaitGroup
	lose     conformance.Alternate
}

func newDevLog(t *testing.T) *devLog {
	d := &devLog{t: t, path: filepath.Join(t.TempDir(), "log.db")}
	d.l = openLog(t, d.path)
	t.Cleanup(d.inflight.Wait) // runs before the handle's Close (cleanups run last-in first-out)
	return d
}

func (d *devLog) Client() conformance.LogClient { return d }

func (d *devLog) handle() *UnreplicatedLocalLog {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.l
}

func (d *devLog) Do(req model.LogRequest) (model.LogResponse, model.ServiceErr, error) {
	return d.handle().Do(context.Background(), req)
}

func (d *devLog) Send(req model.LogRequest) {
	if !d.lose.AnswerLost() {
		return
	}
	l := d.handle()
	d.inflight.Add(1)
	go func() {
		defer d.inflight.Done()
		l.Do(context.Background(), req)
	}()
}

// Restart closes the file (after the requests in flight) and opens it again,
// as a restarted `territoryd dev` does.
func (d *devLog) Restart() error {
	d.inflight.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.l.Close(); err != nil {
		return err
	}
	l, err := Open(d.path)
	if err != nil {
		return err
	}
	d.t.Cleanup(func() { d.inflight.Wait(); l.Close() })
	d.l = l
	return nil
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.LogCases(), conformance.Lacks{
		conformance.Replication: "UnreplicatedLocalLog keeps every stream on one disk of one machine (dev mode only): " +
			"there is no second storage node to lose, and a lost disk loses the log",
	}, func(t *testing.T) conformance.LogService { return newDevLog(t) })
}
