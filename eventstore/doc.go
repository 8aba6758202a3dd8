// Package eventstore is what applications program against: the event types,
// the [Store] interface, the [Stream] handle, and the errors callers test
// with [errors.Is] and [errors.As]. Stores are opened with an adapter
// (adapters/sqlite, adapters/postgres); every adapter is a driver under one
// shared front (package eventstore/driver, for adapter authors), so the
// rules below hold the same way on every database.
//
// # Streams and positions
//
// A stream is an ordered list of events identified by a string. Each stored
// event has a 1-based Version inside its stream and a global Position that is
// strictly increasing in commit order across the whole store. The
// pseudo-stream [AllStreams] ("$all") reads and watches every stream in global
// order; writing to it is refused.
//
// # Appending
//
// [Store.Append] takes an [ExpectedVersion] ([Any], [NoStream],
// [StreamExists] or an exact version) and appends a batch atomically: either
// every new event of the batch is stored or none is. A mismatch returns a
// [*ConflictError], which unwraps to [ErrConcurrency].
//
// Events may carry an ID used as an idempotency key. An event whose ID is
// already stored in the same stream is not stored again; a batch made only of
// such events is a retry and succeeds whatever its expected version. An ID
// already stored in another stream is refused with an [*IdempotencyError]
// and nothing is written. The database enforces this with a unique index, so
// it holds across restarts and processes.
//
// [AppendResult].Position is the global position of the batch's last event,
// on a retry too: wait for a read model to reach it to read your own write.
//
// # Metadata from the context
//
// [WithMetadata], [WithCorrelationID], [WithCausationID] and [CausedBy]
// put metadata in a context; Append adds it to each event it stores (an
// event's own keys win), so a request's correlation ID reaches every event
// it causes without being threaded by hand. The keys esv2 uses are
// documented constants: [CorrelationIDKey], [CausationIDKey], and the
// trace context keys [TraceParentKey] and [TraceStateKey] (written by
// package esotel).
//
// # Reading and watching
//
// Reads are Go iterators ([iter.Seq2] of [Recorded] and error): rows are
// streamed, never materialised whole. The first error is yielded once and ends
// the iteration; breaking out of the loop early is not an error. Filters
// ([Filter]) run in the database.
//
// [Store.Watch] catches up from a version or position and then follows live
// appends, in order, with no gap and no duplicate, until its context ends.
// Reads and watches begin where a [Start] says, the same way on both calls:
// FromStart (the zero value), After the version or position a consumer last
// processed (exclusive), or FromEnd (a watch then yields only new events).
//
// # Deleting and truncating
//
// Stores that can remove what they hold implement [Lifecycle] (both
// adapters of this module do; the [Stream] handle's Delete, Truncate and
// DeleteSnapshots find it by type assertion): a deleted stream keeps a
// tombstone and refuses appends with [ErrStreamDeleted]; a truncation keeps
// the tail; no version or position is ever given out again. A load that
// needs truncated events fails with [ErrTruncated].
//
// # Locking a stream
//
// Stores whose database can hold a lock across processes implement
// [StreamLocker] (PostgreSQL, through the front; on SQLite the methods
// answer errors.ErrUnsupported). Package aggregate takes a stream's lock
// for the Updates of a contended aggregate, so that processes take turns
// instead of conflicting.
//
// # Errors
//
// Adapters translate database errors; callers only ever see the sentinels
// [ErrConcurrency], [ErrIdempotency], [ErrInvalidInput], [ErrClosed],
// [ErrNotFound] and [ErrStreamDeleted] (wrapped in richer types where there is more to say), or a
// context error, or a wrapped I/O error from the database.
package eventstore
