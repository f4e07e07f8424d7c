package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"territory/model"
	"territory/runtime/blob"
)

// Config is territoryd's YAML configuration (run and manager). Secrets never
// appear in it: they come from files (…_file) or from the environment
// (TERRITORY_ETCD_PASSWORD, TERRITORY_PULSAR_TOKEN).
//
//	listen: 0.0.0.0:7420            # transport (run)
//	metrics_listen: 127.0.0.1:9420  # Prometheus /metrics ("" disables)
//	log_level: info
//	subgraphs: 16                   # fixed when the cluster is created
//	territories: [1, 2]             # ids this process runs (run)
//	bootstrap_territories: [1, 2, 3]  # the initial assignment (manager)
//	bootstrap_wait: 60s             # run: how long to wait for the manager to create the cluster
//	manager: 1000                   # the manager's host id (must be in hosts for run)
//	cache_dir: /var/lib/territory/cache  # territories' local cache files (run; optional)
//	hosts:                          # static host table: id -> address
//	  1: 10.0.0.1:7420
//	policy:                         # the cluster's policy, written once by the manager's bootstrap
//	  snapshot_every: 1000          # events between snapshots of a subgraph (0: never)
//	  decay_per_second_pm: 1000     # potential lost per second of downtime, parts per million
//	  max_out_degree: 8
//	  max_in_degree: 8
//	  supernode_degree: 12
//	etcd:
//	  endpoints: [https://10.0.0.5:2379]
//	  dial_timeout: 5s              # bound of the reachability check at start
//	  username: territory
//	  password_file: /run/secrets/etcd-password
//	  tls: {ca_file: ca.pem, cert_file: client.pem, key_file: client-key.pem}
//	log:
//	  backend: pulsar               # local (single node, dev only) | pulsar
//	  local: {path: /var/lib/territory/log.db}
//	  pulsar:
//	    service_url: pulsar+ssl://broker:6651
//	    admin_url: https://broker:8443
//	    tenant: public
//	    namespace: territory
//	    topic_prefix: subgraph      # stream s is persistent://tenant/namespace/<prefix>-<s>
//	    ensemble_size: 3            # bookkeeper placement of the namespace (all three or none)
//	    write_quorum: 3
//	    ack_quorum: 2
//	    operation_timeout: 30s
//	    token_file: /run/secrets/pulsar-token   # or TERRITORY_PULSAR_TOKEN
//	    tls_trust_certs_file: /etc/territory/pulsar-ca.pem
//	    skip_namespace_setup: false # true: the namespace and its policies are managed elsewhere
//	objstore:
//	  config_file: /etc/territory/objstore.yaml   # objstore's standard YAML
//	tls: {ca_file: …, cert_file: …, key_file: …}  # transport TLS (optional)
type Config struct {
	Listen               string             `yaml:"listen"`
	MetricsListen        string             `yaml:"metrics_listen"`
	LogLevel             string             `yaml:"log_level"`
	Subgraphs            uint32             `yaml:"subgraphs"`
	Territories          []uint32           `yaml:"territories"`
	BootstrapTerritories []uint32           `yaml:"bootstrap_territories"`
	BootstrapWait        string             `yaml:"bootstrap_wait"`
	Manager              uint32             `yaml:"manager"`
	CacheDir             string             `yaml:"cache_dir"`
	Hosts                map[uint32]string  `yaml:"hosts"`
	Policy               *PolicyConfig      `yaml:"policy"`
	Etcd                 EtcdConfig         `yaml:"etcd"`
	Log                  LogConfig          `yaml:"log"`
	Objstore             ObjstoreConfig     `yaml:"objstore"`
	TLS                  *TLSFiles          `yaml:"tls"`
	ControlPlane         ControlPlaneConfig `yaml:"control_plane"`
	// Proxy (run): the territories host supernode proxies, consuming the
	// egress stream that `territoryd egress` publishes.
	Proxy bool `yaml:"proxy"`
	// EgressID (egress): this egress node's host id; run several with
	// distinct ids, one leads and the others stand by.
	EgressID uint32 `yaml:"egress_id"`

	// Parsed by validate.
	bootstrapWait time.Duration
	policy        model.Policy
}

// ControlPlaneConfig sets the manager's periods (durations such as "30s").
// The defaults suit production; the simulator uses shorter ones.
type ControlPlaneConfig struct {
	HostLoss      string `yaml:"host_loss"`      // a territory without its alive key this long is lost (default 10s)
	SnapshotGrace string `yaml:"snapshot_grace"` // a superseded snapshot's blob is kept this long (default 10m)
	StaleUpload   string `yaml:"stale_upload"`   // an unfinished snapshot record is expired after this long (default 5m)
	Orphan        string `yaml:"orphan"`         // a blob without a record is deleted after this long (default 10m)
	Reconcile     string `yaml:"reconcile"`      // period of the reconciliation controller (default 30s)
}

// apply parses the periods into a manager configuration; errors name the field.
func (cp ControlPlaneConfig) apply(m *model.ManagerConfig) error {
	var errs []error
	set := func(field, v string, def time.Duration, dst *int64) {
		d, err := parseDuration("control_plane."+field, v, def)
		if err == nil && d < time.Duration(m.TickMs)*time.Millisecond {
			err = fmt.Errorf("control_plane.%s: %s is shorter than the manager's tick (%dms)", field, d, m.TickMs)
		}
		if err != nil {
			errs = append(errs, err)
			return
		}
		*dst = d.Milliseconds()
	}
	set("host_loss", cp.HostLoss, 10*time.Second, &m.HostLossMs)
	set("snapshot_grace", cp.SnapshotGrace, 10*time.Minute, &m.GraceMs)
	set("stale_upload", cp.StaleUpload, 5*time.Minute, &m.StaleUploadMs)
	set("orphan", cp.Orphan, 10*time.Minute, &m.OrphanMs)
	set("reconcile", cp.Reconcile, 30*time.Second, &m.ReconcileMs)
	return errors.Join(errs...)
}

// PolicyConfig overrides fields of model.DefaultPolicy for a new cluster.
// Values are read as signed integers so that a negative one is reported
// against its field.
type PolicyConfig struct {
	MaxOutDegree     *int64 `yaml:"max_out_degree"`
	MaxInDegree      *int64 `yaml:"max_in_degree"`
	DecayPerSecondPM *int64 `yaml:"decay_per_second_pm"`
	SupernodeDegree  *int64 `yaml:"supernode_degree"`
	SnapshotEvery    *int64 `yaml:"snapshot_every"`
}

// EtcdConfig connects to etcd.
type EtcdConfig struct {
	Endpoints    []string  `yaml:"endpoints"`
	DialTimeout  string    `yaml:"dial_timeout"`
	Username     string    `yaml:"username"`
	PasswordFile string    `yaml:"password_file"`
	TLS          *TLSFiles `yaml:"tls"`

	dialTimeout time.Duration
}

// LogConfig selects the log backend.
type LogConfig struct {
	Backend string `yaml:"backend"`
	Local   struct {
		Path string `yaml:"path"`
	} `yaml:"local"`
	Pulsar PulsarConfig `yaml:"pulsar"`
}

// PulsarConfig configures runtime/pulsarlog.
type PulsarConfig struct {
	ServiceURL         string `yaml:"service_url"`
	AdminURL           string `yaml:"admin_url"`
	Tenant             string `yaml:"tenant"`
	Namespace          string `yaml:"namespace"`
	TopicPrefix        string `yaml:"topic_prefix"`
	EnsembleSize       int    `yaml:"ensemble_size"`
	WriteQuorum        int    `yaml:"write_quorum"`
	AckQuorum          int    `yaml:"ack_quorum"`
	OperationTimeout   string `yaml:"operation_timeout"`
	TokenFile          string `yaml:"token_file"`
	TLSTrustCertsFile  string `yaml:"tls_trust_certs_file"`
	SkipNamespaceSetup bool   `yaml:"skip_namespace_setup"`

	operationTimeout time.Duration
}

// ObjstoreConfig points at objstore's YAML.
type ObjstoreConfig struct {
	ConfigFile string `yaml:"config_file"`
}

// TLSFiles are PEM files.
type TLSFiles struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// loadConfig reads and validates a configuration for the given role
// ("run" or "manager"). Every error names the field.
func loadConfig(path, role string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config %s: empty file", path)
		}
		return nil, fmt.Errorf("config %s: %w", path, nameYAMLError(b, err))
	}
	if err := c.validate(role); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

// nameYAMLError rewrites the decoder's "line N: ..." messages to name the
// field at that line (the decoder reports lines and Go types, not fields).
func nameYAMLError(src []byte, err error) error {
	var root yaml.Node
	if yaml.Unmarshal(src, &root) != nil {
		return err // a syntax error: its line is all there is
	}
	name := func(msg string) string {
		m := yamlLine.FindStringSubmatchIndex(msg)
		if m == nil {
			return msg
		}
		line, _ := strconv.Atoi(msg[m[2]:m[3]])
		field := fieldAtLine(&root, line)
		if field == "" {
			return msg
		}
		return field + " (" + msg[m[0]:m[1]-2] + "): " + msg[m[1]:]
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, e := range te.Errors {
			msgs[i] = name(e)
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return errors.New(name(err.Error()))
}

// fieldAtLine is the dotted path of the key at a line of a YAML document
// (with several keys on the line, their common prefix).
func fieldAtLine(root *yaml.Node, line int) string {
	var found []string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if (k.Line == line || v.Line == line) && v.Kind == yaml.ScalarNode {
					found = append(found, p)
				} else if k.Line == line && len(v.Content) == 0 {
					found = append(found, p)
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if c.Line == line && c.Kind == yaml.ScalarNode {
					found = append(found, p)
				}
				walk(c, p)
			}
		}
	}
	walk(root, "")
	if len(found) == 0 {
		return ""
	}
	common := found[0]
	for _, f := range found[1:] {
		for !strings.HasPrefix(f, common) {
			i := strings.LastIndexAny(common, ".[")
			if i < 0 {
				return ""
			}
			common = common[:i]
		}
	}
	return common
}

// parseDuration checks an optional duration field ("" gives def).
func parseDuration(field, v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration (e.g. 5s, 1m30s)", field, v)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s: %s must be positive", field, v)
	}
	return d, nil
}

func checkAddr(field, addr string, required bool) error {
	if addr == "" {
		if required {
			return fmt.Errorf("%s: required (host:port)", field)
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s: %q is not host:port: %v", field, addr, err)
	}
	return nil
}

func checkFile(field, path string) error {
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s: %v", field, err)
	}
	return nil
}

func (t *TLSFiles) validate(field string) error {
	if t == nil {
		return nil
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("%s.cert_file and %s.key_file: give both or neither", field, field)
	}
	return errors.Join(checkFile(field+".ca_file", t.CAFile), checkFile(field+".cert_file", t.CertFile), checkFile(field+".key_file", t.KeyFile))
}

func (c *Config) validate(role string) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(checkAddr("metrics_listen", c.MetricsListen, false))
	if c.LogLevel != "" {
		var l slog.Level
		if l.UnmarshalText([]byte(c.LogLevel)) != nil {
			add(fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel))
		}
	}
	if c.Subgraphs == 0 {
		add(errors.New("subgraphs: required, positive"))
	}
	if c.Subgraphs > model.MaxSubgraphs {
		add(fmt.Errorf("subgraphs: %d exceeds the maximum %d", c.Subgraphs, model.MaxSubgraphs))
	}
	if len(c.Etcd.Endpoints) == 0 {
		add(errors.New("etcd.endpoints: at least one endpoint is required"))
	}
	for i, ep := range c.Etcd.Endpoints {
		u, err := url.Parse(ep)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
			add(fmt.Errorf("etcd.endpoints[%d]: %q must start with http:// or https://", i, ep))
		case u.Port() == "":
			add(fmt.Errorf("etcd.endpoints[%d]: %q needs a port", i, ep))
		}
	}
	var err error
	c.Etcd.dialTimeout, err = parseDuration("etcd.dial_timeout", c.Etcd.DialTimeout, 5*time.Second)
	add(err)
	add(checkFile("etcd.password_file", c.Etcd.PasswordFile))
	add(c.Etcd.TLS.validate("etcd.tls"))
	add(c.TLS.validate("tls"))
	for id, addr := range c.Hosts {
		if id == 0 {
			add(errors.New("hosts: host id 0 is not valid"))
		}
		add(checkAddr(fmt.Sprintf("hosts[%d]", id), addr, true))
	}
	c.policy, err = c.Policy.policy()
	add(err)
	add(c.ControlPlane.apply(&model.ManagerConfig{TickMs: 250})) // checked for every role, applied by the manager
	switch role {
	case "run":
		add(checkAddr("listen", c.Listen, true))
		if len(c.Territories) == 0 {
			add(errors.New("territories: at least one territory id is required"))
		}
		for i, id := range c.Territories {
			if id == 0 {
				add(fmt.Errorf("territories[%d]: ids are positive", i))
			}
			if id == c.Manager && id != 0 {
				add(fmt.Errorf("territories[%d]: %d is the manager's id", i, id))
			}
		}
		c.bootstrapWait, err = parseDuration("bootstrap_wait", c.BootstrapWait, 60*time.Second)
		add(err)
		add(c.checkLog())
		if c.Manager != 0 {
			if _, ok := c.Hosts[c.Manager]; !ok {
				add(fmt.Errorf("hosts: the manager (%d) needs an address", c.Manager))
			}
		}
		add(c.checkObjstore())
	case "manager":
		add(checkAddr("listen", c.Listen, true))
		if c.Manager == 0 {
			add(errors.New("manager: the manager's host id is required"))
		}
		if len(c.BootstrapTerritories) == 0 {
			add(errors.New("bootstrap_territories: at least one territory id is required"))
		}
		for i, id := range c.BootstrapTerritories {
			if id == 0 || id == c.Manager {
				add(fmt.Errorf("bootstrap_territories[%d]: %d is not a territory id (positive, not the manager's)", i, id))
			}
		}
		add(c.checkObjstore())
	case "egress":
		if c.EgressID == 0 {
			add(errors.New("egress_id: this egress node's host id is required"))
		}
		if c.EgressID == c.Manager && c.EgressID != 0 {
			add(fmt.Errorf("egress_id: %d is the manager's id", c.EgressID))
		}
		if _, ok := c.Hosts[c.EgressID]; ok && c.EgressID != 0 {
			add(fmt.Errorf("egress_id: %d is already a host in hosts", c.EgressID))
		}
		add(c.checkLog())
	}
	return errors.Join(errs...)
}

// checkLog validates the log section (run and egress).
func (c *Config) checkLog() error {
	switch c.Log.Backend {
	case "local":
		if c.Log.Local.Path == "" {
			return errors.New("log.local.path: required with log.backend local")
		}
	case "pulsar":
		return c.Log.Pulsar.validate("log.pulsar")
	case "":
		return errors.New("log.backend: required (local or pulsar)")
	default:
		return fmt.Errorf("log.backend: %q is not local or pulsar", c.Log.Backend)
	}
	return nil
}

// policy is model.DefaultPolicy with the configured fields (p may be nil).
func (p *PolicyConfig) policy() (model.Policy, error) {
	pol := model.DefaultPolicy()
	if p == nil {
		return pol, nil
	}
	var errs []error
	set := func(field string, v *int64, dst *uint32, lo, hi int64) {
		if v == nil {
			return
		}
		if *v < lo || *v > hi {
			errs = append(errs, fmt.Errorf("policy.%s: %d is outside %d..%d", field, *v, lo, hi))
			return
		}
		*dst = uint32(*v)
	}
	set("max_out_degree", p.MaxOutDegree, &pol.MaxOutDegree, 1, 1<<32-1)
	set("max_in_degree", p.MaxInDegree, &pol.MaxInDegree, 1, 1<<32-1)
	set("decay_per_second_pm", p.DecayPerSecondPM, &pol.DecayPerSecondPM, 0, 1_000_000)
	set("supernode_degree", p.SupernodeDegree, &pol.SupernodeDegree, 0, 1<<32-1)
	set("snapshot_every", p.SnapshotEvery, &pol.SnapshotEvery, 0, 1<<32-1)
	if err := errors.Join(errs...); err != nil {
		return model.Policy{}, err
	}
	if err := pol.Validate(); err != nil {
		return model.Policy{}, fmt.Errorf("policy: %w", err)
	}
	return pol, nil
}

// pulsarName is what a tenant, namespace or topic prefix may contain.
var pulsarName = regexp.MustCompile(`^[A-Za-z0-9_.=-]+$`)

func (p *PulsarConfig) validate(field string) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	checkURL := func(name, v string, schemes ...string) (secure bool) {
		if v == "" {
			add(fmt.Errorf("%s.%s: required with log.backend pulsar (%s://host:port)", field, name, schemes[0]))
			return false
		}
		u, err := url.Parse(v)
		if err != nil || !slices.Contains(schemes, u.Scheme) || u.Host == "" {
			add(fmt.Errorf("%s.%s: %q must be %s://host:port", field, name, v, strings.Join(schemes, ":// or ")))
			return false
		}
		if u.Port() == "" {
			add(fmt.Errorf("%s.%s: %q needs a port", field, name, v))
		}
		return strings.HasSuffix(u.Scheme, "s") || strings.HasSuffix(u.Scheme, "+ssl")
	}
	tlsService := checkURL("service_url", p.ServiceURL, "pulsar", "pulsar+ssl")
	tlsAdmin := checkURL("admin_url", p.AdminURL, "http", "https")
	for _, n := range []struct{ name, v string }{{"tenant", p.Tenant}, {"namespace", p.Namespace}, {"topic_prefix", p.TopicPrefix}} {
		if n.v != "" && !pulsarName.MatchString(n.v) {
			add(fmt.Errorf("%s.%s: %q may only contain letters, digits, '_', '.', '=' and '-'", field, n.name, n.v))
		}
	}
	e, w, a := p.EnsembleSize, p.WriteQuorum, p.AckQuorum
	switch {
	case e == 0 && w == 0 && a == 0: // the default 3/3/2
	case e == 0 || w == 0 || a == 0:
		for _, q := range []struct {
			name string
			v    int
		}{{"ensemble_size", e}, {"write_quorum", w}, {"ack_quorum", a}} {
			if q.v == 0 {
				add(fmt.Errorf("%s.%s: required when any of ensemble_size, write_quorum, ack_quorum is set (got %d/%d/%d)", field, q.name, e, w, a))
			}
		}
	case a < 1:
		add(fmt.Errorf("%s.ack_quorum: %d must be at least 1", field, a))
	case w < a:
		add(fmt.Errorf("%s.write_quorum: %d is below ack_quorum %d", field, w, a))
	case e < w:
		add(fmt.Errorf("%s.ensemble_size: %d is below write_quorum %d", field, e, w))
	}
	var err error
	p.operationTimeout, err = parseDuration(field+".operation_timeout", p.OperationTimeout, 30*time.Second)
	add(err)
	add(checkFile(field+".token_file", p.TokenFile))
	add(checkFile(field+".tls_trust_certs_file", p.TLSTrustCertsFile))
	if p.TLSTrustCertsFile != "" && !tlsService && !tlsAdmin && len(errs) == 0 {
		add(fmt.Errorf("%s.tls_trust_certs_file: set, but neither service_url nor admin_url uses TLS (pulsar+ssl://, https://)", field))
	}
	return errors.Join(errs...)
}

func (c *Config) checkObjstore() error {
	if c.Objstore.ConfigFile == "" {
		return errors.New("objstore.config_file: required (objstore's bucket YAML)")
	}
	b, err := os.ReadFile(c.Objstore.ConfigFile)
	if err != nil {
		return fmt.Errorf("objstore.config_file: %v", err)
	}
	if _, err := blob.ParseConfig(b); err != nil {
		return fmt.Errorf("objstore.config_file: %v", err)
	}
	return nil
}

// tlsConfig loads PEM files into a tls.Config (nil if t is nil).
func (t *TLSFiles) tlsConfig(server bool) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificates", t.CAFile)
		}
		if server {
			cfg.ClientCAs = pool
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		} else {
			cfg.RootCAs = pool
		}
	}
	return cfg, nil
}

// secret reads a secret from the environment variable env, else from file.
func secret(env, file string) (string, error) {
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func hostIDs(ids []uint32) []model.HostID {
	out := make([]model.HostID, len(ids))
	for i, id := range ids {
		out[i] = model.HostID(id)
	}
	return out
}
