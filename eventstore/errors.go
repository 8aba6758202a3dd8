package eventstore

import (
	"errors"
	"fmt"
)

// Sentinel errors. Test for them with errors.Is; the richer types below
// unwrap to them.
var (
	// ErrConcurrency reports that an append's expected version did not
	// match the stream. The error is a *ConflictError.
	ErrConcurrency = errors.New("eventstore: concurrency conflict")
	// ErrIdempotency reports that an event ID is already stored in another
	// stream. The error is an *IdempotencyError.
	ErrIdempotency = errors.New("eventstore: event ID already stored in another stream")
	// ErrInvalidInput reports input refused before anything was written.
	// The error is a *ValidationError.
	ErrInvalidInput = errors.New("eventstore: invalid input")
	// ErrClosed reports use of a closed store, or a watch ended by Close.
	ErrClosed = errors.New("eventstore: store closed")
	// ErrNotFound reports that what was asked for does not exist: a
	// snapshot (LoadSnapshot), an event ID (FindEvent).
	ErrNotFound = errors.New("eventstore: not found")
	// ErrUnknownOutcome reports an append whose outcome the store could
	// not learn: the connection to the database was lost after the append
	// was sent, and the store could not find out afterwards (within its
	// bound) whether it committed. The events may or may not be stored,
	// and were never stored twice. It is never a conflict: read the
	// stream, or retry with the same event IDs, which is safe (a retry of
	// stored IDs succeeds without storing them again). Retrying an append
	// of events without IDs after this error may store them twice.
	ErrUnknownOutcome = errors.New("eventstore: outcome unknown: the append may or may not have been stored")
)

// ConflictError is returned when an append's expected version does not match
// the stream's actual version. It unwraps to ErrConcurrency.
type ConflictError struct {
	StreamID string
	Expected ExpectedVersion
	Actual   uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("eventstore: concurrency conflict on stream %q: expected version %s, actual %d",
		e.StreamID, e.Expected, e.Actual)
}

// Unwrap returns ErrConcurrency.
func (e *ConflictError) Unwrap() error { return ErrConcurrency }

// IdempotencyError is returned when an event ID of a batch is already stored
// in another stream. Nothing of the batch was written. It unwraps to
// ErrIdempotency.
type IdempotencyError struct {
	// EventID is the offending ID.
	EventID string
	// StreamID is the stream the batch was appended to.
	StreamID string
	// StoredIn is the stream that already holds the ID (empty if the
	// adapter could not tell, e.g. when a racing writer stored it).
	StoredIn string
}

func (e *IdempotencyError) Error() string {
	if e.StoredIn == "" {
		return fmt.Sprintf("eventstore: event ID %q appended to stream %q is already stored in another stream", e.EventID, e.StreamID)
	}
	return fmt.Sprintf("eventstore: event ID %q appended to stream %q is already stored in stream %q", e.EventID, e.StreamID, e.StoredIn)
}

// Unwrap returns ErrIdempotency.
func (e *IdempotencyError) Unwrap() error { return ErrIdempotency }

// ValidationError describes input refused before anything was written. It
// unwraps to ErrInvalidInput.
type ValidationError struct {
	// Field names what was wrong, e.g. "stream ID", "event type",
	// "expected version".
	Field string
	// Index is the index of the offending event in the batch, or -1.
	Index int
	// Reason says what is wrong with it.
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("eventstore: invalid input: event %d: %s: %s", e.Index, e.Field, e.Reason)
	}
	return fmt.Sprintf("eventstore: invalid input: %s: %s", e.Field, e.Reason)
}

// Unwrap returns ErrInvalidInput.
func (e *ValidationError) Unwrap() error { return ErrInvalidInput }
