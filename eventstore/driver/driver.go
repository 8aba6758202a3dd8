// Package driver is for adapter authors: it defines the narrow interface a
// database adapter implements ([Driver]) and puts the one front every esv2
// store shares over it ([New]). Applications use package eventstore, and
// open stores with an adapter (adapters/sqlite, adapters/postgres); the
// interfaces here may change between releases.
//
// # The split
//
// The front ([Front]) owns everything that must not differ between
// databases: the order of the context, closed and validation checks; the
// validation itself and the defaults (snapshot name, page sizes and byte
// budgets); empty appends; the Read iterator and its paging; the whole of
// watching (one notifier per store, fan-out to watchers, catch-up then
// live); and waking watchers after its own appends. A driver only talks to
// its database: it appends a validated batch atomically, reads one bounded
// page between two keys with the filter pushed down, reports heads, stream
// information and snapshots, and tells the front of appends made by other
// processes ([Listener]). Abilities not every database has are optional
// interfaces found by type assertion, as database/sql finds
// driver.ExecerContext ([EventFinder]).
//
// The conformance suite (package eventstore/eventstoretest) runs against
// the front over a driver; a driver that passes it behaves as every other.
package driver

import (
	"context"
	"errors"
	"log/slog"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/validate"
)

// Driver is what an adapter implements. Every method is called by the
// front only after its own checks: the context is not nil and had not
// ended, the store was open, and the arguments are valid (see each
// method). A driver is safe for concurrent use.
//
// After Close, and for a call that Close cut short, methods return an error
// that satisfies errors.Is(err, eventstore.ErrClosed).
type Driver interface {
	// Append stores b's events atomically if b.Expected matches the
	// stream's version, with the rules of [eventstore.Store.Append]:
	// versions dense from 1, positions increasing in commit order, a
	// conflict (*eventstore.ConflictError) only when nothing was written,
	// event IDs idempotent within the stream (*eventstore.IdempotencyError
	// when stored in another). A zero event Time means the time of the
	// append; every time is kept to [eventstore.TimePrecision].
	//
	// Cancellation, the one rule of every store: if ctx ends while the
	// append waits to be taken (in a group commit queue, for a lock),
	// nothing is written and Append returns ctx's error; once the batch
	// has been sent to the database, Append returns its real outcome even
	// if ctx has ended meanwhile, or eventstore.ErrUnknownOutcome when the
	// outcome cannot be known (the connection was lost before COMMIT's
	// answer and could not be looked up). A driver may refuse a batch over
	// a limit of its own with a *eventstore.ValidationError, before
	// anything is written.
	//
	// b is not empty and has been validated; b.Events must not be kept
	// after Append returns.
	Append(ctx context.Context, b *Batch) (eventstore.AppendResult, error)

	// ReadPage appends to page the events of q whose keys (versions, or
	// positions for AllStreams) lie in [r.From, r.To], in q's direction,
	// and returns it: r.Limit events (never more than Config.MaxPageRows)
	// unless the range holds fewer, or fewer once their
	// sizes ([eventstore.EventSize]) add up to [eventstore.PageBytes] (the
	// page then ends with the event that reached it, so that a page always
	// holds at least one event when one is there). The driver holds no
	// connection or lock once it returns. The filter runs in the database.
	//
	// The front takes a page shorter than r.Limit whose events stay under
	// PageBytes for the end of the range, so a driver must not cut pages
	// shorter for reasons of its own.
	//
	// The front passes the same *Query to every page of one read or watch
	// (one iteration of it: an iterator ranged again gets a new Query), and
	// never to two calls at once, so a driver may keep what it derived from
	// it in q.Prepared.
	ReadPage(ctx context.Context, q *Query, r Range, page []eventstore.Recorded) ([]eventstore.Recorded, error)

	// Head returns the version of a stream (0 when it has no events), or
	// for eventstore.AllStreams the position of the last event committed.
	// Every event that commits after Head returned gets a higher key.
	Head(ctx context.Context, streamID string) (uint64, error)

	// Info describes a stream, or the whole store for AllStreams; see
	// [eventstore.Store.Info].
	Info(ctx context.Context, streamID string) (eventstore.StreamInfo, error)

	// SaveSnapshot stores s as the latest snapshot of (s.StreamID, s.Name)
	// unless one with a higher version is stored, and refuses one past the
	// stream's head with [SnapshotPastHead] and one of a deleted stream
	// with a *eventstore.StreamDeletedError, checked atomically with the
	// write (a deletion committing meanwhile included). s is valid and
	// its Name is set.
	SaveSnapshot(ctx context.Context, s eventstore.Snapshot) error

	// LoadSnapshot returns the latest snapshot of (streamID, name), or an
	// error satisfying errors.Is(err, eventstore.ErrNotFound). name is set.
	LoadSnapshot(ctx context.Context, streamID, name string) (eventstore.Snapshot, error)

	// Close stops the driver's goroutines and releases its database. An
	// append queued and not yet sent gets eventstore.ErrClosed; one being
	// committed gets its outcome. The front calls it once.
	Close() error
}

// Batch is one append, validated by the front.
type Batch struct {
	StreamID string
	Expected eventstore.ExpectedVersion
	Events   []eventstore.Event
}

// Query is what one read or watch selects; its pages differ only in their
// [Range].
type Query struct {
	// StreamID is a stream, or eventstore.AllStreams.
	StreamID string
	// Filter is valid for StreamID (a stream prefix only on AllStreams).
	Filter eventstore.Filter
	// Backwards reads from r.To down to r.From.
	Backwards bool
	// Omit is the read's eventstore.ReadOptions.Omit: fields the driver
	// may leave zero rather than read (it may also fill them).
	Omit eventstore.Fields
	// Watch tells a watch's pages from a read's: they alternate between
	// catch-up pages of any size and short live ones, so a guess about
	// the next page drawn from the last one is often wrong.
	Watch bool
	// Prepared belongs to the driver: whatever it derived from the query
	// on its first page (SQL text, arguments), for the next pages. The
	// front never reads it.
	Prepared any
}

// Range bounds one page: keys from From to To, both included, with
// 1 <= From <= To <= math.MaxInt64, and at most Limit (> 0) events.
type Range struct {
	From, To uint64
	Limit    int
}

// Config is what a driver tells the front about itself.
type Config struct {
	// MaxEventSize is the largest event (Data plus metadata keys and
	// values) the store accepts; 0 means eventstore.DefaultMaxEventSize.
	MaxEventSize int
	// MaxPageRows caps the rows of one read page (pages start small and
	// grow fourfold up to it); 0 means 1024.
	MaxPageRows int
	// ReadAhead makes a large unfiltered Read fetch the two pages after
	// the current one, one after the other, each on a connection of its
	// own, while the caller's loop runs on it: worth it where the
	// database works apart from the caller (a server), not where it
	// shares the caller's CPU (an embedded database).
	ReadAhead bool
	// OwnNotices says the driver reports its own appends too, to the
	// Notices given to Listen, when they commit (before their Append
	// calls return); the front then does not wake watchers after Append.
	// A driver that commits appends in groups should: watchers are then
	// woken once per group, at its commit, rather than once per append
	// as each caller gets its answer. (SQLite's in-memory store wakes
	// them while its writer still holds the lock its readers wait on, so
	// that they read together between two transactions; woken after the
	// lock's release, their reads and the writer's transactions
	// interleave and BenchmarkReadUnderAppendLoad's read p99 doubled.)
	OwnNotices bool
	// Logger, when not nil, is told what the front met on the way:
	// appends refused for a conflict (Debug), watch pages read again
	// after a lost connection (Debug), an append whose outcome is unknown
	// (Warn), and database errors that fail an append or end a watch
	// (Error). Nil (the default) logs nothing; the front never logs on
	// its own.
	Logger *slog.Logger
}

// Notices receives a driver's news of appends made by others. Its methods
// may be called from any goroutine, at any time until Close returns.
type Notices interface {
	// Appended wakes the watchers of the given streams, and those of
	// AllStreams.
	Appended(streamIDs ...string)
	// Changed wakes every watcher, for a change whose streams are not
	// known. A needless wake costs a watcher one read; a missed one, an
	// event delivered late. So when in doubt, call Changed.
	Changed()
}

// Listener is implemented by drivers that learn of appends made outside
// the front (other processes, other stores over the same database): the
// front calls Listen once, before it returns from [New], and the driver
// reports those appends to n until it is closed. The front wakes watchers
// for its own appends itself, unless [Config].OwnNotices says the driver
// reports those too. Appended must not keep streamIDs after it returns,
// so that a driver may reuse the slice.
type Listener interface {
	Listen(n Notices)
}

// EventFinder is implemented by drivers that can look an event up by its
// ID (a unique index makes it one lookup). The front's FindEvent answers
// errors.ErrUnsupported without it.
type EventFinder interface {
	// FindEvent returns the event stored with eventID, or an error
	// satisfying errors.Is(err, eventstore.ErrNotFound).
	FindEvent(ctx context.Context, eventID string) (eventstore.Recorded, error)
}

// Deleter is implemented by drivers that can remove what they store: the
// front's [eventstore.Lifecycle] methods answer errors.ErrUnsupported
// without it. Each method runs atomically, with the front's arguments
// checked (valid IDs, never AllStreams for a stream's events, before >= 1),
// under the same lock or transaction order as Append, so that no append
// interleaves with it; none may make a global position or a version be
// handed out again. A driver that implements Deleter also refuses, in
// Append, a batch (even of stored IDs) for a deleted stream with a
// *eventstore.StreamDeletedError, and reports Deleted in Info: the rules
// are [eventstore.Lifecycle]'s.
type Deleter interface {
	// DeleteStream removes the stream's events and snapshots and keeps a
	// tombstone with its version, if expected matches that version; a
	// deleted stream whose tombstone's version matches is left as it is
	// (nil). Errors: *eventstore.ConflictError, an error satisfying
	// errors.Is(err, eventstore.ErrNotFound) for a stream without events
	// and tombstone.
	DeleteStream(ctx context.Context, streamID string, expected eventstore.ExpectedVersion) error
	// TruncateStream removes the stream's events below version before.
	// Errors: *eventstore.ValidationError when before is past the
	// stream's version (see [TruncatePastHead]),
	// *eventstore.StreamDeletedError, ErrNotFound as for DeleteStream.
	TruncateStream(ctx context.Context, streamID string, before uint64) error
	// DeleteSnapshots removes the snapshot (streamID, name), or every
	// snapshot of streamID when name is "".
	DeleteSnapshots(ctx context.Context, streamID, name string) error
}

// TruncatePastHead returns the *eventstore.ValidationError a driver's
// TruncateStream returns for a before past the stream's version (read in
// the truncating transaction), or nil: a truncation keeps the last event.
func TruncatePastHead(streamID string, before, version uint64) error {
	return validate.TruncateHead(streamID, before, version)
}

// SnapshotPastHead returns the *eventstore.ValidationError a driver's
// SaveSnapshot returns for a snapshot past the stream's head, or nil: head
// is the stream's version (the last position for AllStreams), read in the
// same transaction or statement as the write, so that no concurrent change
// slips between the check and the write. A snapshot the stream
// contradicts would be trusted by a load, and every append made from that
// state would conflict.
func SnapshotPastHead(s eventstore.Snapshot, head uint64) error {
	return validate.SnapshotHead(s, head)
}

// Translated reports whether err is already one of the errors a store
// answers with: a *eventstore.ConflictError, *IdempotencyError or
// *ValidationError or *StreamDeletedError, eventstore.ErrClosed, ErrNotFound
// or ErrUnknownOutcome,
// or a context error. A driver's error translation passes these on as they
// are and translates the rest (its database's own errors).
func Translated(err error) bool {
	var (
		conflict *eventstore.ConflictError
		idem     *eventstore.IdempotencyError
		valid    *eventstore.ValidationError
	)
	return errors.As(err, &conflict) || errors.As(err, &idem) || errors.As(err, &valid) ||
		errors.Is(err, eventstore.ErrClosed) || errors.Is(err, eventstore.ErrNotFound) ||
		errors.Is(err, eventstore.ErrUnknownOutcome) || errors.Is(err, eventstore.ErrStreamDeleted) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// StreamLocker is implemented by drivers that can lock a stream across
// processes: the front's [eventstore.StreamLocker] methods answer
// errors.ErrUnsupported without it. The front has checked the context,
// that the store is open and the stream ID (a valid ID, never AllStreams).
// The rules are [eventstore.StreamLocker]'s; above all, a LockStream that
// returns an error holds nothing and acquires nothing later, and an unlock
// that fails still releases the lock (on PostgreSQL, by closing the
// session rather than handing it back to a pool).
type StreamLocker interface {
	LockStream(ctx context.Context, streamID string) (unlock func(context.Context) error, err error)
	StreamLocked(ctx context.Context, streamID string) (bool, error)
}
