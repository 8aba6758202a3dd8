package esotel_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/esotel"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/pgtest"
	"github.com/esv2/esv2/subscription"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type Counter struct{ N int64 }

type CounterEvent interface{ isCounterEvent() }

type Added struct{ By int64 }

func (Added) isCounterEvent() {}

func evolve(c Counter, e CounterEvent) Counter {
	if a, ok := e.(Added); ok {
		c.N += a.By
	}
	return c
}

func counterCodec(t *testing.T) *codec.Registry[CounterEvent] {
	t.Helper()
	reg := codec.New[CounterEvent]()
	if err := codec.Register[Added](reg, "counter.added"); err != nil {
		t.Fatal(err)
	}
	return reg
}

// telemetry is an SDK that keeps what it gets.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		_ = tel.tp.Shutdown(ctx)
		_ = tel.mp.Shutdown(ctx)
	})
	return tel
}

func (tel *telemetry) opts() []esotel.Option {
	return []esotel.Option{esotel.WithTracerProvider(tel.tp), esotel.WithMeterProvider(tel.mp)}
}

// named returns the ended spans called name.
func (tel *telemetry) named(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// childrenOf returns the ended spans called name whose parent is parent.
func (tel *telemetry) childrenOf(parent trace.SpanContext, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.named(name) {
		if s.Parent().SpanID() == parent.SpanID() && s.Parent().TraceID() == parent.TraceID() {
			out = append(out, s)
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// metrics collects the metrics and returns, by name, the sum of an int64
// counter, the last value of an int64 gauge, or a histogram's count.
func (tel *telemetry) metrics(t *testing.T) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] += p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[m.Name] += int64(p.Count)
				}
			}
		}
	}
	return out
}

// TestTracesAndMetrics runs a known workload through a wrapped store, a
// hooked repository and a hooked subscription on a SECOND store opened on
// the same SQLite file, and checks the spans, their parents, the links
// from the subscription's batches to the appending spans (through the
// trace context stored in event metadata), and the metric values.
func TestTracesAndMetrics(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "events.db")
		writer, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer writer.Close()
		reader, err := sqlite.Open(t.Context(), path) // another store on the database, as another process would have
		if err != nil {
			t.Fatal(err)
		}
		defer reader.Close()
		testTracesAndMetrics(t, "sqlite", writer, func(h subscription.Handler, opts ...subscription.Option) (*subscription.Subscription, error) {
			return subscription.New(reader, "projection", h, opts...)
		})
	})
	t.Run("postgres", func(t *testing.T) {
		schema := pgtest.FreshSchema(t, "esv2_esotel_test_")
		dsn := pgtest.DSN(t)
		writer, err := postgres.Open(t.Context(), dsn, postgres.WithSchema(schema), postgres.WithMigrate())
		if err != nil {
			t.Fatal(err)
		}
		defer writer.Close()
		reader, err := postgres.Open(t.Context(), dsn, postgres.WithSchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		defer reader.Close()
		testTracesAndMetrics(t, "postgres", writer, func(h subscription.Handler, opts ...subscription.Option) (*subscription.Subscription, error) {
			return subscription.New(reader, "projection", h, opts...)
		})
	})
}

// testTracesAndMetrics runs the workload through writer, and the
// subscription that newSub makes on a second store of the same database.
func testTracesAndMetrics(t *testing.T, adapter string, writer eventstore.Store,
	newSub func(subscription.Handler, ...subscription.Option) (*subscription.Subscription, error)) {
	tel := newTelemetry(t)
	ctx := t.Context()
	traced := esotel.WrapStore(writer, tel.opts()...)
	repo, err := aggregate.NewRepository(traced, aggregate.Config[Counter, CounterEvent]{
		Evolve: evolve, Codec: counterCodec(t), Hooks: esotel.RepositoryHooks(tel.opts()...),
		RetryDelay: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	stubborn, err := aggregate.NewRepository(traced, aggregate.Config[Counter, CounterEvent]{
		Evolve: evolve, Codec: counterCodec(t), Hooks: esotel.RepositoryHooks(tel.opts()...),
		MaxAttempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	rival, err := counterCodec(t).Event(Added{By: 100})
	if err != nil {
		t.Fatal(err)
	}

	// The handler's spans are children of the batch span.
	handlerTracer := tel.tp.Tracer("handler")
	var mu sync.Mutex
	handled := map[uint64]eventstore.Recorded{}
	sub, err := newSub(func(ctx context.Context, events []eventstore.Recorded) error {
		_, span := handlerTracer.Start(ctx, "project")
		defer span.End()
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			handled[e.Position] = e
		}
		return nil
	}, subscription.WithHooks(esotel.SubscriptionHooks(tel.opts()...)))
	if err != nil {
		t.Fatal(err)
	}

	// The workload.
	// 1. A request updates acc-1 with two events: 1 append, 2 events.
	reqCtx, request := tel.tp.Tracer("http").Start(ctx, "POST /accounts/acc-1")
	acc1, err := repo.Update(reqCtx, "acc-1", func(Counter) ([]CounterEvent, error) {
		return []CounterEvent{Added{By: 1}, Added{By: 2}}, nil
	}, aggregate.WithCommandID("cmd-1"))
	request.End()
	if err != nil {
		t.Fatal(err)
	}
	// 2. An append with a stale expectation: 1 append, a conflict.
	if _, err := traced.Append(ctx, "acc-1", eventstore.NoStream, rival); !errors.Is(err, eventstore.ErrConcurrency) {
		t.Fatalf("stale append: %v, want a conflict", err)
	}
	// 3. An update that meets a rival once: 2 appends, 1 conflict, 1 retry, 1 event.
	first := true
	if _, err := repo.Update(ctx, "acc-2", func(Counter) ([]CounterEvent, error) {
		if first {
			first = false
			if _, err := writer.Append(ctx, "acc-2", eventstore.Any, rival); err != nil {
				return nil, err
			}
		}
		return []CounterEvent{Added{By: 1}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	// 4. An update that gives up at its only attempt: 1 append, 1 conflict, 1 give-up.
	if _, err := stubborn.Update(ctx, "acc-3", func(Counter) ([]CounterEvent, error) {
		if _, err := writer.Append(ctx, "acc-3", eventstore.Any, rival); err != nil {
			return nil, err
		}
		return []CounterEvent{Added{By: 1}}, nil
	}); !errors.Is(err, aggregate.ErrGaveUp) {
		t.Fatalf("stubborn update: %v, want ErrGaveUp", err)
	}
	head, err := writer.Info(ctx, eventstore.AllStreams)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sub.Run(runCtx) }()
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := sub.WaitFor(waitCtx, head.Position); err != nil {
		t.Fatalf("WaitFor(%d): %v", head.Position, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	// Spans: request -> update -> load -> read, and update -> append.
	reqSC := request.SpanContext()
	updates := tel.childrenOf(reqSC, "esv2.update")
	if len(updates) != 1 {
		t.Fatalf("%d esv2.update spans under the request, want 1", len(updates))
	}
	update := updates[0]
	if v, _ := attr(update, esotel.AttrAttempts); v.AsInt64() != 1 {
		t.Errorf("update span: attempts %v, want 1", v.AsInt64())
	}
	// The command is named by its digest, as in the events' metadata: the
	// client's key itself never reaches a trace (issue 12).
	if v, _ := attr(update, esotel.AttrCommandID); v.AsString() != aggregate.CommandDigest(nil, "cmd-1") {
		t.Errorf("update span: command %q, want the digest %q", v.AsString(), aggregate.CommandDigest(nil, "cmd-1"))
	}
	if v, _ := attr(update, esotel.AttrPosition); uint64(v.AsInt64()) != acc1.Position() {
		t.Errorf("update span: position %d, want %d", v.AsInt64(), acc1.Position())
	}
	for _, s := range tel.spans.Ended() {
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.String(), "cmd-1") {
				t.Errorf("span %s: attribute %s holds the raw command ID", s.Name(), kv.Key)
			}
		}
	}
	loads := tel.childrenOf(update.SpanContext(), "esv2.load")
	if len(loads) != 1 || len(tel.childrenOf(loads[0].SpanContext(), "esv2.read")) != 1 {
		t.Errorf("update span has %d load children (want 1), each with one read", len(loads))
	}
	appends := tel.childrenOf(update.SpanContext(), "esv2.append")
	if len(appends) != 1 {
		t.Fatalf("%d esv2.append spans under the update, want 1", len(appends))
	}
	app := appends[0]
	if app.SpanKind() != trace.SpanKindProducer {
		t.Errorf("append span kind %v, want producer", app.SpanKind())
	}
	for key, want := range map[attribute.Key]string{
		esotel.AttrStream: "acc-1", esotel.AttrAdapter: adapter, esotel.AttrExpectedVersion: "no stream",
		esotel.AttrEvents: "2", esotel.AttrVersion: "2", esotel.AttrConflict: "false",
	} {
		if v, ok := attr(app, key); !ok || v.String() != want {
			t.Errorf("append span %s = %q, want %q", key, v.String(), want)
		}
	}
	if v, _ := attr(app, esotel.AttrBytes); v.AsInt64() <= 0 {
		t.Errorf("append span bytes %d, want > 0", v.AsInt64())
	}
	var conflicted int
	for _, s := range tel.named("esv2.append") {
		if v, _ := attr(s, esotel.AttrConflict); v.AsBool() {
			conflicted++
			if s.Status().Code.String() != "Error" {
				t.Errorf("conflicting append span status %v, want Error", s.Status())
			}
		}
	}
	if conflicted != 3 {
		t.Errorf("%d append spans with a conflict, want 3", conflicted)
	}

	// The trace context went into the metadata, and the batch span that
	// handled acc-1's events (in the other store) links to the append.
	mu.Lock()
	e := handled[acc1.Position()]
	mu.Unlock()
	tp := e.Metadata[eventstore.TraceParentKey]
	if !strings.Contains(tp, app.SpanContext().TraceID().String()) || !strings.Contains(tp, app.SpanContext().SpanID().String()) {
		t.Errorf("stored traceparent %q, want the append span's %v", tp, app.SpanContext())
	}
	var linked []sdktrace.ReadOnlySpan
	for _, b := range tel.named("esv2.subscription.batch") {
		for _, l := range b.Links() {
			if l.SpanContext.SpanID() == app.SpanContext().SpanID() && l.SpanContext.TraceID() == app.SpanContext().TraceID() {
				linked = append(linked, b)
			}
		}
	}
	if len(linked) != 1 {
		t.Fatalf("%d batch spans link to the append span, want 1", len(linked))
	}
	batch := linked[0]
	if batch.SpanKind() != trace.SpanKindConsumer || batch.Parent().IsValid() && batch.Parent().TraceID() == app.SpanContext().TraceID() {
		t.Errorf("batch span: kind %v, parent %v: want a consumer span of a trace of its own", batch.SpanKind(), batch.Parent())
	}
	if len(tel.childrenOf(batch.SpanContext(), "project")) != 1 {
		t.Errorf("the handler's span is not a child of its batch span")
	}

	// Metrics after the workload.
	got := tel.metrics(t)
	for name, want := range map[string]int64{
		"esv2.append.duration":     5, // appends through the wrapper: 1 + 1 + 2 + 1
		"esv2.events.appended":     3, // 2 + 1 (the rivals went around the wrapper)
		"esv2.append.conflicts":    3,
		"esv2.update.retries":      1,
		"esv2.update.give_ups":     1,
		"esv2.subscription.events": int64(head.Count),
		"esv2.subscription.lag":    0,
		"esv2.subscription.parked": 0,
	} {
		if got[name] != want {
			t.Errorf("metric %s = %d, want %d", name, got[name], want)
		}
	}
	if _, ok := got["esv2.subscription.lag"]; !ok {
		t.Error("no esv2.subscription.lag recorded")
	}
}

// TestWatchAndSnapshotSpans: a watch through the wrapper is one span for
// its whole life, with the events it yielded, and records each event's
// lag; snapshot saves and loads are spans, a missing snapshot not an error.
func TestWatchAndSnapshotSpans(t *testing.T) {
	tel := newTelemetry(t)
	s, err := sqlite.Open(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	w := esotel.WrapStore(s, tel.opts()...)
	defer w.Close()
	ctx := t.Context()
	if _, err := w.Append(ctx, "s", eventstore.NoStream, eventstore.Event{Type: "a"}, eventstore.Event{Type: "b"}, eventstore.Event{Type: "c"}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range w.Watch(ctx, "s", eventstore.WatchOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	if _, err := w.LoadSnapshot(ctx, "s", ""); err == nil {
		t.Fatal("LoadSnapshot of a missing snapshot succeeded")
	}
	if err := w.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "s", Version: 3, Schema: "v1", Data: []byte("state")}); err != nil {
		t.Fatal(err)
	}
	watches := tel.named("esv2.watch")
	if len(watches) != 1 {
		t.Fatalf("%d watch spans, want 1", len(watches))
	}
	if v, _ := attr(watches[0], esotel.AttrEvents); v.AsInt64() != 3 {
		t.Errorf("watch span: %d events, want 3", v.AsInt64())
	}
	loads := tel.named("esv2.snapshot.load")
	if len(loads) != 1 || loads[0].Status().Code.String() == "Error" {
		t.Errorf("snapshot load spans %d, want 1 without an error", len(loads))
	} else if v, _ := attr(loads[0], esotel.AttrFound); v.AsBool() {
		t.Error("snapshot load span: found is true for a missing snapshot")
	}
	saves := tel.named("esv2.snapshot.save")
	if len(saves) != 1 {
		t.Fatalf("%d snapshot save spans, want 1", len(saves))
	}
	if v, _ := attr(saves[0], esotel.AttrBytes); v.AsInt64() != 5 {
		t.Errorf("snapshot save span: %d bytes, want 5", v.AsInt64())
	}
	if got := tel.metrics(t)["esv2.watch.lag"]; got != 3 {
		t.Errorf("esv2.watch.lag recorded %d times, want 3", got)
	}
}
