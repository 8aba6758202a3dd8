package esotel

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/esv2/esv2/aggregate"
)

// RepositoryHooks returns hooks (for aggregate.Config.Hooks) that trace a
// repository's Load, Save and Update calls as "esv2.load", "esv2.save" and
// "esv2.update" spans (esv2.stream, esv2.version, esv2.position,
// esv2.events, esv2.attempts, esv2.gave_up), and count Update's retries
// (esv2.update.retries) and give-ups (esv2.update.give_ups). Give the
// repository a store wrapped by [WrapStore] too, and its appends and reads
// become children of these spans.
func RepositoryHooks(opts ...Option) aggregate.Hooks {
	cfg := newConfig(opts)
	tracer := cfg.tracer()
	m := cfg.meter()
	var nm noop.Meter
	c, err := m.Int64Counter("esv2.update.retries", metric.WithUnit("{attempt}"),
		metric.WithDescription("Update attempts made again after a concurrency conflict."))
	retries := must[metric.Int64Counter](c, err, noopCounter(nm))
	c, err = m.Int64Counter("esv2.update.give_ups", metric.WithUnit("{update}"),
		metric.WithDescription("Updates that met a conflict on every attempt."))
	giveUps := must[metric.Int64Counter](c, err, noopCounter(nm))
	return aggregate.Hooks{
		Call: func(ctx context.Context, c aggregate.CallInfo) (context.Context, func(aggregate.CallResult)) {
			attrs := []attribute.KeyValue{AttrStream.String(c.StreamID)}
			if c.CommandID != "" {
				attrs = append(attrs, AttrCommandID.String(c.CommandID))
			}
			ctx, span := tracer.Start(ctx, "esv2."+c.Op, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
			return ctx, func(r aggregate.CallResult) {
				defer span.End()
				span.SetAttributes(AttrVersion.Int64(int64(r.Version)), AttrPosition.Int64(int64(r.Position)))
				if c.Op != "load" {
					span.SetAttributes(AttrEvents.Int(r.Events))
				}
				if c.Op == "update" {
					span.SetAttributes(AttrAttempts.Int(r.Attempts), AttrGaveUp.Bool(r.GaveUp))
					if r.Attempts > 1 {
						retries.Add(ctx, int64(r.Attempts-1))
					}
					if r.GaveUp {
						giveUps.Add(ctx, 1)
					}
				}
				if r.Err != nil {
					fail(span, r.Err)
				}
			}
		},
	}
}
