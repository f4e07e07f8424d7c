package chaos

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/sirupsen/logrus"

	"territory/model"
	"territory/runtime/pulsarlog"
)

// Services are the real services' coordinates, as the scripts/*.sh env
// commands export them.
type Services struct {
	PulsarURL, AdminURL                             string
	S3Endpoint, S3Region, S3Bucket, S3Key, S3Secret string
}

// ServicesMissing says how to get the services when they are not set.
const ServicesMissing = "TERRITORY_PULSAR_URL and TERRITORY_S3_ENDPOINT must be set: run scripts/test-integration.sh " +
	"(or `eval \"$(scripts/pulsar-standalone.sh env)\"; eval \"$(scripts/s3-server.sh env)\"` with both started)"

// HaveServices reports whether the services' variables are set.
func HaveServices() bool {
	return os.Getenv("TERRITORY_PULSAR_URL") != "" && os.Getenv("TERRITORY_S3_ENDPOINT") != ""
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// ServicesFromEnv reads the services' coordinates, and sets the S3
// credentials' variables to the scripts' defaults when unset (the objstore
// YAML refers to them as ${VAR}; territoryd processes inherit them).
func ServicesFromEnv() (Services, error) {
	if !HaveServices() {
		return Services{}, fmt.Errorf("%s", ServicesMissing)
	}
	for k, v := range map[string]string{"TERRITORY_S3_ACCESS_KEY": "territory", "TERRITORY_S3_SECRET_KEY": "territory-secret"} {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	return Services{
		PulsarURL:  os.Getenv("TERRITORY_PULSAR_URL"),
		AdminURL:   env("TERRITORY_PULSAR_ADMIN_URL", "http://127.0.0.1:8080"),
		S3Endpoint: os.Getenv("TERRITORY_S3_ENDPOINT"),
		S3Region:   env("TERRITORY_S3_REGION", "us-east-1"),
		S3Bucket:   env("TERRITORY_S3_BUCKET", "territory-test"),
		S3Key:      env("TERRITORY_S3_ACCESS_KEY", "territory"),
		S3Secret:   env("TERRITORY_S3_SECRET_KEY", "territory-secret"),
	}, nil
}

// ObjstoreYAML is the objstore configuration file of the S3 bucket, every
// key under prefix. Credentials stay ${VAR} references.
func (s Services) ObjstoreYAML(prefix string) string { return s.ObjstoreYAMLAt(prefix, s.S3Host()) }

// S3Host is the S3 endpoint's host:port.
func (s Services) S3Host() string {
	return strings.TrimPrefix(strings.TrimPrefix(s.S3Endpoint, "http://"), "https://")
}

// ObjstoreYAMLAt is ObjstoreYAML with the S3 server reached at host (a proxy).
func (s Services) ObjstoreYAMLAt(prefix, host string) string {
	return fmt.Sprintf(`type: S3
config:
  bucket: %s
  endpoint: %s
  region: %s
  access_key: ${TERRITORY_S3_ACCESS_KEY}
  secret_key: ${TERRITORY_S3_SECRET_KEY}
  insecure: %v
  bucket_lookup_type: path
prefix: %s
`, s.S3Bucket, host, s.S3Region, strings.HasPrefix(s.S3Endpoint, "http://"), prefix)
}

// PulsarSection is the log section of a `territoryd run` configuration.
func PulsarSection(serviceURL, adminURL, namespace, topicPrefix string) string {
	return fmt.Sprintf(`log:
  backend: pulsar
  pulsar:
    service_url: %s
    admin_url: %s
    namespace: %s
    topic_prefix: %s
    ensemble_size: 3
    write_quorum: 3
    ack_quorum: 2
    operation_timeout: 10s
`, serviceURL, adminURL, namespace, topicPrefix)
}

// CommonSpec is what every role's configuration shares.
type CommonSpec struct {
	LogLevel      string
	Subgraphs     uint32
	Hosts         []HostAddr // territories and the manager
	Manager       uint32
	Endpoints     []string // etcd
	ObjstoreFile  string
	PolicySection string // YAML body of the policy section (indented two spaces), or ""
}

// HostAddr is one entry of the hosts map.
type HostAddr struct {
	ID   uint32
	Addr string
}

// YAML renders the shared part of a configuration.
func (c CommonSpec) YAML() string {
	hosts := make([]string, len(c.Hosts))
	for i, h := range c.Hosts {
		hosts[i] = fmt.Sprintf("%d: %q", h.ID, h.Addr)
	}
	eps := make([]string, len(c.Endpoints))
	for i, e := range c.Endpoints {
		eps[i] = strconv.Quote(e)
	}
	policy := ""
	if c.PolicySection != "" {
		policy = "policy:\n" + c.PolicySection + "\n"
	}
	return fmt.Sprintf(`log_level: %s
metrics_listen: ""
subgraphs: %d
manager: %d
hosts: {%s}
etcd:
  endpoints: [%s]
  dial_timeout: 3s
objstore: {config_file: %s}
%s`, c.LogLevel, c.Subgraphs, c.Manager, strings.Join(hosts, ", "), strings.Join(eps, ", "), c.ObjstoreFile, policy)
}

// FastControlPlane is the manager's control-plane section with the
// simulator's periods, far shorter than production's defaults, so that
// failover and garbage collection happen within a test.
const FastControlPlane = "control_plane: {host_loss: 3s, snapshot_grace: 2s, stale_upload: 3s, orphan: 3s, reconcile: 500ms}\n"

// QuietPulsarLogger discards pulsar-client-go's logging.
func QuietPulsarLogger() plog.Logger {
	lr := logrus.New()
	lr.SetOutput(io.Discard)
	return plog.NewLoggerWithLogrus(lr)
}

// NewLogReader is a pulsarlog client of a cluster's streams; it only reads.
func NewLogReader(ctx context.Context, s Services, namespace, topicPrefix string) (*pulsarlog.Log, error) {
	return pulsarlog.New(ctx, pulsarlog.Config{ServiceURL: s.PulsarURL, AdminURL: s.AdminURL,
		Namespace: namespace, TopicPrefix: topicPrefix, SkipNamespaceSetup: true, OperationTimeout: 20 * time.Second,
		Logger: QuietPulsarLogger()})
}

// ReadEvents reads a subgraph's whole committed log through pulsarlog and
// decodes it; an entry that does not decode as its subgraph's event at its
// LSN is an error.
func ReadEvents(ctx context.Context, l *pulsarlog.Log, sg model.SubgraphID) ([]model.LogEntry, []model.Event, error) {
	var entries []model.LogEntry
	from := uint64(1)
	for {
		resp, serr, err := l.Do(ctx, model.LogRequest{Kind: model.LogRead, Stream: uint32(sg), FromLSN: from, MaxEntries: 1024})
		if err != nil || serr != model.ErrNone {
			return nil, nil, fmt.Errorf("read subgraph %d from %d: %v %v", sg, from, serr, err)
		}
		entries = append(entries, resp.Entries...)
		from += uint64(len(resp.Entries))
		if len(resp.Entries) == 0 || from > resp.TailLSN {
			break
		}
	}
	evs := make([]model.Event, len(entries))
	for i, e := range entries {
		ev, err := model.DecodeEvent(e.Data)
		if err != nil || ev.LSN != e.LSN || ev.LSN != uint64(i+1) || ev.Subgraph != sg {
			return nil, nil, fmt.Errorf("subgraph %d: entry %d (lsn %d) does not decode as its event: %+v %v", sg, i, e.LSN, ev, err)
		}
		evs[i] = ev
	}
	return entries, evs, nil
}

// RawMsg is the header of one message of a stream's topic, in topic order
// (runtime/pulsarlog's message properties).
type RawMsg struct {
	Kind  string // data, open, attach
	Epoch uint64
	LSN   uint64
}

// ScanTopic reads every message of a topic with a plain pulsar-client-go reader.
func ScanTopic(ctx context.Context, url, topic string) ([]RawMsg, error) {
	cl, err := pulsar.NewClient(pulsar.ClientOptions{URL: url, Logger: QuietPulsarLogger()})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	r, err := cl.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []RawMsg
	for r.HasNext() {
		m, err := r.Next(ctx)
		if err != nil {
			return out, fmt.Errorf("scan %s: %w", topic, err)
		}
		p := m.Properties()
		e, _ := strconv.ParseUint(p["territory.epoch"], 10, 64)
		l, _ := strconv.ParseUint(p["territory.lsn"], 10, 64)
		out = append(out, RawMsg{Kind: p["territory.kind"], Epoch: e, LSN: l})
	}
	return out, nil
}
