package esotel

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName names the tracer and the meter.
const instrumentationName = "github.com/esv2/esv2/esotel"

// Attribute keys of spans and metrics.
const (
	AttrStream          = attribute.Key("esv2.stream")
	AttrExpectedVersion = attribute.Key("esv2.expected_version")
	AttrVersion         = attribute.Key("esv2.version")
	AttrPosition        = attribute.Key("esv2.position")
	AttrEvents          = attribute.Key("esv2.events")
	AttrAppended        = attribute.Key("esv2.appended")
	AttrDuplicates      = attribute.Key("esv2.duplicates")
	AttrBytes           = attribute.Key("esv2.bytes")
	AttrConflict        = attribute.Key("esv2.conflict")
	AttrAdapter         = attribute.Key("esv2.adapter")
	AttrOutcome         = attribute.Key("esv2.outcome")
	AttrSnapshot        = attribute.Key("esv2.snapshot")
	AttrFound           = attribute.Key("esv2.found")
	AttrAttempts        = attribute.Key("esv2.attempts")
	AttrAttempt         = attribute.Key("esv2.attempt")
	AttrGaveUp          = attribute.Key("esv2.gave_up")
	AttrCommandID       = attribute.Key("esv2.command_id")
	AttrSubscription    = attribute.Key("esv2.subscription")
	AttrMember          = attribute.Key("esv2.member")
	AttrFirstPosition   = attribute.Key("esv2.first_position")
	AttrLastPosition    = attribute.Key("esv2.last_position")
	AttrLag             = attribute.Key("esv2.lag")
)

// Option configures WrapStore, RepositoryHooks and SubscriptionHooks.
type Option func(*config)

type config struct {
	tp         trace.TracerProvider
	mp         metric.MeterProvider
	propagator propagation.TextMapPropagator
	adapter    string
}

// WithTracerProvider sets the provider of the tracer; the default is the
// global one (otel.GetTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider sets the provider of the meter; the default is the
// global one (otel.GetMeterProvider).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithPropagator sets how the trace context is written into and read from
// event metadata; the default is W3C Trace Context
// (propagation.TraceContext), whose traceparent and tracestate are kept
// under eventstore.TraceParentKey and eventstore.TraceStateKey.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.propagator = p }
}

// WithAdapter sets the esv2.adapter attribute of the store's spans and
// metrics; by default it is the wrapped store's package name ("sqlite",
// "postgres").
func WithAdapter(name string) Option {
	return func(c *config) { c.adapter = name }
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.propagator == nil {
		c.propagator = propagation.TraceContext{}
	}
	return c
}

func (c config) tracer() trace.Tracer {
	return c.tp.Tracer(instrumentationName)
}

func (c config) meter() metric.Meter {
	return c.mp.Meter(instrumentationName)
}

// fail marks span as failed with err.
func fail(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// must returns the instrument, or a no-op one when the meter refused it:
// instrumentation must not fail the program it observes.
func must[T any](inst T, err error, noop T) T {
	if err != nil {
		return noop
	}
	return inst
}
