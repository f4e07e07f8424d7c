package linearizability

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

func TestPruneUnknownKeepsWhatCanMatter(t *testing.T) {
	logged, lost := UUID{Lo: 1}, UUID{Lo: 2}
	ops := []porcupine.Operation{
		{Input: Input{Kind: Stimulate, ID: logged}, Output: Output{Status: StatusUnknown}, Return: Open},
		{Input: Input{Kind: Stimulate, ID: lost}, Output: Output{Status: StatusUnknown}, Return: Open},
		{Input: Input{Kind: ReadNeuron, ID: UUID{Lo: 3}}, Output: Output{Status: StatusUnknown}, Return: Open},
		{Input: Input{Kind: ReadNeuron, ID: UUID{Lo: 4}}, Output: Output{Status: StatusOK}, Return: 5},
		{Input: Input{Kind: Stimulate, ID: UUID{Lo: 5}}, Output: Output{Status: StatusOK}, Return: 6},
	}
	logs := []SubgraphLog{{Entries: []Entry{{LSN: 1, Kind: EntryWrite, ID: logged}}}}
	got := PruneUnknown(ops, logs)
	var ids []uint64
	for _, op := range got {
		ids = append(ids, op.Input.(Input).ID.Lo)
	}
	if len(ids) != 3 || ids[0] != 1 || ids[1] != 4 || ids[2] != 5 {
		t.Fatalf("kept %v, want [1 4 5]: the logged unknown write and every known answer", ids)
	}
}

// A read of a value only an unknown write could explain, where the log shows
// the write never happened: porcupine accepts the raw history (it lets the
// write take effect), and catches the read once the write is pruned.
func TestPruneUnknownExposesAReadTheLogContradicts(t *testing.T) {
	cfg := Config{Bounds: DefaultBounds()}
	ghost := UUID{Lo: 9}
	ops := []porcupine.Operation{
		{ClientId: 0, Input: Input{Kind: CreateNeuron, Neuron: 1, ID: UUID{Lo: 1}}, Call: 0, Output: Output{Status: StatusOK}, Return: 1},
		{ClientId: 1, Input: Input{Kind: Stimulate, Neuron: 1, Delta: 5, ID: ghost}, Call: 2, Output: Output{Status: StatusUnknown}, Return: Open},
		{ClientId: 0, Input: Input{Kind: ReadNeuron, Neuron: 1, ID: UUID{Lo: 2}}, Call: 3, Output: Output{Status: StatusOK, Value: 5, Exists: true}, Return: 4},
	}
	logs := []SubgraphLog{{Entries: []Entry{{LSN: 1, Kind: EntryWrite, ID: UUID{Lo: 1}}}}}
	if v := Check(cfg, ops, 0).Verdict; v != VerdictOK {
		t.Fatalf("raw history: %s, want ok (the unknown write may have happened)", v)
	}
	pruned := PruneUnknown(ops, logs)
	if len(pruned) != 2 {
		t.Fatalf("kept %d operations, want 2", len(pruned))
	}
	if v := Check(cfg, pruned, 0).Verdict; v != VerdictViolation {
		t.Fatalf("pruned history: %s, want violation (the log says the write never happened)", v)
	}
}
