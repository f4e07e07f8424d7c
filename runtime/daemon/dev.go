package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"territory/model"
	pb "territory/proto/territorypb"
	"territory/runtime/blob"
	"territory/runtime/driver"
	"territory/runtime/etcdcoord"
	"territory/runtime/etcdembed"
	"territory/runtime/locallog"
	"territory/runtime/transport"
)

// DevOptions configures dev mode.
type DevOptions struct {
	DataDir     string
	Listen      string // transport address (default 127.0.0.1:7420)
	Territories int    // territories in this process, ids 1..n (default 3)
	Subgraphs   uint32 // subgraphs of a new cluster (default 16)
	// Policy of a new cluster (nil: model.DefaultPolicy). An existing
	// cluster keeps the policy it was created with (Dev.Policy).
	Policy   *model.Policy
	Logger   *slog.Logger
	Metrics  *driver.Metrics
	Observer func(model.HostID, model.Fact)
}

// devState is what a data directory remembers between runs.
type devState struct {
	Subgraphs   uint32 `json:"subgraphs"`
	Territories int    `json:"territories"`
	EtcdClient  int    `json:"etcd_client_port"`
	EtcdPeer    int    `json:"etcd_peer_port"`
}

// Dev is a running dev-mode cluster.
type Dev struct {
	Addr         string // transport address clients dial
	EtcdEndpoint string
	Subgraphs    uint32
	Bootstrapped bool         // this start created the cluster
	Policy       model.Policy // the cluster's policy
	DataDir      string
	etcd         *etcdembed.Etcd
	coord        *etcdcoord.Coord
	log          *locallog.UnreplicatedLocalLog
	blob         *blob.Store
	tr           *transport.Transport
	ts           *Territories
	operational  *OperationalWatcher
	stopManager  context.CancelFunc
	managerDone  <-chan error
}

// DevManagerID is the manager's host id in dev mode (territories are 1..n).
const DevManagerID model.HostID = 1000

// StartDev starts dev mode: an embedded etcd member, the unreplicated local
// log and a filesystem bucket, all under DataDir, then the territories.
func StartDev(ctx context.Context, o DevOptions) (_ *Dev, err error) {
	if o.DataDir == "" {
		return nil, errors.New("dev: a data directory is required")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:7420"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	st, err := loadState(o)
	if err != nil {
		return nil, err
	}
	d := &Dev{DataDir: o.DataDir, Subgraphs: st.Subgraphs, operational: NewOperationalWatcher()}
	defer func() {
		if err != nil {
			d.Stop()
		}
	}()
	m, err := etcdembed.Single(filepath.Join(o.DataDir, "etcd"), st.EtcdClient, st.EtcdPeer)
	if err != nil {
		return nil, err
	}
	m.LogFile = filepath.Join(o.DataDir, "etcd.log")
	if d.etcd, err = etcdembed.Start(m, 30*time.Second); err != nil {
		return nil, err
	}
	d.EtcdEndpoint = m.Client
	if d.coord, err = etcdcoord.Dial(etcdcoord.Config{Endpoints: []string{m.Client}}, o.Logger); err != nil {
		return nil, err
	}
	ids := make([]model.HostID, st.Territories)
	for i := range ids {
		ids[i] = model.HostID(i + 1)
	}
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	var policy model.Policy
	want := model.DefaultPolicy()
	if o.Policy != nil {
		want = *o.Policy
	}
	if err := want.Validate(); err != nil {
		cancel()
		return nil, fmt.Errorf("dev: %w", err)
	}
	d.Bootstrapped, policy, err = Bootstrap(bctx, d.coord, st.Subgraphs, ids, want)
	d.Policy = policy
	cancel()
	if err != nil {
		return nil, err
	}
	if d.log, err = locallog.Open(filepath.Join(o.DataDir, "log.db")); err != nil {
		return nil, err
	}
	if d.blob, err = blob.Open(ctx, blob.FilesystemConfig(filepath.Join(o.DataDir, "blobs")), o.Logger); err != nil {
		return nil, err
	}
	info := &pb.InfoResponse{Subgraphs: st.Subgraphs, Hosts: map[uint32]string{}, Manager: uint32(DevManagerID)}
	if d.tr, err = transport.New(transport.Config{Listen: o.Listen, Logger: o.Logger, Info: info, CoordRead: d.coord.Do, CoordWatch: d.coord.Watch}); err != nil {
		return nil, err
	}
	d.Addr = d.tr.Addr()
	info.ManagerAddr = d.Addr
	for _, id := range ids {
		info.Hosts[uint32(id)] = d.Addr
	}
	observer := d.operational.Observe
	if o.Observer != nil {
		observer = func(h model.HostID, f model.Fact) {
			d.operational.Observe(h, f)
			o.Observer(h, f)
		}
	}
	svc := Services{Coord: d.coord, Log: d.log, Blob: d.blob}
	mctx, mcancel := context.WithCancel(context.Background())
	d.stopManager = mcancel
	if d.managerDone, err = StartManager(mctx, model.DefaultManagerConfig(DevManagerID, st.Subgraphs, ids), svc, d.tr, o.Logger, o.Metrics, o.Observer); err != nil {
		return nil, err
	}
	d.ts, err = StartTerritories(TerritoryOptions{IDs: ids, Subgraphs: st.Subgraphs, Services: svc,
		Transport: d.tr, Logger: o.Logger, Metrics: o.Metrics, Observer: observer, Policy: &policy,
		Manager: DevManagerID, DiskRoot: filepath.Join(o.DataDir, "cache")})
	if err != nil {
		return nil, err
	}
	return d, nil
}

func loadState(o DevOptions) (devState, error) {
	path := filepath.Join(o.DataDir, "dev.json")
	b, err := os.ReadFile(path)
	if err == nil {
		var st devState
		if err := json.Unmarshal(b, &st); err != nil {
			return devState{}, fmt.Errorf("dev: %s: %w", path, err)
		}
		if o.Subgraphs != 0 && o.Subgraphs != st.Subgraphs {
			return devState{}, fmt.Errorf("dev: the cluster in %s has %d subgraphs; --subgraphs %d cannot change it", o.DataDir, st.Subgraphs, o.Subgraphs)
		}
		if o.Territories != 0 && o.Territories != st.Territories {
			return devState{}, fmt.Errorf("dev: the cluster in %s has %d territories; --territories %d cannot change it", o.DataDir, st.Territories, o.Territories)
		}
		return st, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return devState{}, fmt.Errorf("dev: %w", err)
	}
	st := devState{Subgraphs: o.Subgraphs, Territories: o.Territories}
	if st.Subgraphs == 0 {
		st.Subgraphs = 16
	}
	if st.Territories == 0 {
		st.Territories = 3
	}
	if st.Territories >= int(DevManagerID) {
		return devState{}, fmt.Errorf("dev: at most %d territories", DevManagerID-1)
	}
	ports, err := etcdembed.FreePorts(2)
	if err != nil {
		return devState{}, err
	}
	st.EtcdClient, st.EtcdPeer = ports[0], ports[1]
	b, _ = json.MarshalIndent(st, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return devState{}, fmt.Errorf("dev: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return devState{}, fmt.Errorf("dev: %w", err)
	}
	return st, nil
}

// WaitOperational waits until every subgraph has an operational primary.
func (d *Dev) WaitOperational(ctx context.Context) error {
	return WaitOperational(ctx, d.operational, d.Subgraphs)
}

// Stop shuts everything down gracefully (territories first, etcd last).
func (d *Dev) Stop() error {
	var errs []error
	if d.ts != nil {
		errs = append(errs, d.ts.Stop())
	}
	if d.stopManager != nil {
		d.stopManager()
		if d.managerDone != nil {
			errs = append(errs, <-d.managerDone)
		}
	}
	if d.tr != nil {
		d.tr.Close()
	}
	if d.blob != nil {
		errs = append(errs, d.blob.Close())
	}
	if d.log != nil {
		errs = append(errs, d.log.Close())
	}
	if d.coord != nil {
		errs = append(errs, d.coord.Close())
	}
	if d.etcd != nil {
		d.etcd.Close()
	}
	return errors.Join(errs...)
}
