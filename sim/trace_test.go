package sim

import (
	"testing"

	"territory/model"
)

// TestTraceCoversPayloads: inputs and effects that differ only in a payload
// (a coordination value, log data, blob bytes, a reply) give different traces.
func TestTraceCoversPayloads(t *testing.T) {
	hash := func(f func(w *World)) uint64 {
		w := testWorld(t)
		f(w)
		return w.trace
	}
	pairs := map[string][2]func(w *World){
		"coordination value in a response": {
			func(w *World) {
				w.mixInput(model.CoordResult{Resp: model.CoordResponse{KVs: []model.KV{{Key: "k", Value: []byte("a")}}}})
			},
			func(w *World) {
				w.mixInput(model.CoordResult{Resp: model.CoordResponse{KVs: []model.KV{{Key: "k", Value: []byte("b")}}}})
			},
		},
		"coordination value in a request": {
			func(w *World) {
				w.mixEffect(model.CoordCall{Req: model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Key: "k", Value: []byte("a")}}}})
			},
			func(w *World) {
				w.mixEffect(model.CoordCall{Req: model.CoordRequest{Kind: model.CoordTxn, Then: []model.TxnOp{{Key: "k", Value: []byte("b")}}}})
			},
		},
		"log data read": {
			func(w *World) {
				w.mixInput(model.LogResult{Resp: model.LogResponse{Entries: []model.LogEntry{{LSN: 1, Data: []byte("a")}}}})
			},
			func(w *World) {
				w.mixInput(model.LogResult{Resp: model.LogResponse{Entries: []model.LogEntry{{LSN: 1, Data: []byte("b")}}}})
			},
		},
		"log data appended": {
			func(w *World) {
				w.mixEffect(model.LogCall{Req: model.LogRequest{Kind: model.LogAppend, Data: []byte("a")}})
			},
			func(w *World) {
				w.mixEffect(model.LogCall{Req: model.LogRequest{Kind: model.LogAppend, Data: []byte("b")}})
			},
		},
		"blob bytes": {
			func(w *World) { w.mixInput(model.BlobResult{Resp: model.BlobResponse{Data: []byte("a")}}) },
			func(w *World) { w.mixInput(model.BlobResult{Resp: model.BlobResponse{Data: []byte("b")}}) },
		},
		"reply": {
			func(w *World) {
				w.mixInput(model.MessageIn{Msg: &model.Message{Reply: &model.Reply{Result: model.Result{Value: 1}}}})
			},
			func(w *World) {
				w.mixInput(model.MessageIn{Msg: &model.Message{Reply: &model.Reply{Result: model.Result{Value: 2}}}})
			},
		},
	}
	for name, p := range pairs {
		if hash(p[0]) == hash(p[1]) {
			t.Errorf("%s: the trace does not see the payload", name)
		}
	}
}
