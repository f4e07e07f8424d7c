package blob

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thanos-io/objstore"

	"territory/runtime/servicetest"
)

// emulatorUniverse is a universe domain that is not Google's: see TestPortGCS.
const emulatorUniverse = "territory-emulator.invalid"

// TestPortGCS runs against a real GCS emulator (scripts/gcs-server.sh,
// fake-gcs-server) when TERRITORY_GCS_ENDPOINT is set.
//
// The bucket is built from objstore's standard GCS YAML, unchanged; the
// emulator is reached the way the Google client documents it,
// STORAGE_EMULATOR_HOST. objstore's GCS provider (HTTP mode) still wraps its
// transport in Google credentials before the client sees that variable (its
// no-auth switch is unexported), so some credentials must be found: the test
// writes a throwaway service-account key in a non-Google universe domain
// (GOOGLE_APPLICATION_CREDENTIALS + GOOGLE_CLOUD_UNIVERSE_DOMAIN). Outside
// googleapis.com the Google auth library signs a self-signed JWT locally
// instead of exchanging it at token_uri (which points at a closed port here),
// and the emulator ignores the Authorization header.
func TestPortGCS(t *testing.T) {
	endpoint := servicetest.Env(t, "TERRITORY_GCS_ENDPOINT", "start scripts/gcs-server.sh and export its env to run the GCS test")
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		t.Fatalf("TERRITORY_GCS_ENDPOINT=%q: want http://host:port/storage/v1/", endpoint)
	}
	t.Setenv("STORAGE_EMULATOR_HOST", u.Scheme+"://"+u.Host)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", emulatorServiceAccount(t))
	t.Setenv("GOOGLE_CLOUD_UNIVERSE_DOMAIN", emulatorUniverse)
	conf := fmt.Sprintf("type: GCS\nconfig:\n  bucket: %s\n", envOr("TERRITORY_GCS_BUCKET", "territory-test"))
	runRemotePort(t, conf)
}

// TestPortAzure runs against a real Azure Blob Storage emulator
// (scripts/azure-server.sh, Azurite) when TERRITORY_AZURE_ENDPOINT is set.
// objstore's AZURE provider builds https://<account>.<endpoint>/<container>
// from storage_account + endpoint, which Azurite cannot serve; its
// storage_connection_string takes a BlobEndpoint URL as is, so the path-style
// http://127.0.0.1:10000/devstoreaccount1 goes there.
func TestPortAzure(t *testing.T) {
	endpoint := servicetest.Env(t, "TERRITORY_AZURE_ENDPOINT", "start scripts/azure-server.sh and export its env to run the Azure test")
	account := envOr("TERRITORY_AZURE_ACCOUNT", "devstoreaccount1")
	t.Setenv("TERRITORY_AZURE_CONNECTION_STRING", fmt.Sprintf(
		"DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;",
		account, os.Getenv("TERRITORY_AZURE_KEY"), endpoint))
	conf := fmt.Sprintf(`type: AZURE
config:
  storage_account: %s
  storage_connection_string: ${TERRITORY_AZURE_CONNECTION_STRING}
  container: %s
  max_retries: 1
`, account, envOr("TERRITORY_AZURE_CONTAINER", "territory-test"))
	runRemotePort(t, conf)
}

// runRemotePort opens the bucket from YAML through this package and runs the
// port semantics and objstore's acceptance test under a fresh prefix (the
// emulators keep their data across runs).
func runRemotePort(t *testing.T, conf string) {
	s, err := Open(context.Background(), []byte(conf), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	root := fmt.Sprintf("run-%d/", time.Now().UnixNano())
	t.Run("port", func(t *testing.T) { runBlobSuite(t, s) })
	t.Run("acceptance", func(t *testing.T) {
		objstore.AcceptanceTest(t, objstore.NewPrefixedBucket(s.Bucket(), root+"acceptance"))
	})
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// emulatorServiceAccount writes a freshly generated service-account key file
// in the emulator universe and returns its path. It authenticates nothing.
func emulatorServiceAccount(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(map[string]string{
		"type":            "service_account",
		"project_id":      "territory-test",
		"private_key_id":  "territory-emulator",
		"private_key":     string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":    "emulator@territory-test.iam.gserviceaccount.com",
		"client_id":       "1",
		"token_uri":       "http://127.0.0.1:1/token", // never used: a token exchange would fail
		"universe_domain": emulatorUniverse,
	})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "emulator-service-account.json")
	if err := os.WriteFile(p, j, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
