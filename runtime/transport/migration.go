package transport

import (
	"fmt"
	"hash/crc32"

	"territory/model"
	pb "territory/proto/territorypb"
)

// The migration messages (model.MigMsg) on the wire. Everything that arrives
// is checked before the core sees it: a message that fails a check is
// dropped with an error that says which field is wrong (migFromPB), the way
// a lost message would be; the protocol resends what matters.

// Bounds of what a migration message may carry. A chunk is
// TerritoryConfig.MigChunkBytes (64 KiB by default) and a catch-up batch
// ReplayBatch entries; gRPC's own limit (4 MiB a message) is below both.
const (
	maxMigChunkBytes    = 4 << 20
	maxMigEntries       = 1 << 16
	maxMigDetailBytes   = 1 << 10
	maxMigRouteKeyBytes = 256
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func migToPB(g *model.MigMsg) *pb.MigMsg {
	out := &pb.MigMsg{Kind: uint32(g.Kind), Subgraph: uint32(g.Subgraph), Epoch: g.Epoch, Src: uint32(g.From), Dest: uint32(g.To),
		SnapLsn: g.SnapLSN, Target: g.Target, Index: g.Index, Total: g.Total, Sum: g.Sum, ImageSum: g.ImageSum, Data: g.Data,
		Next: g.Next, FromLsn: g.FromLSN, RouteRev: g.RouteRev, RouteEpoch: g.RouteEpoch, Refusal: uint32(g.Refusal), Detail: g.Detail}
	for _, e := range g.Entries {
		out.Entries = append(out.Entries, &pb.LogEntry{Lsn: e.LSN, Data: e.Data})
	}
	if g.Route.Key != "" {
		out.Route = &pb.KV{Key: g.Route.Key, Value: g.Route.Value, ModRevision: g.Route.ModRevision, Lease: g.Route.Lease}
	}
	return out
}

// migFromPB checks an arriving migration message and converts it.
func migFromPB(g *pb.MigMsg) (*model.MigMsg, error) {
	if g == nil {
		return nil, fmt.Errorf("migration message: empty body")
	}
	kind := model.MigMsgKind(g.Kind)
	if g.Kind == 0 || g.Kind > uint32(model.MigKindMax) {
		return nil, fmt.Errorf("migration message: kind %d unknown (1..%d)", g.Kind, model.MigKindMax)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("migration %s of subgraph %d epoch %d: %s", kind, g.Subgraph, g.Epoch, fmt.Sprintf(format, args...))
	}
	if g.Epoch == 0 && kind != model.MigRequest && kind != model.MigRequestReply {
		return nil, bad("migration epoch 0")
	}
	if g.Refusal > uint32(model.MigRefusalMax) {
		return nil, bad("refusal %d unknown (0..%d)", g.Refusal, model.MigRefusalMax)
	}
	if len(g.Detail) > maxMigDetailBytes {
		return nil, bad("detail of %d bytes (at most %d)", len(g.Detail), maxMigDetailBytes)
	}
	if len(g.Data) > 0 && kind != model.MigChunk {
		return nil, bad("%d bytes of image data outside a chunk", len(g.Data))
	}
	if len(g.Entries) > 0 && kind != model.MigCatchup {
		return nil, bad("%d log entries outside a catch-up", len(g.Entries))
	}
	if g.Route != nil && kind != model.MigFlipped {
		return nil, bad("a route outside a flip")
	}
	switch kind {
	case model.MigChunk:
		switch {
		case g.Total == 0 || g.Index >= g.Total:
			return nil, bad("chunk index %d of %d", g.Index, g.Total)
		case len(g.Data) > maxMigChunkBytes:
			return nil, bad("chunk %d of %d bytes (at most %d)", g.Index, len(g.Data), maxMigChunkBytes)
		}
		if sum := crc32.Checksum(g.Data, castagnoli); sum != g.Sum {
			return nil, bad("chunk %d of %d: CRC32C of its %d bytes is %08x, the message says %08x", g.Index, g.Total, len(g.Data), sum, g.Sum)
		}
	case model.MigCatchup:
		if len(g.Entries) > maxMigEntries {
			return nil, bad("%d entries (at most %d)", len(g.Entries), maxMigEntries)
		}
		prev := g.SnapLsn
		for i, e := range g.Entries {
			switch {
			case e == nil || len(e.Data) == 0:
				return nil, bad("entry %d is empty", i)
			case e.Lsn <= prev:
				return nil, bad("entry %d at lsn %d, not after %d (snapshot lsn %d; entries must ascend)", i, e.Lsn, prev, g.SnapLsn)
			case e.Lsn > g.Target:
				return nil, bad("entry %d at lsn %d beyond the catch-up target %d", i, e.Lsn, g.Target)
			}
			prev = e.Lsn
		}
	case model.MigFlipped:
		if g.Route == nil {
			break // a manager restarted since the flip resends it without the route
		}
		want := model.RouteKey(model.SubgraphID(g.Subgraph))
		if len(g.Route.Key) > maxMigRouteKeyBytes || g.Route.Key != want {
			return nil, bad("route key %.64q, want %q", g.Route.Key, want)
		}
		if _, err := model.ParseRoute(model.KV{Key: g.Route.Key, Value: g.Route.Value, ModRevision: g.Route.ModRevision}); err != nil {
			return nil, bad("route: %v", err)
		}
	case model.MigRequestReply:
		if g.Refusal == 0 && g.Epoch == 0 {
			return nil, bad("accepted without a migration epoch")
		}
	}
	out := &model.MigMsg{Kind: kind, Subgraph: model.SubgraphID(g.Subgraph), Epoch: g.Epoch, From: model.HostID(g.Src), To: model.HostID(g.Dest),
		SnapLSN: g.SnapLsn, Target: g.Target, Index: g.Index, Total: g.Total, Sum: g.Sum, ImageSum: g.ImageSum, Next: g.Next, FromLSN: g.FromLsn,
		RouteRev: g.RouteRev, RouteEpoch: g.RouteEpoch, Refusal: model.MigRefusal(g.Refusal), Detail: g.Detail}
	if len(g.Data) > 0 {
		out.Data = g.Data
	}
	for _, e := range g.Entries {
		out.Entries = append(out.Entries, model.LogEntry{LSN: e.Lsn, Data: e.Data})
	}
	if g.Route != nil {
		out.Route = model.KV{Key: g.Route.Key, Value: g.Route.Value, ModRevision: g.Route.ModRevision, Lease: g.Route.Lease}
	}
	return out, nil
}
