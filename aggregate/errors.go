package aggregate

import (
	"errors"
	"fmt"

	"github.com/esv2/esv2/eventstore"
)

// Sentinel errors. Test for them with errors.Is.
var (
	// ErrInvalidConfig reports a Config that NewRepository refuses.
	ErrInvalidConfig = errors.New("aggregate: invalid config")
	// ErrSnapshotSchema reports a stored snapshot whose schema tag is not
	// Config.SnapshotSchema. The snapshot is ignored and the state rebuilt
	// from events.
	ErrSnapshotSchema = errors.New("aggregate: snapshot schema mismatch")
	// ErrSnapshotAhead reports a stored snapshot whose version is past the
	// stream's last event (stores refuse to save one; it may predate that,
	// or have been written by hand). The snapshot is ignored and the state
	// rebuilt from events.
	ErrSnapshotAhead = errors.New("aggregate: snapshot past the stream's head")
	// ErrGaveUp marks the error of an Update that met a concurrency
	// conflict on each of its Config.MaxAttempts attempts; the error
	// also wraps the last *eventstore.ConflictError. The stream is
	// contended: a client may try again later (HTTP 503 with
	// Retry-After), unlike a Save's conflict with an expected version the
	// client sent, which it must resolve (409).
	ErrGaveUp = errors.New("aggregate: gave up")
	// ErrNotFound reports an aggregate whose stream has no events, from
	// [Repository.LoadExisting] and from an Update with [MustExist]. It
	// wraps eventstore.ErrNotFound, so errors.Is(err,
	// eventstore.ErrNotFound) holds too: an HTTP handler maps either to
	// 404.
	ErrNotFound = fmt.Errorf("aggregate: no such aggregate: %w", eventstore.ErrNotFound)
)

// SnapshotError describes a snapshot that could not be used or written. It
// never fails a Load or a Save: Load rebuilds the state from events and a
// Save whose events were stored succeeds. It is reported to
// Config.OnSnapshotError and Config.Logger instead. It unwraps to the cause:
// [ErrSnapshotSchema], [ErrSnapshotAhead], [codec.ErrMalformed] or the
// store's error.
type SnapshotError struct {
	// Op is "load" or "save".
	Op string
	// StreamID is the aggregate's stream.
	StreamID string
	// Version is the snapshot's version (0 if the load failed before it
	// was known).
	Version uint64
	// Schema is the schema tag of the stored (load) or written (save)
	// snapshot.
	Schema string
	// Err is the cause.
	Err error
}

func (e *SnapshotError) Error() string {
	return fmt.Sprintf("aggregate: %s snapshot of %q at version %d (schema %q): %v", e.Op, e.StreamID, e.Version, e.Schema, e.Err)
}

// Unwrap returns the cause.
func (e *SnapshotError) Unwrap() error { return e.Err }
