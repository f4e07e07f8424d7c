package logfence

import "territory/model"

// Sum identifies an entry's data (the driver computes it, e.g. SHA-256).
type Sum [32]byte

// Effect is something a driver must do for a Writer. Effects are returned in
// the order they must be started; a driver runs them in that order (the
// sends of one producer must reach it in that order) and may run the ones
// that wait for an answer (CreateProducer, Unload, FoldToEnd, FoldUpTo,
// SendMarker, ReadSum) concurrently with later effects.
type Effect interface{ isEffect() }

// CreateProducer: after DelayMs (0: at once), attach an exclusive producer
// named by the stream's writer name to the topic; answer ProducerCreated.
// Req is the request that drives the attach (its deadline bounds the try).
type CreateProducer struct {
	Prod    uint64 // the handle the later effects use
	Req     uint64
	DelayMs int64
}

// CloseProducer closes a producer (ending its tenure); its sends in flight
// fail (DataSent with an error). No answer.
type CloseProducer struct{ Prod uint64 }

// Unload unloads the topic (the broker disconnects every producer and
// reader; the holder's reconnect is refused by the topic epoch); answer
// Unloaded.
type Unload struct{ Req uint64 }

// FoldToEnd folds the topic up to the last message the broker reports now;
// answer Folded with the state there.
type FoldToEnd struct{ Req uint64 }

// FoldUpTo folds the topic up to Target (exclusive: a position known to
// exist); answer Folded with the state just before it.
type FoldUpTo struct {
	Req    uint64
	Target Pos
}

// SendMarker sends a marker (no payload) synchronously through Prod; answer
// MarkerSent.
type SendMarker struct {
	Prod uint64
	Req  uint64
	Rec  Record
}

// SendData hands one data message to Prod (asynchronously; its fate must not
// depend on any request's deadline); answer DataSent, in send order.
type SendData struct {
	Prod uint64
	Seq  int64
	Rec  Record
	Data []byte
}

// ReadSum reads committed entry LSN (e.g. a LogRead of one entry) and
// answers SumRead with its sum.
type ReadSum struct {
	Req uint64
	LSN uint64
}

// Indexed: the fold state after the message at C.At is C.St (a checkpoint a
// reader may start from). Marker: it is a writer marker (worth keeping).
type Indexed struct {
	C      Ckpt
	Marker bool
}

// Reply answers request Req: Resp and Err, or, if Unknown is non-nil, an
// unknown outcome (the operation may or may not have happened).
type Reply struct {
	Req     uint64
	Resp    model.LogResponse
	Err     model.ServiceErr
	Unknown error
}

func (CreateProducer) isEffect() {}
func (CloseProducer) isEffect()  {}
func (Unload) isEffect()         {}
func (FoldToEnd) isEffect()      {}
func (FoldUpTo) isEffect()       {}
func (SendMarker) isEffect()     {}
func (SendData) isEffect()       {}
func (ReadSum) isEffect()        {}
func (Indexed) isEffect()        {}
func (Reply) isEffect()          {}

// ProducerCreated answers CreateProducer. Busy: another producer holds the
// topic. GaveUp: the driving request's deadline passed first (Err then says
// why). Otherwise Err == nil means the producer is attached.
type ProducerCreated struct {
	Prod   uint64
	Busy   bool
	GaveUp bool
	Err    error
}

// Unloaded answers Unload.
type Unloaded struct{ Err error }

// Folded answers FoldToEnd and FoldUpTo.
type Folded struct {
	St  Fold
	Err error
}

// MarkerSent answers SendMarker: the marker's position and the producer's
// last sequence id (the marker's) after the send.
type MarkerSent struct {
	Prod    uint64
	At      Pos
	LastSeq int64
	Err     error
}

// DataSent answers SendData. At.Entry < 0: acknowledged without a position
// (the broker dropped a re-send as a duplicate of one persisted earlier in
// this tenure).
type DataSent struct {
	Prod uint64
	LSN  uint64
	At   Pos
	Err  error
}

// SumRead answers ReadSum.
type SumRead struct {
	Req   uint64
	LSN   uint64
	Sum   Sum
	Found bool
	Err   error
}

// ProducerLost: the driver learned that a producer can send no more (its
// tenure is over: the next append re-attaches).
type ProducerLost struct{ Prod uint64 }
