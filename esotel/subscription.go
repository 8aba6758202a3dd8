package esotel

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// maxLinks caps the links of one batch span: a batch of thousands of
// events from as many requests would otherwise carry thousands.
const maxLinks = 128

// SubscriptionHooks returns hooks (for subscription.WithHooks) that trace
// each call of a subscription's handler as an "esv2.subscription.batch"
// span (kind consumer; esv2.subscription, esv2.member, esv2.events,
// esv2.first_position, esv2.last_position, esv2.attempt, esv2.lag), parent
// of the spans the handler makes with the context it gets, and linked to
// the spans that appended its events (their trace context is in the
// events' metadata, written by a store wrapped with [WrapStore], in this
// process or another). Metrics: esv2.subscription.events,
// esv2.subscription.lag and esv2.subscription.parked, by
// esv2.subscription, and esv2.subscription.replays (replays of parked
// events made at a request) by esv2.subscription and esv2.outcome
// ("replayed" or "failed").
func SubscriptionHooks(opts ...Option) subscription.Hooks {
	cfg := newConfig(opts)
	tracer := cfg.tracer()
	prop := cfg.propagator
	m := cfg.meter()
	var nm noop.Meter
	c, err := m.Int64Counter("esv2.subscription.events", metric.WithUnit("{event}"),
		metric.WithDescription("Events handed to a subscription's handler that succeeded."))
	handled := must[metric.Int64Counter](c, err, noopCounter(nm))
	c, err = m.Int64Counter("esv2.subscription.parked", metric.WithUnit("{event}"),
		metric.WithDescription("Events a subscription set aside (the Park policy)."))
	parked := must[metric.Int64Counter](c, err, noopCounter(nm))
	c, err = m.Int64Counter("esv2.subscription.replays", metric.WithUnit("{event}"),
		metric.WithDescription("Parked events a subscription replayed at a request, by outcome."))
	replays := must[metric.Int64Counter](c, err, noopCounter(nm))
	g, err := m.Int64Gauge("esv2.subscription.lag", metric.WithUnit("{position}"),
		metric.WithDescription("Positions between the store's head and the last event of a subscription's latest batch."))
	lag := must[metric.Int64Gauge](g, err, func() metric.Int64Gauge { g, _ := nm.Int64Gauge("noop"); return g }())
	return subscription.Hooks{
		Batch: func(ctx context.Context, b subscription.BatchInfo) (context.Context, func(error)) {
			first, last := b.Events[0].Position, b.Events[len(b.Events)-1].Position
			behind := int64(0)
			if b.Head > last {
				behind = int64(b.Head - last)
			}
			name := metric.WithAttributes(AttrSubscription.String(b.Subscription))
			lag.Record(ctx, behind, name)
			ctx, span := tracer.Start(ctx, "esv2.subscription.batch",
				trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithLinks(links(prop, b.Events)...),
				trace.WithAttributes(
					AttrSubscription.String(b.Subscription), AttrMember.String(b.Member),
					AttrEvents.Int(len(b.Events)), AttrFirstPosition.Int64(int64(first)),
					AttrLastPosition.Int64(int64(last)), AttrAttempt.Int(b.Attempt), AttrLag.Int64(behind)))
			n := int64(len(b.Events))
			return ctx, func(err error) {
				if err != nil {
					fail(span, err)
				} else {
					handled.Add(ctx, n, name)
				}
				span.End()
			}
		},
		Parked: func(ctx context.Context, name string, _ eventstore.Recorded, _ error) {
			parked.Add(ctx, 1, metric.WithAttributes(AttrSubscription.String(name)))
		},
		Replayed: func(ctx context.Context, name string, _ subscription.Parked, err error) {
			outcome := "replayed"
			if err != nil {
				outcome = "failed"
			}
			replays.Add(ctx, 1, metric.WithAttributes(AttrSubscription.String(name), AttrOutcome.String(outcome)))
		},
	}
}

// links returns a link to the appending span of each event that carries a
// trace context, once per span, at most maxLinks.
func links(prop propagation.TextMapPropagator, events []eventstore.Recorded) []trace.Link {
	var out []trace.Link
	var seen map[trace.SpanID]bool
	for i := range events {
		md := events[i].Metadata
		if md[eventstore.TraceParentKey] == "" {
			continue
		}
		sc := trace.SpanContextFromContext(prop.Extract(context.Background(), metadataCarrier(md)))
		if !sc.IsValid() || seen[sc.SpanID()] {
			continue
		}
		if seen == nil {
			seen = make(map[trace.SpanID]bool)
		}
		seen[sc.SpanID()] = true
		out = append(out, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{
			AttrStream.String(events[i].StreamID), AttrPosition.Int64(int64(events[i].Position)),
		}})
		if len(out) == maxLinks {
			break
		}
	}
	return out
}

// metadataCarrier reads a propagator's headers from event metadata (see
// metadataKey).
type metadataCarrier map[string]string

func (c metadataCarrier) Get(key string) string { return c[metadataKey(key)] }

func (c metadataCarrier) Set(key, value string) { c[metadataKey(key)] = value }

func (c metadataCarrier) Keys() []string {
	var keys []string
	for k := range c {
		switch {
		case k == eventstore.TraceParentKey:
			keys = append(keys, "traceparent")
		case k == eventstore.TraceStateKey:
			keys = append(keys, "tracestate")
		case len(k) > len("esv2.trace.") && k[:len("esv2.trace.")] == "esv2.trace.":
			keys = append(keys, k[len("esv2.trace."):])
		}
	}
	return keys
}
