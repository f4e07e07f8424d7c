package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"territory/model"
	"territory/runtime/blob"
)

// Config is territoryd's YAML configuration (run and manager). Secrets never
// appear in it: they come from files (…_file) or from the environment
// (TERRITORY_ETCD_PASSWORD).
//
//	listen: 0.0.0.0:7420            # transport (run)
//	metrics_listen: 127.0.0.1:9420  # Prometheus /metrics ("" disables)
//	log_level: info
//	subgraphs: 16                   # fixed when the cluster is created
//	territories: [1, 2]             # ids this process runs (run)
//	bootstrap_territories: [1, 2, 3]  # the initial assignment (manager)
//	manager: 1000                   # the manager's host id (must be in hosts for run)
//	cache_dir: /var/lib/territory/cache  # territories' local cache files (run; optional)
//	hosts:                          # static host table: id -> address
//	  1: 10.0.0.1:7420
//	etcd:
//	  endpoints: [https://10.0.0.5:2379]
//	  username: territory
//	  password_file: /run/secrets/etcd-password
//	  tls: {ca_file: ca.pem, cert_file: client.pem, key_file: client-key.pem}
//	log:
//	  backend: local                # local (single node, dev only) | pulsar
//	  local: {path: /var/lib/territory/log.db}
//	  pulsar: {url: pulsar+ssl://broker:6651, token_file: /run/secrets/pulsar-token}
//	objstore:
//	  config_file: /etc/territory/objstore.yaml   # objstore's standard YAML
//	tls: {ca_file: …, cert_file: …, key_file: …}  # transport TLS (optional)
type Config struct {
	Listen               string            `yaml:"listen"`
	MetricsListen        string            `yaml:"metrics_listen"`
	LogLevel             string            `yaml:"log_level"`
	Subgraphs            uint32            `yaml:"subgraphs"`
	Territories          []uint32          `yaml:"territories"`
	BootstrapTerritories []uint32          `yaml:"bootstrap_territories"`
	Manager              uint32            `yaml:"manager"`
	CacheDir             string            `yaml:"cache_dir"`
	Hosts                map[uint32]string `yaml:"hosts"`
	Etcd                 EtcdConfig        `yaml:"etcd"`
	Log                  LogConfig         `yaml:"log"`
	Objstore             ObjstoreConfig    `yaml:"objstore"`
	TLS                  *TLSFiles         `yaml:"tls"`
}

// EtcdConfig connects to etcd.
type EtcdConfig struct {
	Endpoints    []string  `yaml:"endpoints"`
	Username     string    `yaml:"username"`
	PasswordFile string    `yaml:"password_file"`
	TLS          *TLSFiles `yaml:"tls"`
}

// LogConfig selects the log backend.
type LogConfig struct {
	Backend string `yaml:"backend"`
	Local   struct {
		Path string `yaml:"path"`
	} `yaml:"local"`
	Pulsar struct {
		URL       string `yaml:"url"`
		TokenFile string `yaml:"token_file"`
	} `yaml:"pulsar"`
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
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.validate(role); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
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
	if c.Subgraphs == 0 {
		add(errors.New("subgraphs: required, positive"))
	}
	if len(c.Etcd.Endpoints) == 0 {
		add(errors.New("etcd.endpoints: at least one endpoint is required"))
	}
	for i, ep := range c.Etcd.Endpoints {
		if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
			add(fmt.Errorf("etcd.endpoints[%d]: %q must start with http:// or https://", i, ep))
		}
	}
	add(checkFile("etcd.password_file", c.Etcd.PasswordFile))
	add(c.Etcd.TLS.validate("etcd.tls"))
	add(c.TLS.validate("tls"))
	for id, addr := range c.Hosts {
		if id == 0 {
			add(errors.New("hosts: host id 0 is not valid"))
		}
		add(checkAddr(fmt.Sprintf("hosts[%d]", id), addr, true))
	}
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
		}
		switch c.Log.Backend {
		case "local":
			if c.Log.Local.Path == "" {
				add(errors.New("log.local.path: required with log.backend local"))
			}
		case "pulsar":
			if c.Log.Pulsar.URL == "" {
				add(errors.New("log.pulsar.url: required with log.backend pulsar"))
			}
			add(checkFile("log.pulsar.token_file", c.Log.Pulsar.TokenFile))
		case "":
			add(errors.New("log.backend: required (local or pulsar)"))
		default:
			add(fmt.Errorf("log.backend: %q is not local or pulsar", c.Log.Backend))
		}
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
		add(c.checkObjstore())
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
