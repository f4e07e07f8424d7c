package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// otelEnv lists every variable Setup or the exporters read that a test must
// not inherit from the machine.
var otelEnv = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
	"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
}

// cleanEnv unsets otelEnv for the test (t.Setenv restores them after).
func cleanEnv(t *testing.T) {
	for _, k := range otelEnv {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func TestSetupOffWithoutEnv(t *testing.T) {
	cleanEnv(t)
	shutdown, err := Setup(context.Background(), "territoryd")
	if err != nil {
		t.Fatal(err)
	}
	if Enabled() {
		t.Fatal("tracing on without any OTLP endpoint")
	}
	ctx := context.Background()
	got, span := Span(ctx, "coord.txn")
	if got != ctx || span.IsRecording() || span.SpanContext().IsValid() {
		t.Errorf("off: Span must return ctx unchanged and a no-op span")
	}
	if n := testing.AllocsPerRun(100, func() {
		_, s := Span(ctx, "coord.txn")
		End(s, nil)
	}); n != 0 {
		t.Errorf("off: Span+End allocate %v times per call", n)
	}
	if err := shutdown(ctx); err != nil {
		t.Error(err)
	}
}

func TestSetupOffWhenDisabled(t *testing.T) {
	for name, env := range map[string][2]string{
		"sdk disabled":  {"OTEL_SDK_DISABLED", "TRUE"},
		"exporter none": {"OTEL_TRACES_EXPORTER", "none"},
	} {
		t.Run(name, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
			t.Setenv(env[0], env[1])
			shutdown, err := Setup(context.Background(), "territoryd")
			if err != nil {
				t.Fatal(err)
			}
			defer shutdown(context.Background())
			if Enabled() {
				t.Errorf("%s=%s: tracing should be off", env[0], env[1])
			}
		})
	}
}

func TestSetupRejectsUnsupported(t *testing.T) {
	for name, env := range map[string][2]string{
		"json":   {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
		"zipkin": {"OTEL_TRACES_EXPORTER", "zipkin"},
	} {
		t.Run(name, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
			t.Setenv(env[0], env[1])
			if _, err := Setup(context.Background(), "territoryd"); err == nil || Enabled() {
				t.Errorf("%s=%s: want an error and tracing off (err %v)", env[0], env[1], err)
			}
		})
	}
}

// received collects what an in-test OTLP receiver got.
type received struct {
	mu   sync.Mutex
	reqs []*coltracepb.ExportTraceServiceRequest
}

func (r *received) add(req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
}

// find returns the first span named name and its resource's service.name.
func (r *received) find(name string) (*tracepb.Span, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, req := range r.reqs {
		for _, rs := range req.GetResourceSpans() {
			var svc string
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					svc = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					if s.GetName() == name {
						return s, svc
					}
				}
			}
		}
	}
	return nil, ""
}

// exportOne sets tracing up, records one failed coord.txn span with a child,
// and shuts down (which must flush it).
func exportOne(t *testing.T, rec *received) {
	t.Helper()
	ctx := context.Background()
	shutdown, err := Setup(ctx, "territoryd-test")
	if err != nil {
		t.Fatal(err)
	}
	if !Enabled() {
		t.Fatal("tracing off with an OTLP endpoint set")
	}
	cctx, span := Span(ctx, "coord.txn")
	if !span.IsRecording() {
		t.Fatal("span not recording")
	}
	_, child := Span(cctx, "log.append")
	End(child, nil)
	End(span, errors.New("compare failed"))
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if Enabled() {
		t.Error("tracing still on after shutdown")
	}
	s, svc := rec.find("coord.txn")
	if s == nil {
		t.Fatal("coord.txn was not exported")
	}
	if svc != "territoryd-test" {
		t.Errorf("service.name = %q", svc)
	}
	if s.GetKind() != tracepb.Span_SPAN_KIND_CLIENT || s.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("coord.txn: kind %v status %v", s.GetKind(), s.GetStatus())
	}
	c, _ := rec.find("log.append")
	if c == nil || !bytes.Equal(c.GetParentSpanId(), s.GetSpanId()) || !bytes.Equal(c.GetTraceId(), s.GetTraceId()) {
		t.Errorf("log.append should be a child of coord.txn: %v", c)
	}
}

func otlpHTTPReceiver(t *testing.T, rec *received) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		data, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(data, req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rec.add(req)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestExportOTLPHTTP(t *testing.T) {
	t.Run("endpoint", func(t *testing.T) {
		cleanEnv(t)
		rec := &received{}
		srv := otlpHTTPReceiver(t, rec)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL) // the exporter adds /v1/traces
		exportOne(t, rec)
	})
	t.Run("traces endpoint", func(t *testing.T) {
		cleanEnv(t)
		rec := &received{}
		srv := otlpHTTPReceiver(t, rec)
		t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", srv.URL+"/v1/traces")
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
		exportOne(t, rec)
	})
}

type grpcReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	rec *received
}

func (g grpcReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.rec.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func TestExportOTLPGRPC(t *testing.T) {
	cleanEnv(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &received{}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, grpcReceiver{rec: rec})
	go gs.Serve(lis)
	defer gs.Stop()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+lis.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
	exportOne(t, rec)
}
