package eventstore_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/esv2/esv2/eventstore"
)

func TestErrorMessages(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{
			&eventstore.ConflictError{StreamID: "acc-1", Expected: eventstore.Exact(3), Actual: 5},
			`eventstore: concurrency conflict on stream "acc-1": expected version 3, actual 5`,
		},
		{
			&eventstore.ConflictError{StreamID: "acc-1", Expected: eventstore.NoStream, Actual: 1},
			`eventstore: concurrency conflict on stream "acc-1": expected version no stream, actual 1`,
		},
		{
			&eventstore.IdempotencyError{EventID: "e1", StreamID: "b", StoredIn: "a"},
			`eventstore: event ID "e1" appended to stream "b" is already stored in stream "a"`,
		},
		{
			&eventstore.IdempotencyError{EventID: "e1", StreamID: "b"},
			`eventstore: event ID "e1" appended to stream "b" is already stored in another stream`,
		},
		{
			&eventstore.ValidationError{Field: "event type", Index: 2, Reason: "empty"},
			`eventstore: invalid input: event 2: event type: empty`,
		},
		{
			&eventstore.ValidationError{Field: "stream ID", Index: -1, Reason: "empty"},
			`eventstore: invalid input: stream ID: empty`,
		},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("%T.Error()\n got %s\nwant %s", c.err, got, c.want)
		}
	}
}

func TestErrorsUnwrapToTheirSentinel(t *testing.T) {
	sentinels := []error{
		eventstore.ErrConcurrency, eventstore.ErrIdempotency, eventstore.ErrInvalidInput,
		eventstore.ErrClosed, eventstore.ErrNotFound,
	}
	for _, c := range []struct {
		err  error
		want error
	}{
		{&eventstore.ConflictError{StreamID: "s", Expected: eventstore.Any}, eventstore.ErrConcurrency},
		{&eventstore.IdempotencyError{EventID: "e", StreamID: "s"}, eventstore.ErrIdempotency},
		{&eventstore.ValidationError{Field: "f", Index: -1, Reason: "r"}, eventstore.ErrInvalidInput},
	} {
		// Also through a wrapping adapter error.
		for _, err := range []error{c.err, fmt.Errorf("sqlite: append: %w", c.err)} {
			for _, s := range sentinels {
				if got, want := errors.Is(err, s), s == c.want; got != want { //nolint:errorlint // which table entry the case names (identity), not an error check
					t.Errorf("errors.Is(%v, %v) = %v, want %v", err, s, got, want)
				}
			}
		}
	}
}

func TestErrorsAs(t *testing.T) {
	wrapped := fmt.Errorf("append: %w", &eventstore.ConflictError{StreamID: "s", Expected: eventstore.Exact(1), Actual: 2})
	var ce *eventstore.ConflictError
	if !errors.As(wrapped, &ce) {
		t.Fatalf("errors.As(%v, *ConflictError) = false", wrapped)
	}
	if ce.StreamID != "s" || ce.Expected != eventstore.Exact(1) || ce.Actual != 2 {
		t.Errorf("ConflictError = %+v, want stream s, expected 1, actual 2", *ce)
	}
	var ie *eventstore.IdempotencyError
	if errors.As(wrapped, &ie) {
		t.Errorf("errors.As(%v, *IdempotencyError) = true", wrapped)
	}

	wrapped = fmt.Errorf("append: %w", &eventstore.IdempotencyError{EventID: "e", StreamID: "b", StoredIn: "a"})
	if !errors.As(wrapped, &ie) || ie.StoredIn != "a" {
		t.Errorf("errors.As(%v, *IdempotencyError): %+v", wrapped, ie)
	}
	var ve *eventstore.ValidationError
	err := fmt.Errorf("append: %w", &eventstore.ValidationError{Field: "stream ID", Index: -1, Reason: "empty"})
	if !errors.As(err, &ve) || ve.Field != "stream ID" || ve.Index != -1 {
		t.Errorf("errors.As(%v, *ValidationError): %+v", err, ve)
	}
}
