package sim

import (
	"territory/model"
	"territory/sim/invariants"
)

// badValues records the coordination values the core reported unusable
// (model.FactBadCoordValue): values it did not write, such as a hand-edited
// route. Refusing them is the correct behaviour, so it judges nothing; tests
// and reports read them from Outcome.BadCoordValues.
type badValues struct{ facts []model.FactBadCoordValue }

func newBadValues(*View) Checker { return &badValues{} }

func (*badValues) Name() string { return "bad-coord-values" }

func (b *badValues) Observe(_ *View, e BusEvent) {
	if e, ok := e.(FactObserved); ok {
		if f, ok := e.Fact.(model.FactBadCoordValue); ok {
			b.facts = append(b.facts, f)
		}
	}
}

func (*badValues) Final(*View) []invariants.Violation { return nil }

func (b *badValues) Report(o *Outcome) { o.BadCoordValues = b.facts }
