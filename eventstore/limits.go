package eventstore

import "time"

// Limits on what a store accepts. Adapters may lower the event size limit
// through their options; every store checks every append against these
// before anything is written.
const (
	// DefaultMaxEventSize is the default limit, in bytes, on one event's
	// Data plus its metadata keys and values.
	DefaultMaxEventSize = 1 << 20
	// MaxIDLength is the longest stream ID, event ID, event type, snapshot
	// name or schema tag accepted, in bytes.
	MaxIDLength = 512
	// MaxBatchSize is the largest number of events in one append.
	MaxBatchSize = 100_000
)

// The range of event times every adapter can hold: int64 nanoseconds since
// 1970, roughly the years 1678 to 2262. An event's Time must be zero (the
// store sets it) or inside it, so that an event stored by one adapter can
// be copied to another. MinTime is a whole microsecond, so that no time in
// the range leaves it once truncated to [TimePrecision].
var (
	MinTime = time.UnixMicro(-(1<<63 - 1) / 1000).UTC()
	MaxTime = time.Unix(0, 1<<63-1).UTC()
)

// TimePrecision is the precision of every time a store keeps: event times,
// given or set by the store, and snapshot times are truncated to it
// (rounded down, with [time.Time.Truncate]) before they are stored, and
// reads return the stored value. Microseconds are the finest PostgreSQL's
// timestamptz holds; every adapter keeps the same, so that an event reads
// back equal whichever adapter stored it (issue 9 item 9).
const TimePrecision = time.Microsecond
