package eventstore

import (
	"context"
	"errors"
	"fmt"
)

// Lifecycle is an optional ability of a store, found by type assertion:
// removing events and snapshots. Both of esv2's adapters have it (through
// the front, package eventstore/driver, over a driver that can delete); a
// store without it is asked through the [Stream] handle's methods, which
// then answer errors.ErrUnsupported.
//
// # The rules
//
// Deletion and truncation remove rows physically, in one transaction, and
// never give a version or a global position out again: a deleted stream
// keeps a tombstone with its last version, and positions are allocated
// above every position ever handed out (the newest events deleted
// included). What the database's files still hold after the transaction
// (free pages, the write-ahead log) is gone only after the housekeeping
// that concepts.md ("Deletion, truncation and erasure") describes.
//
//   - DeleteStream removes a stream's events and snapshots and leaves a
//     tombstone. Appending to a deleted stream is refused, for good, with
//     a *StreamDeletedError (ErrStreamDeleted), whatever the expected
//     version, an empty batch and a batch of the deleted events' own IDs
//     (a retry of a command whose stream is gone) included: nothing is
//     written. A snapshot of a deleted stream is refused the same way
//     (SaveSnapshot answers a *StreamDeletedError and stores nothing),
//     also one saved while the deletion commits: a deleted stream keeps
//     no snapshot. The IDs of the deleted events are deleted with them: an
//     event with one of those IDs appended to another stream is a new
//     event there. Reading a deleted stream yields nothing; Info reports
//     Deleted, the last Version and a Count of 0; watchers of it wait for
//     nothing more (a watch follows the surviving log, never a deleted
//     position). Deleting a deleted stream again succeeds and does nothing
//     when the expectation matches its last version (or is Any).
//   - TruncateStream(before) removes the events with versions below
//     before and keeps the rest (KurrentDB's $tb), the last event always:
//     before may be at most the stream's version. Versions continue from
//     the last one; reads and watches from the start, or from a removed
//     version, begin at the first event kept; Info's Count is the number
//     of events kept. Snapshots are kept: a load from a snapshot at or
//     after before - 1 still works, and one that needs removed events
//     fails with ErrTruncated (package aggregate checks it, at no cost:
//     the first event it reads does not follow the state's version). To
//     remove every event, delete the stream.
//   - DeleteSnapshots removes the snapshots of a stream under one name, or
//     all of them.
//
// Watchers and subscriptions see every surviving event once, in order:
// positions of deleted events are skipped, never waited for, and a
// subscription's checkpoint (a position) is never moved by a deletion.
//
// A deletion or truncation whose connection was lost while it committed
// answers an error wrapping ErrConnectionLost of package
// eventstore/driver (or the context's error):
// it may or may not have happened. Running it again is safe: deleting a
// deleted stream with Any (or its last version) succeeds and does
// nothing, and a truncation at a bound already applied does nothing.
//
// Appends are not undone by a removal: an idempotent retry of an append
// whose events were truncated or deleted (its IDs left with them) is a
// new append and stores them again, after the events kept (with Any) —
// a retry with the append's original expectation meets a conflict
// instead. Retry appends with their original expectation, not Any, where
// data removed on purpose must stay removed.
type Lifecycle interface {
	// DeleteStream deletes a stream if its version matches expected:
	// its events and snapshots are removed and a tombstone keeps its last
	// version. Errors: *ConflictError (ErrConcurrency) when expected does
	// not match (nothing is removed); ErrNotFound for a stream that never
	// had an event; *ValidationError for AllStreams or an invalid ID or
	// expectation; ErrClosed.
	DeleteStream(ctx context.Context, streamID string, expected ExpectedVersion) error

	// TruncateStream removes the events of a stream whose versions are
	// below before, keeping the others. before may be at most the
	// stream's version: the last event is always kept (DeleteStream
	// removes them all); a before at or below the first kept version does
	// nothing. Errors: *ValidationError for AllStreams, before above the
	// version or a before of 0; *StreamDeletedError for a deleted stream;
	// ErrNotFound for a stream that never had an event; ErrClosed.
	TruncateStream(ctx context.Context, streamID string, before uint64) error

	// DeleteSnapshots removes the snapshot of (streamID, name), or every
	// snapshot of streamID when name is empty (AllStreams' too). Removing
	// what does not exist is not an error.
	DeleteSnapshots(ctx context.Context, streamID, name string) error
}

// ErrStreamDeleted reports an append to (or a truncation of) a deleted
// stream. The error is a *StreamDeletedError.
var ErrStreamDeleted = errors.New("eventstore: stream deleted")

// ErrTruncated reports that events a caller needs were removed by a
// truncation ([Lifecycle.TruncateStream]): an aggregate whose latest
// snapshot is older than the stream's first kept event cannot be loaded.
// The error is a *TruncatedError.
var ErrTruncated = errors.New("eventstore: events removed by truncation")

// StreamDeletedError is returned by an append to a deleted stream. Nothing
// was written. It unwraps to ErrStreamDeleted.
type StreamDeletedError struct {
	StreamID string
	// Version is the last version the stream had, kept by its tombstone.
	Version uint64
}

func (e *StreamDeletedError) Error() string {
	return fmt.Sprintf("eventstore: stream %q was deleted at version %d", e.StreamID, e.Version)
}

// Unwrap returns ErrStreamDeleted.
func (e *StreamDeletedError) Unwrap() error { return ErrStreamDeleted }

// TruncatedError says which events were needed and are gone. It unwraps
// to ErrTruncated.
type TruncatedError struct {
	StreamID string
	// Need is the first version the reader needed.
	Need uint64
	// First is the first version still stored (0 when none is).
	First uint64
}

func (e *TruncatedError) Error() string {
	if e.First == 0 {
		return fmt.Sprintf("eventstore: stream %q: version %d was removed by truncation, and no later event is stored", e.StreamID, e.Need)
	}
	return fmt.Sprintf("eventstore: stream %q: version %d was removed by truncation (the first event kept is version %d)", e.StreamID, e.Need, e.First)
}

// Unwrap returns ErrTruncated.
func (e *TruncatedError) Unwrap() error { return ErrTruncated }

// lifecycle returns s's Lifecycle, or an error saying it has none.
func lifecycle(s Store) (Lifecycle, error) {
	l, ok := s.(Lifecycle)
	if !ok {
		return nil, fmt.Errorf("eventstore: %T cannot delete: %w", s, errors.ErrUnsupported)
	}
	return l, nil
}

// Delete deletes the stream if its version matches expected; see
// [Lifecycle.DeleteStream]. A store without the Lifecycle ability answers
// errors.ErrUnsupported.
func (s *Stream) Delete(ctx context.Context, expected ExpectedVersion) error {
	l, err := lifecycle(s.store)
	if err != nil {
		return err
	}
	return l.DeleteStream(ctx, s.id, expected)
}

// Truncate removes the stream's events with versions below before; see
// [Lifecycle.TruncateStream]. A store without the Lifecycle ability
// answers errors.ErrUnsupported.
func (s *Stream) Truncate(ctx context.Context, before uint64) error {
	l, err := lifecycle(s.store)
	if err != nil {
		return err
	}
	return l.TruncateStream(ctx, s.id, before)
}

// DeleteSnapshots removes the stream's snapshot under name, or all of them
// when name is empty; see [Lifecycle.DeleteSnapshots]. A store without the
// Lifecycle ability answers errors.ErrUnsupported.
func (s *Stream) DeleteSnapshots(ctx context.Context, name string) error {
	l, err := lifecycle(s.store)
	if err != nil {
		return err
	}
	return l.DeleteSnapshots(ctx, s.id, name)
}
