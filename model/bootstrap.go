package model

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits of the coordination store that the core's requests must respect:
// etcd's defaults (--max-txn-ops, --max-request-bytes). sim/coordstore
// enforces them as etcd does.
const (
	// MaxTxnOps bounds each of a transaction's compares, then-branch and
	// else-branch (etcd counts the largest of the three).
	MaxTxnOps = 128
	// MaxRequestBytes bounds the encoded size of one request.
	MaxRequestBytes = 1536 * 1024
)

// MaxSubgraphs is the largest subgraph count of a cluster: route keys are
// zero-padded to five digits so that they sort in subgraph order, and the
// bootstrap writes MaxSubgraphs/MaxTxnOps route transactions at most.
const MaxSubgraphs = 65536

// BootstrapPlanKey holds the plan of a bootstrap in progress (and, after
// it, of the bootstrap that created the cluster).
const BootstrapPlanKey = "bootstrap/plan"

// BootstrapPlan is what a new cluster is created with: subgraph i goes to
// Territories[i mod len] at epoch 0 (the first claim makes it 1), then the
// policy is written.
//
// No etcd transaction can write every route of a large cluster (MaxTxnOps),
// so the bootstrap is a sequence of transactions, each safe to repeat, that
// any number of bootstrappers may run, interrupted and resumed at any point:
//
//  1. PlanTxn writes the plan if neither a plan nor the policy exists. A
//     bootstrapper whose PlanTxn fails reads the stored plan and carries out
//     that one instead of its own, so every bootstrapper writes the same
//     routes.
//  2. RouteTxns write the routes in chunks; a chunk is written only if none
//     of its keys exists, so a repeated chunk changes nothing (and a chunk
//     repeated after the cluster went live cannot undo a claim).
//  3. PolicyTxn writes the policy if it is absent: the commit point. Nothing
//     waits on a cluster without a policy (daemon.WaitPolicy), and the
//     policy is written only after every route, so a cluster with a policy
//     has all of its routes.
type BootstrapPlan struct {
	Subgraphs   uint32
	Territories []HostID
	Policy      Policy
}

// NewBootstrapPlan checks the plan's parts.
func NewBootstrapPlan(count uint32, territories []HostID, policy Policy) (BootstrapPlan, error) {
	p := BootstrapPlan{Subgraphs: count, Territories: territories, Policy: policy}
	return p, p.Validate()
}

// Validate checks the subgraph count, the territories and the policy.
func (p BootstrapPlan) Validate() error {
	if p.Subgraphs == 0 || len(p.Territories) == 0 {
		return fmt.Errorf("bootstrap: need subgraphs (%d) and territories (%d)", p.Subgraphs, len(p.Territories))
	}
	if p.Subgraphs > MaxSubgraphs {
		return fmt.Errorf("bootstrap: %d subgraphs exceeds the maximum %d", p.Subgraphs, MaxSubgraphs)
	}
	for _, t := range p.Territories {
		if t == 0 {
			return fmt.Errorf("bootstrap: territory id 0")
		}
	}
	if err := p.Policy.Validate(); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

// Encode is the value of BootstrapPlanKey: a line of the plan, then the
// policy as EncodePolicy writes it.
func (p BootstrapPlan) Encode() []byte {
	ids := make([]string, len(p.Territories))
	for i, t := range p.Territories {
		ids[i] = strconv.FormatUint(uint64(t), 10)
	}
	return []byte(fmt.Sprintf("subgraphs=%d territories=%s\n%s", p.Subgraphs, strings.Join(ids, ","), EncodePolicy(p.Policy)))
}

// ParseBootstrapPlan decodes and validates the value of BootstrapPlanKey.
func ParseBootstrapPlan(value []byte) (BootstrapPlan, error) {
	head, pol, ok := strings.Cut(string(value), "\n")
	if !ok {
		return BootstrapPlan{}, fmt.Errorf("bootstrap plan %q: no policy line", value)
	}
	var p BootstrapPlan
	var sawCount, sawTerritories bool
	for _, field := range strings.Fields(head) {
		name, val, _ := strings.Cut(field, "=")
		switch name {
		case "subgraphs":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return BootstrapPlan{}, fmt.Errorf("bootstrap plan: subgraphs: %w", err)
			}
			p.Subgraphs, sawCount = uint32(n), true
		case "territories":
			for _, s := range strings.Split(val, ",") {
				n, err := strconv.ParseUint(s, 10, 32)
				if err != nil {
					return BootstrapPlan{}, fmt.Errorf("bootstrap plan: territories: %w", err)
				}
				p.Territories = append(p.Territories, HostID(n))
			}
			sawTerritories = true
		default:
			return BootstrapPlan{}, fmt.Errorf("bootstrap plan: unknown field %q", field)
		}
	}
	if !sawCount || !sawTerritories {
		return BootstrapPlan{}, fmt.Errorf("bootstrap plan %q: lacks subgraphs or territories", head)
	}
	policy, err := ParsePolicy([]byte(pol))
	if err != nil {
		return BootstrapPlan{}, fmt.Errorf("bootstrap plan: %w", err)
	}
	p.Policy = policy
	return p, p.Validate()
}

// PlanTxn writes the plan if no plan and no policy exist (step 1).
func (p BootstrapPlan) PlanTxn() CoordRequest {
	return CoordRequest{
		Kind:     CoordTxn,
		Compares: []Compare{{Key: BootstrapPlanKey}, {Key: PolicyKey}},
		Then:     []TxnOp{{Kind: TxnPut, Key: BootstrapPlanKey, Value: p.Encode()}},
	}
}

// RouteTxns write the routes, MaxTxnOps at a time, each chunk only if none
// of its keys exists (step 2).
func (p BootstrapPlan) RouteTxns() []CoordRequest {
	var out []CoordRequest
	for lo := uint32(0); lo < p.Subgraphs; lo += MaxTxnOps {
		hi := min(lo+MaxTxnOps, p.Subgraphs)
		req := CoordRequest{Kind: CoordTxn,
			Compares: make([]Compare, 0, hi-lo), Then: make([]TxnOp, 0, hi-lo)}
		for i := lo; i < hi; i++ {
			key := RouteKey(SubgraphID(i))
			req.Compares = append(req.Compares, Compare{Key: key})
			req.Then = append(req.Then, TxnOp{Kind: TxnPut, Key: key, Value: EncodeRoute(p.Territories[int(i)%len(p.Territories)], 0)})
		}
		out = append(out, req)
	}
	return out
}

// PolicyTxn writes the policy if it is absent (step 3, the commit point).
func (p BootstrapPlan) PolicyTxn() CoordRequest {
	return CoordRequest{
		Kind:     CoordTxn,
		Compares: []Compare{{Key: PolicyKey}},
		Then:     []TxnOp{{Kind: TxnPut, Key: PolicyKey, Value: EncodePolicy(p.Policy)}},
	}
}

// Txns is the whole bootstrap in order: PlanTxn, RouteTxns, PolicyTxn.
func (p BootstrapPlan) Txns() []CoordRequest {
	out := []CoordRequest{p.PlanTxn()}
	out = append(out, p.RouteTxns()...)
	return append(out, p.PolicyTxn())
}

// CoordRequestBytes bounds the size of req as etcd receives it: its keys and
// values, and a generous allowance for the framing of each part. It is a
// bound from above (protobuf framing is a few bytes per field), so a request
// within MaxRequestBytes by this count is within etcd's limit.
func CoordRequestBytes(req CoordRequest) int {
	const perPart, perRequest = 32, 256
	n := perRequest + len(req.Key)
	for _, c := range req.Compares {
		n += perPart + len(c.Key)
	}
	for _, ops := range [][]TxnOp{req.Then, req.Else} {
		for _, op := range ops {
			n += perPart + len(op.Key) + len(op.Value)
		}
	}
	return n
}
