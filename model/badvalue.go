package model

// Values in the coordination store come from outside the core: an operator
// can hand-edit a route, a tool of another version can write a record, a
// restore can truncate one. The core validates every value it parses, and a
// value it cannot use never panics a state machine: the reader reports it as
// a FactBadCoordValue, treats the key as unusable, and keeps running.

// FactBadCoordValue: a key in the coordination store holds a value the core
// did not write. Reader is the territory, manager or client that read it.
type FactBadCoordValue struct {
	Reader HostID
	Key    string
	Err    error
}

func (FactBadCoordValue) isFact() {}

// badCoordValue is the observation a reader emits for an unusable key.
func badCoordValue(reader HostID, key string, err error) Observe {
	return Observe{Fact: FactBadCoordValue{Reader: reader, Key: key, Err: err}}
}
