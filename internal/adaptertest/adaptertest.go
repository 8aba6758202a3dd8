// Package adaptertest is test scaffolding the in-repo adapters share
// beyond the conformance suite (internal/testsuite): the bodies of the
// benchmarks both run, so that their numbers measure the same work, and
// the check of the part of error translation every driver shares. What a
// store must do belongs in the suite; this package holds what tests of an
// adapter's own code need twice.
package adaptertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// Events returns n copies of e, each with its own copy of e.Data (the
// Metadata map is shared: stores only read it).
func Events(n int, e eventstore.Event) []eventstore.Event {
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = e
		evs[i].Data = bytes.Clone(e.Data)
	}
	return evs
}

// BenchAppendOne appends ev to stream "s" of the empty store s, one event
// per call, each expecting the version the last one made.
func BenchAppendOne(b *testing.B, s eventstore.Store, ev eventstore.Event) {
	b.Helper()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Append(b.Context(), "s", eventstore.Exact(uint64(i)), ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchAppendBatch appends evs to stream "s" in each call and reports
// events/s.
func BenchAppendBatch(b *testing.B, s eventstore.Store, evs []eventstore.Event) {
	b.Helper()
	for b.Loop() {
		if _, err := s.Append(b.Context(), "s", eventstore.Any, evs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}

// BenchRead appends evs to stream "s" of the empty store s, then reads
// stream ("s" or eventstore.AllStreams) whole in each iteration, checking
// that every event came, and reports events/s.
func BenchRead(b *testing.B, s eventstore.Store, stream string, evs []eventstore.Event) {
	b.Helper()
	if _, err := s.Append(b.Context(), "s", eventstore.NoStream, evs...); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		n := 0
		for _, err := range s.Read(b.Context(), stream, eventstore.ReadOptions{}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != len(evs) {
			b.Fatalf("read %d events", n)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}

// StoreErrors returns one error of each kind driver.Translated accepts,
// the context errors aside: errors a store already answers with, which a
// driver's error translation passes on as they are.
func StoreErrors() []error {
	return []error{
		&eventstore.ConflictError{StreamID: "x", Expected: eventstore.Exact(3), Actual: 7},
		&eventstore.IdempotencyError{EventID: "e-1", StreamID: "x", StoredIn: "y"},
		&eventstore.ValidationError{Field: "event type", Index: 2, Reason: "empty"},
		fmt.Errorf("append: %w", eventstore.ErrClosed),
		eventstore.ErrNotFound,
		fmt.Errorf("append: %w", eventstore.ErrUnknownOutcome),
	}
}

// CheckTranslation checks what every driver's error translation shares:
// nil stays nil, each of [StoreErrors] comes back unchanged (not wrapped
// again, which would change its message), and a context error, wrapped
// or not, comes back satisfying errors.Is with it.
func CheckTranslation(t *testing.T, translate func(error) error) {
	t.Helper()
	if got := translate(nil); got != nil {
		t.Errorf("translate(nil) = %v, want nil", got)
	}
	for _, err := range StoreErrors() {
		if got := translate(err); got != err { //nolint:errorlint // identity: the error must come back as it was, not wrapped
			t.Errorf("translate(%v) = %v, want it unchanged", err, got)
		}
	}
	for _, err := range []error{context.Canceled, fmt.Errorf("query: %w", context.Canceled), context.DeadlineExceeded} {
		if got := translate(err); !errors.Is(got, err) {
			t.Errorf("translate(%v) = %v, want errors.Is %v", err, got, err)
		}
	}
}

// Omitted returns events as a read with omit returns them from a store
// that leaves the omitted fields zero (eventstore.ReadOptions.Omit).
func Omitted(events []eventstore.Recorded, omit eventstore.Fields) []eventstore.Recorded {
	out := make([]eventstore.Recorded, len(events))
	for i, r := range events {
		if omit&eventstore.FieldID != 0 {
			r.ID = ""
		}
		if omit&eventstore.FieldMetadata != 0 {
			r.Metadata = nil
		}
		if omit&eventstore.FieldTime != 0 {
			r.Time = time.Time{}
		}
		out[i] = r
	}
	return out
}
