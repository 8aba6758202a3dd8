package esotel

import (
	"context"
	"errors"
	"iter"
	"reflect"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/esv2/esv2/eventstore"
)

// Store is an eventstore.Store that traces and measures the one it wraps;
// make one with [WrapStore]. It is safe for concurrent use.
type Store struct {
	inner  eventstore.Store
	cfg    config
	tracer trace.Tracer
	attrs  []attribute.KeyValue // the adapter

	appendDuration metric.Float64Histogram
	appended       metric.Int64Counter
	conflicts      metric.Int64Counter
	watchLag       metric.Float64Histogram
	// Measurement options made once: an append records with one of them
	// and allocates none (the wrapper costs little with no SDK installed).
	adapterSet metric.MeasurementOption
	outcomeSet map[string]metric.MeasurementOption
}

var _ eventstore.Store = (*Store)(nil)

// WrapStore returns s traced and measured: see the package documentation
// for its spans and metrics. Appends through it carry their trace context
// in each event's metadata. Give the wrapped store to aggregate
// repositories; subscriptions need the adapter's own store (for its
// subscription tables) and take [SubscriptionHooks] instead.
func WrapStore(s eventstore.Store, opts ...Option) *Store {
	cfg := newConfig(opts)
	if cfg.adapter == "" {
		cfg.adapter = adapterName(s)
	}
	m := cfg.meter()
	w := &Store{
		inner:  s,
		cfg:    cfg,
		tracer: cfg.tracer(),
		attrs:  []attribute.KeyValue{AttrAdapter.String(cfg.adapter)},
	}
	var nm noop.Meter
	hist, err := m.Float64Histogram("esv2.append.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of event store appends."))
	w.appendDuration = must[metric.Float64Histogram](hist, err, noopHist(nm))
	c, err := m.Int64Counter("esv2.events.appended", metric.WithUnit("{event}"),
		metric.WithDescription("Events newly stored by appends."))
	w.appended = must[metric.Int64Counter](c, err, noopCounter(nm))
	c, err = m.Int64Counter("esv2.append.conflicts", metric.WithUnit("{append}"),
		metric.WithDescription("Appends refused for an expected version that did not match."))
	w.conflicts = must[metric.Int64Counter](c, err, noopCounter(nm))
	hist, err = m.Float64Histogram("esv2.watch.lag", metric.WithUnit("s"),
		metric.WithDescription("Time from an event's time to its delivery by a watch."))
	w.watchLag = must[metric.Float64Histogram](hist, err, noopHist(nm))
	w.adapterSet = metric.WithAttributeSet(attribute.NewSet(w.attrs...))
	w.outcomeSet = map[string]metric.MeasurementOption{}
	for _, o := range []string{"ok", "conflict", "error"} {
		w.outcomeSet[o] = metric.WithAttributeSet(attribute.NewSet(append([]attribute.KeyValue{AttrOutcome.String(o)}, w.attrs...)...))
	}
	return w
}

func noopHist(m metric.Meter) metric.Float64Histogram {
	h, _ := m.Float64Histogram("noop")
	return h
}

func noopCounter(m metric.Meter) metric.Int64Counter {
	c, _ := m.Int64Counter("noop")
	return c
}

// adapterName is the package name of s's type: "sqlite", "postgres".
func adapterName(s eventstore.Store) string {
	t := reflect.TypeOf(s)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.PkgPath() == "" {
		return "unknown"
	}
	p := t.PkgPath()
	return p[strings.LastIndexByte(p, '/')+1:]
}

// Unwrap returns the wrapped store.
func (s *Store) Unwrap() eventstore.Store { return s.inner }

// start starts a span; its attributes are set only when it records, so
// that with no SDK installed a call allocates next to nothing for them.
func (s *Store) start(ctx context.Context, name string, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx, span := s.tracer.Start(ctx, name, trace.WithSpanKind(kind))
	if span.IsRecording() {
		span.SetAttributes(attrs...)
		span.SetAttributes(s.attrs...)
	}
	return ctx, span
}

// Append appends through the wrapped store in an "esv2.append" span, and
// stores the span's trace context in each event's metadata.
func (s *Store) Append(ctx context.Context, streamID string, expected eventstore.ExpectedVersion, events ...eventstore.Event) (eventstore.AppendResult, error) {
	if ctx == nil {
		return s.inner.Append(ctx, streamID, expected, events...)
	}
	ctx, span := s.tracer.Start(ctx, "esv2.append", trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	recording := span.IsRecording()
	if recording {
		size := 0
		for i := range events {
			size += eventstore.EventSize(events[i])
		}
		span.SetAttributes(AttrStream.String(streamID), AttrExpectedVersion.String(expected.String()),
			AttrEvents.Int(len(events)), AttrBytes.Int(size))
		span.SetAttributes(s.attrs...)
	}
	if sc := span.SpanContext(); sc.IsValid() {
		ctx = eventstore.WithMetadata(ctx, s.traceMetadata(ctx))
	}
	began := time.Now()
	res, err := s.inner.Append(ctx, streamID, expected, events...)
	took := time.Since(began).Seconds()
	outcome := "ok"
	var conflict *eventstore.ConflictError
	switch {
	case err == nil:
		if recording {
			span.SetAttributes(AttrVersion.Int64(int64(res.Version)), AttrPosition.Int64(int64(res.Position)),
				AttrAppended.Int(res.Appended), AttrDuplicates.Int(len(res.Duplicates)), AttrConflict.Bool(false))
		}
		if res.Appended > 0 {
			s.appended.Add(ctx, int64(res.Appended), s.adapterSet)
		}
	case errors.As(err, &conflict):
		outcome = "conflict"
		span.SetAttributes(AttrConflict.Bool(true), AttrVersion.Int64(int64(conflict.Actual)))
		s.conflicts.Add(ctx, 1, s.adapterSet)
		fail(span, err)
	default:
		outcome = "error"
		fail(span, err)
	}
	s.appendDuration.Record(ctx, took, s.outcomeSet[outcome])
	return res, err
}

// traceMetadata returns the trace context of ctx's span as event metadata.
func (s *Store) traceMetadata(ctx context.Context) map[string]string {
	carrier := propagation.MapCarrier{}
	s.cfg.propagator.Inject(ctx, carrier)
	md := make(map[string]string, 2)
	for k, v := range carrier {
		md[metadataKey(k)] = v
	}
	return md
}

// metadataKey maps a propagator's header to the metadata key it is kept
// under: the W3C ones to the documented keys, any other to "esv2.trace."
// and its name.
func metadataKey(header string) string {
	switch header {
	case "traceparent":
		return eventstore.TraceParentKey
	case "tracestate":
		return eventstore.TraceStateKey
	}
	return "esv2.trace." + header
}

// Read reads through the wrapped store in an "esv2.read" span that lasts
// as long as the iteration.
func (s *Store) Read(ctx context.Context, streamID string, opts eventstore.ReadOptions) iter.Seq2[eventstore.Recorded, error] {
	if ctx == nil {
		return s.inner.Read(ctx, streamID, opts)
	}
	// Called now, not when the iteration begins: the store checks its
	// arguments and context when called (see eventstore.Store).
	seq := s.inner.Read(ctx, streamID, opts)
	return func(yield func(eventstore.Recorded, error) bool) {
		_, span := s.start(ctx, "esv2.read", trace.SpanKindClient, AttrStream.String(streamID))
		defer span.End()
		n, size := 0, 0
		defer func() { span.SetAttributes(AttrEvents.Int(n), AttrBytes.Int(size)) }()
		for e, err := range seq {
			if err != nil {
				fail(span, err)
			} else {
				n++
				size += eventstore.EventSize(e.Event)
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

// Watch watches through the wrapped store in an "esv2.watch" span that
// lasts as long as the watch, and records each event's lag.
func (s *Store) Watch(ctx context.Context, streamID string, opts eventstore.WatchOptions) iter.Seq2[eventstore.Recorded, error] {
	if ctx == nil {
		return s.inner.Watch(ctx, streamID, opts)
	}
	seq := s.inner.Watch(ctx, streamID, opts) // now: see Read
	return func(yield func(eventstore.Recorded, error) bool) {
		ctx, span := s.start(ctx, "esv2.watch", trace.SpanKindConsumer, AttrStream.String(streamID))
		defer span.End()
		n := 0
		defer func() { span.SetAttributes(AttrEvents.Int(n)) }()
		lagAttrs := s.adapterSet
		for e, err := range seq {
			if err != nil {
				fail(span, err)
			} else {
				n++
				if !e.Time.IsZero() {
					s.watchLag.Record(ctx, max(time.Since(e.Time).Seconds(), 0), lagAttrs)
				}
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

// Info describes a stream, in an "esv2.info" span.
func (s *Store) Info(ctx context.Context, streamID string) (eventstore.StreamInfo, error) {
	if ctx == nil {
		return s.inner.Info(ctx, streamID)
	}
	ctx, span := s.start(ctx, "esv2.info", trace.SpanKindClient, AttrStream.String(streamID))
	defer span.End()
	info, err := s.inner.Info(ctx, streamID)
	if err != nil {
		fail(span, err)
	} else {
		span.SetAttributes(AttrVersion.Int64(int64(info.Version)), AttrPosition.Int64(int64(info.Position)))
	}
	return info, err
}

// SaveSnapshot saves a snapshot, in an "esv2.snapshot.save" span.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if ctx == nil {
		return s.inner.SaveSnapshot(ctx, snap)
	}
	ctx, span := s.start(ctx, "esv2.snapshot.save", trace.SpanKindClient, AttrStream.String(snap.StreamID),
		AttrSnapshot.String(snap.Name), AttrVersion.Int64(int64(snap.Version)), AttrBytes.Int(len(snap.Data)))
	defer span.End()
	err := s.inner.SaveSnapshot(ctx, snap)
	if err != nil {
		fail(span, err)
	}
	return err
}

// LoadSnapshot loads a snapshot, in an "esv2.snapshot.load" span; a
// snapshot not found is not an error of the span (esv2.found is false).
func (s *Store) LoadSnapshot(ctx context.Context, streamID, name string) (eventstore.Snapshot, error) {
	if ctx == nil {
		return s.inner.LoadSnapshot(ctx, streamID, name)
	}
	ctx, span := s.start(ctx, "esv2.snapshot.load", trace.SpanKindClient, AttrStream.String(streamID), AttrSnapshot.String(name))
	defer span.End()
	snap, err := s.inner.LoadSnapshot(ctx, streamID, name)
	switch {
	case err == nil:
		span.SetAttributes(AttrFound.Bool(true), AttrVersion.Int64(int64(snap.Version)), AttrBytes.Int(len(snap.Data)))
	case errors.Is(err, eventstore.ErrNotFound):
		span.SetAttributes(AttrFound.Bool(false))
	default:
		fail(span, err)
	}
	return snap, err
}

// FindEvent looks an event up by ID, in an "esv2.find_event" span; an ID
// not found is not an error of the span (esv2.found is false).
func (s *Store) FindEvent(ctx context.Context, eventID string) (eventstore.Recorded, error) {
	if ctx == nil {
		return s.inner.FindEvent(ctx, eventID)
	}
	ctx, span := s.start(ctx, "esv2.find_event", trace.SpanKindClient)
	defer span.End()
	e, err := s.inner.FindEvent(ctx, eventID)
	switch {
	case err == nil:
		span.SetAttributes(AttrFound.Bool(true), AttrStream.String(e.StreamID), AttrPosition.Int64(int64(e.Position)))
	case errors.Is(err, eventstore.ErrNotFound):
		span.SetAttributes(AttrFound.Bool(false))
	default:
		fail(span, err)
	}
	return e, err
}

// Close closes the wrapped store.
func (s *Store) Close() error { return s.inner.Close() }
