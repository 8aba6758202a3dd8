package eventstore

import "context"

// StreamLocker is an optional ability of a store, found by type assertion:
// a lock on a stream that holds across processes, for writers that would
// rather wait their turn than lose optimistic races. Package aggregate
// takes it for the Updates of a stream that meets conflicts (see
// aggregate.Repository.Update), so that Updates of one aggregate from
// several processes stop conflicting.
//
// The lock is advisory: it excludes only other holders, never a reader or
// an Append. Both of esv2's stores have the methods (through the front,
// package eventstore/driver); over a database without the ability (SQLite,
// whose writers one file lock already serialises and whose in-memory
// stores live in one process) they return an error satisfying
// errors.Is(err, errors.ErrUnsupported).
type StreamLocker interface {
	// LockStream waits until it holds the lock of streamID, then returns
	// the function that releases it. If ctx ends first it returns ctx's
	// error, and the lock is neither held nor acquired later. The lock is
	// held by the store (a database session on PostgreSQL), not by a
	// goroutine: unlock must be called exactly once, by whoever holds
	// it. If unlock fails (its error says why), the lock is released
	// anyway, by ending the session that held it.
	//
	// Errors: *ValidationError for AllStreams or an invalid ID; ErrClosed;
	// ctx's error; errors.ErrUnsupported (see above).
	LockStream(ctx context.Context, streamID string) (unlock func(context.Context) error, err error)

	// StreamLocked reports whether another holder has, or waits for, the
	// lock of streamID at the time of the call: a writer that does not
	// lock asks it to learn that others do. Its errors are LockStream's.
	StreamLocked(ctx context.Context, streamID string) (bool, error)
}
