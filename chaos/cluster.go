package chaos

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"territory/model"
	"territory/runtime/etcdcoord"
)

// Namespace is the Pulsar namespace of every chaos topic; each run has its
// own topic prefix in it.
const Namespace = "territory-chaos"

// ManagerHost is the manager's name in a fault schedule, ManagerID its host id.
const (
	ManagerHost = "m"
	ManagerID   = 1000
	// EtcdPeer is the coordination store's name in a fault schedule.
	EtcdPeer = "etcd"
)

// Cluster is one real cluster: a 3-member etcd of separate processes (each
// pair of members talking through its own toxiproxy proxy), a toxiproxy
// proxy in front of each member for every territoryd process, the manager
// and one `territoryd run` process per territory (t1 is territory 1, ...), on
// the shared Pulsar and S3.
type Cluster struct {
	Dir, Bin  string
	Svc       Services
	Prefix    string // Pulsar topic prefix
	S3Prefix  string
	Subgraphs uint32
	Hosts     []string // territories' names, t1..tN
	MgrAddr   string

	etcd    *etcdCluster
	proxies map[string][]*Proxy // by host (manager included), one per etcd member
	addrs   map[string]string
	mu      sync.Mutex // procs and lost: the fault executor replaces processes while recovery timers read them
	procs   map[string]*Proc
	lost    map[string]bool
	s3      map[string]*Proxy // by territory: its path to the S3 server
	co      *etcdcoord.Coord
}

// hostID is a territory's id: t3 is 3.
func hostID(name string) uint32 {
	var id uint32
	fmt.Sscanf(name, "t%d", &id)
	return id
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// StartCluster starts etcd, the proxies, the manager and every territory,
// and waits until each territory serves its initial subgraphs. Close stops it.
func StartCluster(bin, memberBin, dir, name string, svc Services, territories int, subgraphs uint32, policy string) (*Cluster, error) {
	c := &Cluster{Dir: dir, Bin: bin, Svc: svc, Prefix: "chaos-" + name, S3Prefix: "chaos/" + name, Subgraphs: subgraphs,
		proxies: map[string][]*Proxy{}, s3: map[string]*Proxy{}, addrs: map[string]string{}, procs: map[string]*Proc{}, lost: map[string]bool{}}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	var err error
	if c.etcd, err = startEtcd(memberBin, dir, name); err != nil {
		return nil, err
	}
	for i := 1; i <= territories; i++ {
		c.Hosts = append(c.Hosts, fmt.Sprintf("t%d", i))
	}
	var hosts []HostAddr
	for _, h := range append(slices.Clone(c.Hosts), ManagerHost) {
		for i, ep := range c.etcd.clients {
			p, err := NewProxy(name+"-"+h+"-"+MemberName(i+1), ep)
			if err != nil {
				return nil, err
			}
			c.proxies[h] = append(c.proxies[h], p)
		}
		if c.addrs[h], err = freeAddr(); err != nil {
			return nil, err
		}
		id := uint32(ManagerID)
		if h != ManagerHost {
			id = hostID(h)
		}
		hosts = append(hosts, HostAddr{ID: id, Addr: c.addrs[h]})
	}
	c.MgrAddr = c.addrs[ManagerHost]
	objConf := func(h string) (string, error) {
		s3 := svc.S3Host()
		if h != ManagerHost {
			p, err := NewProxy(name+"-"+h+"-s3", s3)
			if err != nil {
				return "", err
			}
			c.s3[h], s3 = p, p.Addr()
		}
		path := filepath.Join(dir, "objstore-"+h+".yaml")
		return path, os.WriteFile(path, []byte(svc.ObjstoreYAMLAt(c.S3Prefix, s3)), 0o600)
	}
	common := func(h string) (string, error) {
		obj, err := objConf(h)
		if err != nil {
			return "", err
		}
		var eps []string
		for _, p := range c.proxies[h] {
			eps = append(eps, "http://"+p.Addr())
		}
		return CommonSpec{LogLevel: "info", Subgraphs: subgraphs, Hosts: hosts, Manager: ManagerID,
			Endpoints: eps, ObjstoreFile: obj, PolicySection: policy}.YAML(), nil
	}
	var ids []string
	for _, h := range c.Hosts {
		ids = append(ids, fmt.Sprint(hostID(h)))
	}
	mc, err := common(ManagerHost)
	if err != nil {
		return nil, err
	}
	mgr := mc + FastControlPlane + fmt.Sprintf("listen: %s\nbootstrap_territories: [%s]\n", c.MgrAddr, strings.Join(ids, ", "))
	if err := os.WriteFile(filepath.Join(dir, "manager.yaml"), []byte(mgr), 0o600); err != nil {
		return nil, err
	}
	for _, h := range c.Hosts {
		hc, err := common(h)
		if err != nil {
			return nil, err
		}
		body := hc + fmt.Sprintf("listen: %s\nterritories: [%d]\nbootstrap_wait: 30s\ncache_dir: %s\n", c.addrs[h], hostID(h), c.DataDir(h)) +
			PulsarSection(svc.PulsarURL, svc.AdminURL, Namespace, c.Prefix)
		if err := os.WriteFile(filepath.Join(dir, h+".yaml"), []byte(body), 0o600); err != nil {
			return nil, err
		}
	}
	if err := c.start(ManagerHost, "manager"); err != nil {
		return nil, err
	}
	for _, h := range c.Hosts {
		if err := c.start(h, "run"); err != nil {
			return nil, err
		}
	}
	for i, h := range c.Hosts {
		var sgs []model.SubgraphID
		for sg := uint32(0); sg < subgraphs; sg++ {
			if int(sg)%len(c.Hosts) == i { // model.InitialRoutes: round robin over the territories
				sgs = append(sgs, model.SubgraphID(sg))
			}
		}
		if _, err := c.Proc(h).WaitOperational(90*time.Second, sgs...); err != nil {
			return nil, err
		}
	}
	ok = true
	return c, nil
}

// DataDir is a territory's local data directory (its snapshot cache).
func (c *Cluster) DataDir(h string) string { return filepath.Join(c.Dir, "data-"+h) }

func (c *Cluster) start(h, role string) error {
	cfg := filepath.Join(c.Dir, h+".yaml")
	if h == ManagerHost {
		cfg = filepath.Join(c.Dir, "manager.yaml")
	}
	p, err := StartProc(c.Bin, c.Dir, h, role, "--config", cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.procs[h] = p
	c.mu.Unlock()
	_, err = p.WaitListening(60 * time.Second)
	return err
}

// Proc is a host's current process (nil before the start).
func (c *Cluster) Proc(h string) *Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[h]
}

// Lost reports whether a host was lost.
func (c *Cluster) Lost(h string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost[h]
}

// Kill kills a host's process with SIGKILL.
func (c *Cluster) Kill(h string) error { return c.Proc(h).Kill() }

// Restart starts a host's process again with its configuration and data dir.
func (c *Cluster) Restart(h string) error {
	if h == ManagerHost {
		return c.start(h, "manager")
	}
	return c.start(h, "run")
}

// Lose kills a host and removes its data directory: it never comes back.
func (c *Cluster) Lose(h string) error {
	if err := c.Kill(h); err != nil {
		return err
	}
	c.mu.Lock()
	c.lost[h] = true
	c.mu.Unlock()
	return os.RemoveAll(c.DataDir(h))
}

// Pause stops a host's process (SIGSTOP); Resume continues it (SIGCONT).
func (c *Cluster) Pause(h string) error { return c.Proc(h).Signal(syscall.SIGSTOP) }

// Resume continues a paused host's process.
func (c *Cluster) Resume(h string) error { return c.Proc(h).Signal(syscall.SIGCONT) }

// CutEtcd makes every etcd member unreachable from h (Proxy.Cut).
func (c *Cluster) CutEtcd(h string) error {
	for _, p := range c.proxies[h] {
		p.Cut()
	}
	return nil
}

// HealEtcd ends CutEtcd.
func (c *Cluster) HealEtcd(h string) error {
	for _, p := range c.proxies[h] {
		if err := p.Heal(); err != nil {
			return err
		}
	}
	return nil
}

// PartitionEtcd black-holes the paths between h and every etcd member
// (Proxy.Partition).
func (c *Cluster) PartitionEtcd(h string) error {
	for _, p := range c.proxies[h] {
		if err := p.Partition(); err != nil {
			return err
		}
	}
	return nil
}

// HealPartition ends PartitionEtcd.
func (c *Cluster) HealPartition(h string) error {
	for _, p := range c.proxies[h] {
		if err := p.Unpartition(); err != nil {
			return err
		}
	}
	return nil
}

// SlowEtcd adds ms of latency each way between every process and etcd.
func (c *Cluster) SlowEtcd(ms int64) error {
	for _, h := range append(slices.Clone(c.Hosts), ManagerHost) {
		for _, p := range c.proxies[h] {
			if err := p.Slow(ms); err != nil {
				return err
			}
		}
	}
	return nil
}

// HealSlow ends SlowEtcd.
func (c *Cluster) HealSlow() error {
	for _, h := range append(slices.Clone(c.Hosts), ManagerHost) {
		for _, p := range c.proxies[h] {
			if err := p.Unslow(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Coord is an etcd client of the cluster (every member, direct, not through a proxy).
func (c *Cluster) Coord() (*etcdcoord.Coord, error) {
	if c.co != nil {
		return c.co, nil
	}
	co, err := etcdcoord.Dial(etcdcoord.Config{Endpoints: c.etcd.endpoints()}, nil)
	if err != nil {
		return nil, err
	}
	c.co = co
	return co, nil
}

// ExpireSession revokes the lease of h's liveness key (alive/<id>) in etcd:
// its session expires as if the lease had timed out.
func (c *Cluster) ExpireSession(h string) error {
	co, err := c.Coord()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := co.Client().Get(ctx, model.AliveKey(model.HostID(hostID(h))))
	if err != nil {
		return fmt.Errorf("read %s's liveness key: %w", h, err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].Lease == 0 {
		return fmt.Errorf("%s holds no liveness lease to expire", h)
	}
	if _, err := co.Client().Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		return fmt.Errorf("revoke %s's lease: %w", h, err)
	}
	return nil
}

// Close kills every process and stops the proxies and etcd.
func (c *Cluster) Close() {
	c.mu.Lock()
	procs := maps.Values(c.procs)
	c.mu.Unlock()
	for p := range procs {
		_ = p.Kill()
	}
	for _, p := range c.s3 {
		p.Close()
	}
	for _, ps := range c.proxies {
		for _, p := range ps {
			p.Close()
		}
	}
	if c.co != nil {
		c.co.Close()
	}
	if c.etcd != nil {
		c.etcd.close()
	}
}

// PartitionS3 black-holes the path between territory h and the S3 server.
func (c *Cluster) PartitionS3(h string) error { return c.s3[h].Partition() }

// HealS3 ends PartitionS3.
func (c *Cluster) HealS3(h string) error { return c.s3[h].Unpartition() }

// DegradeS3 adds latency and a bandwidth cap on the territories' S3 paths.
func (c *Cluster) DegradeS3(hosts []string, ms, kbps int64) error {
	for _, h := range hosts {
		if err := c.s3[h].Degrade(ms, kbps); err != nil {
			return err
		}
	}
	return nil
}

// UndegradeS3 ends DegradeS3.
func (c *Cluster) UndegradeS3(hosts []string, ms, kbps int64) error {
	for _, h := range hosts {
		if err := c.s3[h].Undegrade(ms, kbps); err != nil {
			return err
		}
	}
	return nil
}
