// Package servicetest decides what an integration test does when a real
// service it needs (Pulsar, S3, the GCS or Azure emulator) is absent: it
// skips, with a message saying how to start the service, unless
// TERRITORY_REQUIRE_SERVICES=1, under which it fails instead.
// scripts/test-integration.sh sets that switch (CI runs it), so a service
// that did not come up, or a variable the script forgot to export, can never
// turn a test run into a silent pass of skipped tests.
//
// Every test that would skip for an absent service goes through Env or
// Absent. Opt-in tests (those that stop or freeze the shared Pulsar) skip on
// their own switches, not here: they are not about an absent service.
package servicetest

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// RequireVar is the switch: "1" turns every absent-service skip into a failure.
const RequireVar = "TERRITORY_REQUIRE_SERVICES"

// Required reports whether absent services fail the tests.
func Required() bool { return os.Getenv(RequireVar) == "1" }

// Absent ends the test for an absent service: a skip with msg, or under
// TERRITORY_REQUIRE_SERVICES=1 a failure with msg.
func Absent(t testing.TB, msg string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s (%s=1: a test may not skip for an absent service)", msg, RequireVar)
	}
	t.Skip(msg)
}

// Env returns the variable that points a test at a service; when it is unset
// the test ends through Absent with "NAME is not set: hint".
func Env(t testing.TB, name, hint string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Absent(t, name+" is not set: "+hint)
	}
	return v
}

// S3Config is the runtime/blob configuration of the S3 server the
// integration scripts start (scripts/s3-server.sh): TERRITORY_S3_ENDPOINT,
// and the bucket, region and keys from their TERRITORY_S3_* variables or the
// script's defaults. The keys reach the configuration through the
// environment (the test's own, restored afterwards), as in production.
func S3Config(t testing.TB) []byte {
	t.Helper()
	endpoint := Env(t, "TERRITORY_S3_ENDPOINT", "start scripts/s3-server.sh and export its env (or run scripts/test-integration.sh)")
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	host := strings.TrimPrefix(strings.TrimPrefix(endpoint, "http://"), "https://")
	conf := fmt.Sprintf(`type: S3
config:
  bucket: %s
  endpoint: %s
  region: %s
  access_key: ${TERRITORY_S3_ACCESS_KEY}
  secret_key: ${TERRITORY_S3_SECRET_KEY}
  insecure: %v
  bucket_lookup_type: path
`, env("TERRITORY_S3_BUCKET", "territory-test"), host, env("TERRITORY_S3_REGION", "us-east-1"), strings.HasPrefix(endpoint, "http://"))
	t.Setenv("TERRITORY_S3_ACCESS_KEY", env("TERRITORY_S3_ACCESS_KEY", "territory"))
	t.Setenv("TERRITORY_S3_SECRET_KEY", env("TERRITORY_S3_SECRET_KEY", "territory-secret"))
	return []byte(conf)
}
