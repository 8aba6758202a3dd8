package esotel_test

import (
	"context"
	"fmt"
	"log"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/esotel"
	"github.com/esv2/esv2/eventstore"
)

// Wrap the store once; appends carry their trace context in the events'
// metadata, for the subscriptions that handle them to link back.
func ExampleWrapStore() {
	ctx := context.Background()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)) // the program's SDK
	defer func() { _ = tp.Shutdown(ctx) }()

	store, err := sqlite.Open(ctx, "") // in memory
	if err != nil {
		log.Fatal(err)
	}
	traced := esotel.WrapStore(store, esotel.WithTracerProvider(tp))
	defer traced.Close()

	if _, err := traced.Append(ctx, "order-1", eventstore.NoStream, eventstore.Event{Type: "order.placed"}); err != nil {
		log.Fatal(err)
	}
	events, err := eventstore.Collect(traced.Read(ctx, "order-1", eventstore.ReadOptions{}))
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range spans.Ended() {
		fmt.Println(s.Name())
	}
	fmt.Println(events[0].Metadata[eventstore.TraceParentKey] != "")
	// Output:
	// esv2.append
	// esv2.read
	// true
}
