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
	"os"
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
