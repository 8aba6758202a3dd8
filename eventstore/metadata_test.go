package eventstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
)

// A middleware sets the request's correlation ID once; every append made
// with the context then carries it (the store merges it into each event).
func ExampleWithCorrelationID() {
	ctx := eventstore.WithCorrelationID(context.Background(), "req-42")
	ctx = eventstore.WithMetadata(ctx, map[string]string{"user": "alice"})
	events := eventstore.MergeMetadata([]eventstore.Event{
		{Type: "order.placed"},
		{Type: "order.paid", Metadata: map[string]string{"user": "bob"}}, // an event's own keys win
	}, eventstore.MetadataFrom(ctx))
	for _, e := range events {
		fmt.Println(e.Type, e.Metadata[eventstore.CorrelationIDKey], e.Metadata["user"])
	}
	// Output:
	// order.placed req-42 alice
	// order.paid req-42 bob
}

func TestWithMetadataNests(t *testing.T) {
	ctx := context.Background()
	if eventstore.MetadataFrom(ctx) != nil || eventstore.WithMetadata(ctx, nil) != ctx {
		t.Fatal("a bare context has metadata, or an empty WithMetadata made a new context")
	}
	outer := eventstore.WithMetadata(ctx, map[string]string{"a": "1", "b": "1"})
	inner := eventstore.WithCausationID(eventstore.WithMetadata(outer, map[string]string{"b": "2"}), "c")
	want := map[string]string{"a": "1", "b": "2", eventstore.CausationIDKey: "c"}
	if diff := cmp.Diff(want, eventstore.MetadataFrom(inner)); diff != "" {
		t.Errorf("inner (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"a": "1", "b": "1"}, eventstore.MetadataFrom(outer)); diff != "" {
		t.Errorf("outer changed (-want +got):\n%s", diff)
	}
	in := []eventstore.Event{{Type: "t"}}
	if out := eventstore.MergeMetadata(in, nil); &out[0] != &in[0] {
		t.Error("MergeMetadata without metadata copied the events")
	}

	// CausedBy: an event without a correlation ID starts a chain.
	c := eventstore.CausedBy(ctx, eventstore.Recorded{Event: eventstore.Event{ID: "e1"}, StreamID: "s", Version: 3})
	if diff := cmp.Diff(map[string]string{eventstore.CorrelationIDKey: "e1", eventstore.CausationIDKey: "e1"}, eventstore.MetadataFrom(c)); diff != "" {
		t.Errorf("CausedBy (-want +got):\n%s", diff)
	}
	c = eventstore.CausedBy(ctx, eventstore.Recorded{StreamID: "s", Version: 3, Event: eventstore.Event{Metadata: map[string]string{eventstore.CorrelationIDKey: "r"}}})
	if diff := cmp.Diff(map[string]string{eventstore.CorrelationIDKey: "r", eventstore.CausationIDKey: "s@3"}, eventstore.MetadataFrom(c)); diff != "" {
		t.Errorf("CausedBy without an event ID (-want +got):\n%s", diff)
	}
}
