package sim

import (
	"testing"

	"territory/linearizability"
	"territory/model"
)

// A client's own busy or bad-request answer was never sent: no operation.
// Answers the store gave keep their status and reason.
func TestToLinOutput(t *testing.T) {
	for _, tc := range []struct {
		f    model.FactOpDone
		want linearizability.Output
		sent bool
	}{
		{model.FactOpDone{Result: model.Result{Status: model.StatusBusy}}, linearizability.Output{}, false},
		{model.FactOpDone{Result: model.Result{Status: model.StatusBadRequest}}, linearizability.Output{}, false},
		{model.FactOpDone{Result: model.Result{Status: model.StatusBadRequest}, Tries: 1}, linearizability.Output{Status: linearizability.StatusBadRequest}, true},
		{model.FactOpDone{Unknown: true, Tries: 3}, linearizability.Output{Status: linearizability.StatusUnknown}, true},
		{model.FactOpDone{Result: model.Result{Status: model.StatusRejected, Reason: model.ReasonMaxInDegree}, Tries: 1},
			linearizability.Output{Status: linearizability.StatusRejected, Reason: linearizability.ReasonMaxInDegree}, true},
		{model.FactOpDone{Result: model.Result{Status: model.StatusNotFound, Reason: model.ReasonNoSuchNeuron}, Tries: 1},
			linearizability.Output{Status: linearizability.StatusNotFound, Reason: linearizability.ReasonNoSuchNeuron}, true},
		{model.FactOpDone{Result: model.Result{Status: model.StatusOK, Value: 7, Exists: true}, Tries: 2},
			linearizability.Output{Status: linearizability.StatusOK, Value: 7, Exists: true}, true},
	} {
		got, sent := toLinOutput(tc.f)
		if sent != tc.sent || (sent && got != tc.want) {
			t.Errorf("%+v: got %+v sent=%v, want %+v sent=%v", tc.f, got, sent, tc.want, tc.sent)
		}
	}
}
