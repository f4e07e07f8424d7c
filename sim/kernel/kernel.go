// Package kernel is the simulator's discrete-event core: a virtual clock, an
// event queue ordered by (virtual time, sequence number), and a seeded PRNG
// split into independent streams, one per component.
//
// The kernel is single-threaded on purpose: one goroutine runs every event, so
// the order of events is a pure function of the seed. Nothing here reads the
// wall clock.
package kernel

import "fmt"

// Event is one scheduled callback. Events with the same time run in the order
// they were scheduled (seq), which is what makes a run reproducible.
type event struct {
	atUs int64
	seq  uint64
	fn   func()
}

// Kernel owns virtual time and the event queue.
type Kernel struct {
	nowUs   int64
	seq     uint64
	queue   []event // a binary min-heap on (atUs, seq), written for this type: container/heap costs an interface call per swap
	steps   uint64
	maxStep uint64
	seed    uint64
	stopped bool
}

// New returns a kernel whose PRNG streams derive from seed. maxSteps bounds the
// number of events one Run may execute (0 means no bound): every loop has a limit.
func New(seed uint64, maxSteps uint64) *Kernel {
	return &Kernel{seed: seed, maxStep: maxSteps, queue: make([]event, 0, 1024)}
}

// NowUs is the current virtual time in microseconds.
func (k *Kernel) NowUs() int64 { return k.nowUs }

// Steps is the number of events executed so far.
func (k *Kernel) Steps() uint64 { return k.steps }

// Pending is the number of events waiting in the queue.
func (k *Kernel) Pending() int { return len(k.queue) }

// At schedules fn at absolute virtual time atUs. Scheduling in the past is a
// broken invariant of the caller: it would let an effect precede its cause.
func (k *Kernel) At(atUs int64, fn func()) {
	if atUs < k.nowUs {
		panic(fmt.Sprintf("kernel: event scheduled in the past: at=%d now=%d", atUs, k.nowUs))
	}
	k.seq++
	k.push(event{atUs: atUs, seq: k.seq, fn: fn})
}

// After schedules fn delayUs microseconds from now.
func (k *Kernel) After(delayUs int64, fn func()) {
	if delayUs < 0 {
		panic(fmt.Sprintf("kernel: negative delay %d", delayUs))
	}
	k.At(k.nowUs+delayUs, fn)
}

// Stop makes Run return after the current event.
func (k *Kernel) Stop() { k.stopped = true }

// Run executes events until the queue is empty, virtual time would pass
// untilUs, Stop is called, or the step bound is reached. It returns an error
// only when the step bound is hit, since that means a livelock in the world.
func (k *Kernel) Run(untilUs int64) error {
	k.stopped = false
	for len(k.queue) > 0 && !k.stopped {
		if k.queue[0].atUs > untilUs {
			k.nowUs = untilUs
			return nil
		}
		ev := k.pop()
		k.nowUs = ev.atUs
		k.steps++
		if k.maxStep > 0 && k.steps > k.maxStep {
			return fmt.Errorf("kernel: step bound %d reached at t=%dus: the world does not quiesce", k.maxStep, k.nowUs)
		}
		ev.fn()
	}
	if !k.stopped && untilUs > k.nowUs {
		k.nowUs = untilUs
	}
	return nil
}

func less(a, b *event) bool {
	if a.atUs != b.atUs {
		return a.atUs < b.atUs
	}
	return a.seq < b.seq
}

func (k *Kernel) push(ev event) {
	k.queue = append(k.queue, ev)
	q := k.queue
	i := len(q) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !less(&q[i], &q[parent]) {
			break
		}
		q[i], q[parent] = q[parent], q[i]
		i = parent
	}
}

func (k *Kernel) pop() event {
	q := k.queue
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q[last] = event{} // release the closure for the garbage collector
	q = q[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(q) {
			break
		}
		smallest := l
		if r := l + 1; r < len(q) && less(&q[r], &q[l]) {
			smallest = r
		}
		if !less(&q[smallest], &q[i]) {
			break
		}
		q[i], q[smallest] = q[smallest], q[i]
		i = smallest
	}
	k.queue = q
	return top
}
