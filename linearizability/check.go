package linearizability

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Verdict is the outcome of a check.
type Verdict string

const (
	VerdictOK        Verdict = "ok"
	VerdictViolation Verdict = "violation"
	VerdictUnknown   Verdict = "unknown" // porcupine timed out
)

// Result is the outcome of [Check].
type Result struct {
	Verdict       Verdict
	Ops           int      // operations checked
	Keys          int      // partitions (subgraphs touched)
	MaxOpsPerKey  int      // length of the longest partition
	MaxOpsKey     string   // its key (the smallest on a tie)
	ViolatingKeys []string // sorted; set only for VerdictViolation

	model porcupine.Model
	info  porcupine.LinearizationInfo
}

// Check checks ops (normally [Recorder.Operations]) with porcupine against
// [Model] of cfg. A timeout of 0 means no limit; on timeout the verdict is
// VerdictUnknown unless a violation was already found.
func Check(cfg Config, ops []porcupine.Operation, timeout time.Duration) Result {
	model := Model(cfg)
	keys, parts := partitionBy(ops, operationKey)
	res := Result{Ops: len(ops), Keys: len(keys), model: model}
	for i, p := range parts { // keys are sorted: the first maximum is the smallest key
		if len(p) > res.MaxOpsPerKey {
			res.MaxOpsPerKey, res.MaxOpsKey = len(p), keys[i]
		}
	}

	start := time.Now()
	verdict, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	timedOut := timeout > 0 && time.Since(start) >= timeout
	res.info = info

	switch verdict {
	case porcupine.Ok:
		res.Verdict = VerdictOK
		return res
	case porcupine.Unknown:
		res.Verdict = VerdictUnknown
		return res
	}
	res.Verdict = VerdictViolation
	// Porcupine does not say which partition failed. A partition passed iff
	// one of its partial linearizations covers all its operations. Model
	// partitions the same way as partitionBy, so indices line up.
	partials := info.PartialLinearizations()
	for i, p := range parts {
		if complete(partials[i], len(p)) {
			continue
		}
		// After a timeout, an incomplete partition may just have been
		// cancelled: confirm it on its own.
		if timedOut && porcupine.CheckOperationsTimeout(model, p, timeout) != porcupine.Illegal {
			continue
		}
		res.ViolatingKeys = append(res.ViolatingKeys, keys[i])
	}
	return res
}

func complete(partials [][]int, n int) bool {
	for _, l := range partials {
		if len(l) == n {
			return true
		}
	}
	return false
}

// String summarizes the result in one line.
func (r Result) String() string {
	s := fmt.Sprintf("%s: %d ops, %d keys, max %d ops/key", r.Verdict, r.Ops, r.Keys, r.MaxOpsPerKey)
	if r.MaxOpsKey != "" {
		s += " (" + r.MaxOpsKey + ")"
	}
	if len(r.ViolatingKeys) > 0 {
		s += "; violating keys: " + strings.Join(r.ViolatingKeys, ", ")
	}
	return s
}

// WriteHTML writes porcupine's interactive picture of the history and its
// (partial) linearizations to path. Each subgraph is one partition.
func (r Result) WriteHTML(path string) error {
	if r.model.Step == nil {
		return errors.New("linearizability: WriteHTML on a Result not produced by Check")
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := porcupine.Visualize(r.model, r.info, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// partitionOperations is the porcupine Partition function: one partition per
// key, keys in sorted order, operations in their original order.
func partitionOperations(history []porcupine.Operation) [][]porcupine.Operation {
	_, parts := partitionBy(history, operationKey)
	return parts
}

// partitionEvents is the porcupine PartitionEvent function. A return event
// belongs to the partition of its call.
func partitionEvents(history []porcupine.Event) [][]porcupine.Event {
	callKey := make(map[int]string)
	for _, e := range history {
		if e.Kind == porcupine.CallEvent {
			callKey[e.Id] = valueKey(e.Value)
		}
	}
	_, parts := partitionBy(history, func(e porcupine.Event) string {
		if k, ok := callKey[e.Id]; ok {
			return k
		}
		return "?"
	})
	return parts
}

func operationKey(op porcupine.Operation) string { return valueKey(op.Input) }

// valueKey is Key for a porcupine input; foreign inputs land in "?", where
// the model rejects them.
func valueKey(v any) string {
	if in, ok := v.(Input); ok {
		return Key(in)
	}
	return "?"
}

// partitionBy groups items by key and returns the keys sorted, each with its
// items in their original order.
func partitionBy[T any](items []T, key func(T) string) ([]string, [][]T) {
	groups := make(map[string][]T)
	for _, it := range items {
		k := key(it)
		groups[k] = append(groups[k], it)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([][]T, len(keys))
	for i, k := range keys {
		parts[i] = groups[k]
	}
	return keys, parts
}
