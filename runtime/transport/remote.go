package transport

import (
	"context"
	"crypto/tls"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"territory/model"
	pb "territory/proto/territorypb"
)

// Remote is a client's connection to a daemon's Info and CoordRead RPCs.
type Remote struct {
	conn   *grpc.ClientConn
	client pb.TransportClient
}

// DialRemote connects (lazily) to a daemon.
func DialRemote(addr string, tlsCfg *tls.Config) (*Remote, error) {
	conn, err := grpc.NewClient(addr, dialOpts(tlsCfg)...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &Remote{conn: conn, client: pb.NewTransportClient(conn)}, nil
}

// Close closes the connection.
func (r *Remote) Close() error { return r.conn.Close() }

// Info asks the daemon how the cluster is laid out.
func (r *Remote) Info(ctx context.Context) (subgraphs uint32, hosts map[model.HostID]string, err error) {
	resp, err := r.client.Info(ctx, &pb.InfoRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return 0, nil, err
	}
	hosts = map[model.HostID]string{}
	for id, addr := range resp.Hosts {
		hosts[model.HostID(id)] = addr
	}
	return resp.Subgraphs, hosts, nil
}

// Manager asks the daemon for the manager's host id and address (0 and "":
// it does not know them).
func (r *Remote) Manager(ctx context.Context) (model.HostID, string, error) {
	resp, err := r.client.Info(ctx, &pb.InfoRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return 0, "", err
	}
	return model.HostID(resp.Manager), resp.ManagerAddr, nil
}

// Do implements driver.Coord for reads (get and range) through the daemon.
// Every other kind is refused (ErrUnavailable): a client only reads routes.
func (r *Remote) Do(ctx context.Context, req model.CoordRequest) (model.CoordResponse, model.ServiceErr, error) {
	if req.Kind != model.CoordGet && req.Kind != model.CoordRange {
		return model.CoordResponse{}, model.ErrUnavailable, nil
	}
	resp, err := r.client.CoordRead(ctx, &pb.CoordReadRequest{Key: req.Key, Prefix: req.Kind == model.CoordRange})
	if err != nil {
		if status.Code(err) == codes.Unimplemented {
			return model.CoordResponse{}, model.ErrUnavailable, nil
		}
		return model.CoordResponse{}, model.ErrNone, err
	}
	if resp.ServiceErr != 0 {
		return model.CoordResponse{}, model.ServiceErr(resp.ServiceErr), nil
	}
	out := model.CoordResponse{Revision: resp.Revision}
	for _, kv := range resp.Kvs {
		out.KVs = append(out.KVs, model.KV{Key: kv.Key, Value: kv.Value, ModRevision: kv.ModRevision, Lease: kv.Lease})
	}
	return out, model.ErrNone, nil
}
