package validate_test

import (
	"fmt"
	"testing"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/validate"
)

// BenchmarkValidateAppend times the check every Append runs before it
// writes, on a batch of 1,000 events with IDs and metadata (the shape of
// cmd/esbench's append_batch).
func BenchmarkValidateAppend(b *testing.B) {
	events := make([]eventstore.Event, 1000)
	for i := range events {
		events[i] = eventstore.Event{
			ID:       fmt.Sprintf("evt-%d", i),
			Type:     "counter.added",
			Data:     make([]byte, 64),
			Metadata: map[string]string{"correlation": "c-1"},
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := validate.Append("counter-1", eventstore.Any, events, 0); err != nil {
			b.Fatal(err)
		}
	}
}
