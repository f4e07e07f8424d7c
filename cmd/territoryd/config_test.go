package main

import (
	"fmt"
	"strings"
	"testing"

	"territory/model"
)

// pulsarRunConfig is a valid `run` configuration on the Pulsar log.
func pulsarRunConfig(t *testing.T, dir string) (string, string) {
	t.Helper()
	obj := writeFile(t, dir, "objstore.yaml", "type: FILESYSTEM\nconfig:\n  directory: "+dir+"\n")
	token := writeFile(t, dir, "token", "secret-token\n")
	ca := writeFile(t, dir, "ca.pem", "not checked here\n")
	return fmt.Sprintf(`listen: 127.0.0.1:7420
subgraphs: 4
territories: [1]
hosts: {1: "127.0.0.1:7420"}
etcd:
  endpoints: ["http://127.0.0.1:2379"]
  dial_timeout: 2s
policy:
  snapshot_every: 10
  decay_per_second_pm: 2000
log:
  backend: pulsar
  pulsar:
    service_url: pulsar+ssl://127.0.0.1:6651
    admin_url: https://127.0.0.1:8443
    tenant: public
    namespace: territory
    topic_prefix: sg
    ensemble_size: 3
    write_quorum: 3
    ack_quorum: 2
    operation_timeout: 5s
    token_file: %s
    tls_trust_certs_file: %s
objstore: {config_file: %s}
`, token, ca, obj), obj
}

func TestConfigPulsarAndPolicy(t *testing.T) {
	dir := t.TempDir()
	good, _ := pulsarRunConfig(t, dir)
	c, err := loadConfig(writeFile(t, dir, "good.yaml", good), "run")
	if err != nil {
		t.Fatal(err)
	}
	want := model.DefaultPolicy()
	want.SnapshotEvery, want.DecayPerSecondPM = 10, 2000
	if c.policy != want {
		t.Fatalf("policy %+v, want %+v", c.policy, want)
	}
	if c.Log.Pulsar.operationTimeout.String() != "5s" || c.Etcd.dialTimeout.String() != "2s" || c.bootstrapWait.String() != "1m0s" {
		t.Fatalf("durations: %v %v %v", c.Log.Pulsar.operationTimeout, c.Etcd.dialTimeout, c.bootstrapWait)
	}
	r := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("%q is not in the config", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	for _, tc := range []struct{ field, body string }{
		{"log.pulsar.service_url", r("service_url: pulsar+ssl://127.0.0.1:6651", "service_url: http://127.0.0.1:6650")},
		{"log.pulsar.service_url: required", r("service_url: pulsar+ssl://127.0.0.1:6651", "service_url: ''")},
		{"log.pulsar.service_url", r("service_url: pulsar+ssl://127.0.0.1:6651", "service_url: pulsar://127.0.0.1")},
		{"log.pulsar.admin_url", r("admin_url: https://127.0.0.1:8443", "admin_url: pulsar://127.0.0.1:8080")},
		{"log.pulsar.admin_url: required", r("    admin_url: https://127.0.0.1:8443\n", "")},
		{"log.pulsar.namespace", r("namespace: territory", "namespace: a/b")},
		{"log.pulsar.tenant", r("tenant: public", "tenant: 'x:y'")},
		{"log.pulsar.topic_prefix", r("topic_prefix: sg", "topic_prefix: 'a b'")},
		{"log.pulsar.ack_quorum", r("ack_quorum: 2", "ack_quorum: 0")},
		{"log.pulsar.write_quorum", r("ack_quorum: 2", "ack_quorum: 4")},
		{"log.pulsar.ensemble_size", r("ensemble_size: 3", "ensemble_size: 2")},
		{"log.pulsar.operation_timeout", r("operation_timeout: 5s", "operation_timeout: 5")},
		{"log.pulsar.operation_timeout", r("operation_timeout: 5s", "operation_timeout: -1s")},
		{"log.pulsar.token_file", r("token_file: ", "token_file: /nonexistent")},
		{"log.pulsar.tls_trust_certs_file", r("tls_trust_certs_file: ", "tls_trust_certs_file: /nonexistent")},
		{"log.pulsar.tls_trust_certs_file: set, but",
			strings.Replace(r("pulsar+ssl://127.0.0.1:6651", "pulsar://127.0.0.1:6650"), "https://127.0.0.1:8443", "http://127.0.0.1:8080", 1)},
		{"log.pulsar.url (line", r("service_url:", "url:")},
		{"policy.snapshot_every", r("snapshot_every: 10", "snapshot_every: -1")},
		{"policy.snapshot_every (line 9)", r("snapshot_every: 10", "snapshot_every: ten")},
		{"policy.decay_per_second_pm", r("decay_per_second_pm: 2000", "decay_per_second_pm: 2000000")},
		{"policy.max_out_degree", r("policy:\n", "policy:\n  max_out_degree: 0\n")},
		{"policy.snapshot_evry", r("snapshot_every: 10", "snapshot_evry: 10")},
		{"etcd.dial_timeout", r("dial_timeout: 2s", "dial_timeout: soon")},
		{"etcd.endpoints[0]", r(`"http://127.0.0.1:2379"`, `"http://127.0.0.1"`)},
		{"subgraphs (line 2)", r("subgraphs: 4", "subgraphs: -4")},
		{"subgraphs: 65537 exceeds the maximum 65536", r("subgraphs: 4", "subgraphs: 65537")},
		{"bootstrap_wait", good + "bootstrap_wait: forever\n"},
		{"log_level", good + "log_level: loud\n"},
		{"territories[0]", r("territories: [1]", "territories: [1000]") + "manager: 1000\n"},
	} {
		_, err := loadConfig(writeFile(t, dir, "bad.yaml", tc.body), "run")
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v", tc.field, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret-token") {
			t.Errorf("the error shows a secret: %v", err)
		}
	}
	// The manager reads the policy too, and rejects a territory id that is its own.
	mgr := strings.Replace(good, "territories: [1]", "bootstrap_territories: [1, 7]\nmanager: 7", 1)
	if _, err := loadConfig(writeFile(t, dir, "mgr.yaml", mgr), "manager"); err == nil || !strings.Contains(err.Error(), "bootstrap_territories[1]") {
		t.Errorf("manager id among the territories: %v", err)
	}
}

func TestFieldAtLine(t *testing.T) {
	src := "a: 1\nb:\n  c: x\n  d: [1, 2]\ne: {f: 1, g: 2}\n"
	var n = map[int]string{1: "a", 3: "b.c", 4: "b.d", 5: "e"}
	for line, want := range n {
		err := nameYAMLError([]byte(src), fmt.Errorf("line %d: cannot unmarshal", line))
		if !strings.HasPrefix(err.Error(), want+" (line") {
			t.Errorf("line %d: %v, want %s", line, err, want)
		}
	}
}
