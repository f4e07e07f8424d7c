package model

import (
	"fmt"
	"strings"
)

// A growth mandate: synapses to grow between fragments, each made by a
// connect (across subgraphs, a handshake saga). This is the interface the
// topology observer will issue mandates through; a client executes one and
// reports, per synapse, fulfilled or a mandate.fulfillment.failed event.

// Mandate is one growth mandate.
type Mandate struct {
	ID       string // e.g. "grow-frag-123": names the mandate in every report
	Synapses []MandateSynapse
}

// MandateSynapse is one synapse a mandate asks for.
type MandateSynapse struct {
	Pre, Post NeuronID
	Weight    int64
}

// MaxMandateSynapses bounds one mandate: a larger growth is several mandates.
const MaxMandateSynapses = 10_000

// Validate refuses a mandate no store could execute as asked.
func (m *Mandate) Validate() error {
	switch {
	case m.ID == "" || len(m.ID) > 128 || strings.ContainsAny(m.ID, " \t\r\n\"\\"):
		return fmt.Errorf("mandate %q: the id must be 1 to 128 characters, without spaces, quotes or backslashes", m.ID)
	case len(m.Synapses) == 0:
		return fmt.Errorf("mandate %s: no synapses", m.ID)
	case len(m.Synapses) > MaxMandateSynapses:
		return fmt.Errorf("mandate %s: %d synapses, at most %d", m.ID, len(m.Synapses), MaxMandateSynapses)
	}
	seen := make(map[SynapseKey]int, len(m.Synapses))
	for i, s := range m.Synapses {
		k := SynapseKey{s.Pre, s.Post}
		if j, dup := seen[k]; dup {
			return fmt.Errorf("mandate %s: synapse %d (n%d->n%d) repeats synapse %d", m.ID, i, s.Pre, s.Post, j)
		}
		seen[k] = i
	}
	return nil
}

// Mandate reason codes beside PEER_REJECTION and TIMEOUT (message.go).
const (
	MandateLocalRejection = "LOCAL_REJECTION" // pre's own policy refused it (out-degree)
	MandateNoSuchNeuron   = "NO_SUCH_NEURON"  // pre or post does not exist
	MandateConflict       = "CONFLICT"        // another connect of the synapse was mid-saga
	MandateUnknown        = "UNKNOWN_OUTCOME" // no final answer: it may exist; run the mandate again
	MandateRefused        = "REFUSED"         // any other final refusal
)

// MandateFailure is a mandate.fulfillment.failed event, as the seed's schema
// shows it (JSON field names in the tags).
type MandateFailure struct {
	EventID         string `json:"event_id"`
	EventType       string `json:"event_type"` // always mandate.fulfillment.failed
	SourceTerritory string `json:"source_territory"`
	MandateID       string `json:"mandate_id"`
	ReasonCode      string `json:"reason_code"`
	Details         string `json:"details"`
}

// MandateFailedType is the event_type of a MandateFailure.
const MandateFailedType = "mandate.fulfillment.failed"

// SynapseOutcome is what became of one synapse of a mandate.
type SynapseOutcome struct {
	Synapse   MandateSynapse
	Fulfilled bool            // the synapse exists: made now, or already there
	Failure   *MandateFailure // set when not fulfilled
}

// MandateSynapseOutcome maps a connect's final answer (unknown: no final
// answer) to the mandate's outcome for that synapse. eventID identifies the
// failure (the connect's event_uuid: a rerun of the mandate makes a new one);
// source is the territory that owns pre's subgraph, as the client routed.
func MandateSynapseOutcome(m *Mandate, s MandateSynapse, r Result, unknown bool, eventID EventUUID, source HostID) SynapseOutcome {
	out := SynapseOutcome{Synapse: s}
	if !unknown && (r.Status == StatusOK || r.Status == StatusAlreadyExists) {
		out.Fulfilled = true
		return out
	}
	code := MandateRefused
	details := fmt.Sprintf("synapse n%d->n%d: %s %s", s.Pre, s.Post, r.Status, r.Reason)
	switch {
	case unknown:
		code, details = MandateUnknown, fmt.Sprintf("synapse n%d->n%d: no final answer before the deadline; it may exist", s.Pre, s.Post)
	case r.Reason == ReasonMaxInDegree || r.Reason == ReasonSagaTimeout:
		code, details = mandateReason(s.Pre, s.Post, r.Reason)
	case r.Reason == ReasonMaxOutDegree:
		code = MandateLocalRejection
	case r.Reason == ReasonNoSuchNeuron:
		code = MandateNoSuchNeuron
	case r.Reason == ReasonSagaInProgress:
		code = MandateConflict
	}
	out.Failure = &MandateFailure{EventID: eventID.String(), EventType: MandateFailedType, SourceTerritory: TerritoryName(source),
		MandateID: m.ID, ReasonCode: code, Details: details}
	return out
}

// mandateReason is the reason code and details of a saga post refused or
// that timed out: one wording for the territory's report and the client's.
func mandateReason(pre, post NeuronID, reason Reason) (string, string) {
	if reason == ReasonSagaTimeout {
		return MandateTimeout, fmt.Sprintf("peer subgraph of n%d did not answer synapse n%d->n%d in time", post, pre, post)
	}
	return MandatePeerRejection, fmt.Sprintf("peer subgraph of n%d rejected synapse n%d->n%d; reason: %s", post, pre, post, reason)
}

// TerritoryName is a territory's name in reports ("territory-008").
func TerritoryName(id HostID) string { return fmt.Sprintf("territory-%03d", id) }

// Failure is the mandate.fulfillment.failed event of a compensated saga, as
// the territory that compensated it reports it (its mandate_id is the saga's
// id: the territory does not know the mandate; the client's report does).
func (f FactMandateFailed) Failure() MandateFailure {
	return MandateFailure{EventID: f.EventID.String(), EventType: MandateFailedType, SourceTerritory: TerritoryName(f.SourceTerritory),
		MandateID: f.Saga.String(), ReasonCode: f.ReasonCode, Details: f.Details}
}
