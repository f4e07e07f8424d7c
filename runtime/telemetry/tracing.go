package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracerName is the instrumentation scope of territory's spans.
const tracerName = "territory"

// tracer is the installed tracer; nil while tracing is off.
var tracer atomic.Pointer[trace.Tracer]

// noopSpan is returned by Span while tracing is off: boxed once, so a call
// allocates nothing.
var noopSpan trace.Span = noop.Span{}

// Enabled reports whether Setup installed an exporting tracer provider.
func Enabled() bool { return tracer.Load() != nil }

// Setup installs OpenTelemetry tracing for serviceName if, and only if, the
// standard environment asks for it:
//
//   - OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER=none: off;
//   - otherwise on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
//     OTEL_EXPORTER_OTLP_ENDPOINT is set, exporting with OTLP over the
//     protocol of OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
//     OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", or "http/protobuf" (the default);
//   - the exporters read the rest of the OTLP variables themselves (headers,
//     timeout, compression, certificates, insecure), the SDK reads
//     OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_*, and the resource takes
//     OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES over serviceName.
//
// When off, Setup installs nothing, Span returns a shared no-op span and the
// returned shutdown does nothing. When on, it sets the global tracer provider
// and the W3C trace-context and baggage propagators; shutdown flushes the
// spans still queued (bounded by its context) and turns tracing off again.
// Call it once per process.
func Setup(ctx context.Context, serviceName string) (shutdown func(context.Context) error, err error) {
	off := func(context.Context) error { return nil }
	if isTrue(os.Getenv("OTEL_SDK_DISABLED")) {
		return off, nil
	}
	switch exp := strings.TrimSpace(strings.ToLower(os.Getenv("OTEL_TRACES_EXPORTER"))); exp {
	case "", "otlp":
	case "none":
		return off, nil
	default:
		return off, fmt.Errorf("telemetry: OTEL_TRACES_EXPORTER=%q: only otlp and none are supported", exp)
	}
	if os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" {
		return off, nil
	}
	protocol := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exporter sdktrace.SpanExporter
	switch strings.TrimSpace(protocol) {
	case "grpc":
		exporter, err = otlptracegrpc.New(ctx)
	case "", "http/protobuf":
		exporter, err = otlptracehttp.New(ctx)
	default:
		return off, fmt.Errorf("telemetry: OTLP protocol %q: only grpc and http/protobuf are supported", protocol)
	}
	if err != nil {
		return off, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
	}
	// Later options override earlier ones: the environment wins over serviceName.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", serviceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil && res == nil {
		_ = exporter.Shutdown(ctx)
		return off, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t := tp.Tracer(tracerName)
	tracer.Store(&t)
	return func(ctx context.Context) error {
		tracer.Store(nil)
		otel.SetTracerProvider(noop.NewTracerProvider())
		return tp.Shutdown(ctx)
	}, nil
}

func isTrue(s string) bool { return strings.EqualFold(strings.TrimSpace(s), "true") }

// Span starts a client span for one service call, named like "coord.txn",
// "log.append", "blob.put". While tracing is off it returns ctx unchanged and
// a shared no-op span, without allocating. Add attributes only when
// span.IsRecording(), and finish with End (or span.End()).
func Span(ctx context.Context, name string) (context.Context, trace.Span) {
	t := tracer.Load()
	if t == nil {
		return ctx, noopSpan
	}
	return (*t).Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient))
}

// End records err (if any) on span and ends it.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
