package sim

import (
	"hash/crc32"
	"unsafe"

	"territory/model"
)

// The trace hash covers every input a host steps on and every effect it
// produces, payloads included: requests and replies, coordination keys and
// values (of requests, gets and watch events; a range by its count and each
// key's revision and lease: see mixInput), log data, blob and disk bytes. Two runs
// with one hash executed the same; a payload that differs changes it.

// mix folds one word into the trace hash (FNV-1a, a byte at a time would be
// slower; a multiply-xorshift per word is enough to tell runs apart).
func (w *World) mix(v uint64) {
	w.trace ^= v
	w.trace *= 0x100000001b3
	w.trace ^= w.trace >> 29
}

func inputTag(in model.Input) uint64 {
	switch in := in.(type) {
	case model.Start:
		return 1
	case model.MessageIn:
		switch m := in.Msg; {
		case m.Request != nil:
			return 2<<56 ^ m.Request.ID.Lo ^ m.Request.ID.Hi<<20
		case m.Reply != nil:
			return 3<<56 ^ m.Reply.ID.Lo ^ m.Reply.ID.Hi<<20 ^ uint64(m.Reply.Result.Status)<<40
		case m.Recovered != nil:
			return 10<<56 ^ uint64(m.Recovered.Subgraph)<<32 ^ m.Recovered.Epoch
		case m.CommitRecovery != nil:
			return 11<<56 ^ uint64(m.CommitRecovery.Subgraph)<<32 ^ m.CommitRecovery.Epoch
		case m.Migration != nil:
			return 13<<56 ^ uint64(m.Migration.Kind)<<48 ^ uint64(m.Migration.Subgraph)<<32 ^ m.Migration.Epoch
		}
		return 2 << 56
	case model.CoordResult:
		return 4<<56 ^ in.ReqID ^ uint64(in.Outcome)<<48
	case model.LogResult:
		return 5<<56 ^ in.ReqID ^ uint64(in.Outcome)<<48 ^ in.Resp.TailLSN<<24
	case model.BlobResult:
		return 6<<56 ^ in.ReqID ^ uint64(in.Outcome)<<48
	case model.TimerFired:
		return 7<<56 ^ in.ID
	case model.WatchEvent:
		return 8<<56 ^ uint64(in.KV.ModRevision)
	case model.Submit:
		return 9<<56 ^ in.Req.ID.Lo
	case model.DiskResult:
		return 12<<56 ^ in.ReqID ^ uint64(in.Outcome)<<48 ^ uint64(len(in.Resp.Data))<<20
	}
	return 0
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// mixBytes folds a byte string (length and CRC32C) into the trace.
func (w *World) mixBytes(b []byte) {
	w.mix(uint64(len(b))<<32 | uint64(crc32.Checksum(b, castagnoli)))
}

func (w *World) mixString(s string) {
	// The checksum only reads the bytes: no copy of the string.
	w.mix(uint64(len(s))<<32 | uint64(crc32.Update(0, castagnoli, unsafe.Slice(unsafe.StringData(s), len(s)))))
}

func (w *World) mixRequest(r *model.Request) {
	w.mix(r.ID.Hi ^ r.ID.Lo<<1)
	w.mix(uint64(r.Op)<<56 ^ uint64(r.Neuron)<<32 ^ uint64(r.Pre)<<16 ^ uint64(r.Post))
	w.mix(uint64(r.Value))
	if r.Stale {
		w.mix(r.MinLSN ^ 1<<63)
	}
}

func (w *World) mixResult(r model.Result) {
	exists := uint64(0)
	if r.Exists {
		exists = 1
	}
	if r.Proxy {
		exists |= 2
	}
	w.mix(uint64(r.Status)<<48 ^ uint64(r.Reason)<<40 ^ exists)
	w.mix(uint64(r.Value))
	w.mix(r.LSN)
}

func (w *World) mixMessage(m *model.Message) {
	switch {
	case m.Request != nil:
		w.mixRequest(m.Request)
	case m.Reply != nil:
		w.mix(m.Reply.ID.Hi ^ m.Reply.ID.Lo<<1)
		w.mixResult(m.Reply.Result)
	case m.Recovered != nil:
		w.mix(uint64(m.Recovered.Territory)<<32 ^ uint64(m.Recovered.Subgraph) ^ m.Recovered.Epoch<<8)
	case m.CommitRecovery != nil:
		w.mix(uint64(m.CommitRecovery.Subgraph) ^ m.CommitRecovery.Epoch<<8)
		w.mix(uint64(m.CommitRecovery.TimestampMs))
	case m.Migration != nil:
		g := m.Migration
		w.mix(uint64(g.Index)<<32 ^ g.Next ^ g.Target<<20 ^ g.SnapLSN<<40)
		w.mix(uint64(len(g.Entries))<<32 ^ uint64(g.Sum))
		w.mixBytes(g.Data)
	}
}

func (w *World) mixKV(kv *model.KV) {
	w.mixString(kv.Key)
	w.mixBytes(kv.Value)
	w.mix(uint64(kv.ModRevision)<<20 ^ uint64(kv.Lease))
}

// mixInput folds an input's payload into the trace (its tag is mixed by step).
func (w *World) mixInput(in model.Input) {
	switch in := in.(type) {
	case model.MessageIn:
		w.mixMessage(in.Msg)
	case model.Submit:
		w.mixRequest(&in.Req)
	case model.CoordResult:
		w.mix(uint64(in.Err)<<56 ^ uint64(in.Resp.Revision)<<8 ^ uint64(in.Resp.Lease))
		if in.Resp.Succeeded {
			w.mix(1)
		}
		if len(in.Resp.KVs) == 1 {
			w.mixKV(&in.Resp.KVs[0])
			break
		}
		// A range: its keys and values are those the store holds at this
		// revision, and every write that made them is in the trace already
		// (mixEffect), so the count and each key's revision and lease witness
		// it. Hashing every value of every range made the trace O(cluster)
		// per range (16% of a scale run).
		w.mix(uint64(len(in.Resp.KVs)))
		for i := range in.Resp.KVs {
			kv := &in.Resp.KVs[i]
			w.mix(uint64(kv.ModRevision)<<20 ^ uint64(kv.Lease))
		}
	case model.LogResult:
		w.mix(uint64(in.Err)<<56 ^ in.Resp.LSN)
		for _, e := range in.Resp.Entries {
			w.mix(e.LSN)
			w.mixBytes(e.Data)
		}
	case model.BlobResult:
		w.mix(uint64(in.Err) << 56)
		w.mixBytes(in.Resp.Data)
		if in.Resp.Exists {
			w.mix(1)
		}
		for _, k := range in.Resp.Keys {
			w.mixString(k)
		}
	case model.DiskResult:
		w.mix(uint64(in.Err) << 56)
		w.mixBytes(in.Resp.Data)
	case model.WatchEvent:
		w.mixKV(&in.KV)
		if in.Deleted {
			w.mix(1)
		}
	}
}

// mixEffect folds an effect and its payload into the trace.
func (w *World) mixEffect(e model.Effect) {
	switch e := e.(type) {
	case model.Send:
		w.mix(13<<56 ^ uint64(e.To))
		w.mixMessage(e.Msg)
	case model.CoordCall:
		r := &e.Req
		w.mix(14<<56 ^ e.ReqID ^ uint64(r.Kind)<<48 ^ uint64(e.TimeoutMs)<<20)
		w.mixString(r.Key)
		w.mix(uint64(r.Lease) ^ uint64(r.TTLMs)<<32)
		for _, c := range r.Compares {
			w.mixString(c.Key)
			w.mix(uint64(c.ModRevision))
		}
		for _, ops := range [][]model.TxnOp{r.Then, r.Else} {
			w.mix(uint64(len(ops)))
			for _, op := range ops {
				w.mix(uint64(op.Kind)<<56 ^ uint64(op.Lease))
				w.mixString(op.Key)
				w.mixBytes(op.Value)
			}
		}
	case model.LogCall:
		r := &e.Req
		w.mix(15<<56 ^ e.ReqID ^ uint64(r.Kind)<<48 ^ uint64(r.Stream)<<20)
		w.mix(r.Epoch<<32 ^ r.LSN ^ r.FromLSN<<16 ^ uint64(r.MaxEntries)<<48)
		w.mixBytes(r.Data)
	case model.BlobCall:
		w.mix(16<<56 ^ e.ReqID ^ uint64(e.Req.Kind)<<48)
		w.mixString(e.Req.Key)
		w.mixBytes(e.Req.Data)
	case model.DiskCall:
		w.mix(17<<56 ^ e.ReqID ^ uint64(e.Req.Kind)<<48)
		w.mixString(e.Req.Path)
		w.mixBytes(e.Req.Data)
	case model.SetTimer:
		w.mix(18<<56 ^ e.ID ^ uint64(e.AfterMs)<<32)
	}
}
