package eventstore

import (
	"fmt"
	"time"
)

// AllStreams is the ID of the pseudo-stream that holds every event of the
// store in global order. It can be read, watched and snapshotted, but not
// appended to.
const AllStreams = "$all"

// DefaultSnapshotName is the snapshot name used when none is given; the
// aggregate layer keeps its snapshots under it.
const DefaultSnapshotName = "aggregate"

// Event is what callers append.
type Event struct {
	// ID is an optional idempotency key, unique across the store. Empty
	// means none.
	ID string
	// Type names the kind of event, e.g. "account.deposited". Required.
	Type string
	// Data is the encoded payload. It may be empty.
	Data []byte
	// Metadata holds optional string pairs (correlation, causation, user
	// ...). Reads can filter on it.
	Metadata map[string]string
	// Time is when the event happened. The zero value means "now", as set
	// by the store. Stores keep it to the microsecond ([TimePrecision]):
	// a finer time is truncated, and reads return the truncated value.
	Time time.Time
}

// Recorded is a stored event as readers get it back.
type Recorded struct {
	Event
	// StreamID is the stream the event belongs to.
	StreamID string
	// Version is the event's 1-based position inside its stream.
	Version uint64
	// Position is the event's global position in the store, strictly
	// increasing in commit order.
	Position uint64
}

// ExpectedVersion is the optimistic-concurrency condition of an append:
// [Any], [NoStream], [StreamExists], or an exact stream version (use
// [Exact] or a plain conversion such as ExpectedVersion(3)).
type ExpectedVersion int64

const (
	// Any accepts the stream at whatever version it has, including none.
	Any ExpectedVersion = -1
	// StreamExists requires the stream to have at least one event.
	StreamExists ExpectedVersion = -2
	// NoStream requires the stream to have no events. It equals Exact(0).
	NoStream ExpectedVersion = 0
)

// Exact returns the expectation that the stream is at version v.
// Versions above the largest int64 are not representable and are refused
// by Append as invalid input.
func Exact(v uint64) ExpectedVersion {
	if v > 1<<63-1 {
		return ExpectedVersion(-3) // invalid; Append reports it
	}
	return ExpectedVersion(v)
}

// Matches reports whether a stream at version current satisfies e.
func (e ExpectedVersion) Matches(current uint64) bool {
	switch {
	case e == Any:
		return true
	case e == StreamExists:
		return current > 0
	case e >= 0:
		return uint64(e) == current
	default:
		return false
	}
}

// Valid reports whether e is one of the defined expectations.
func (e ExpectedVersion) Valid() bool { return e >= StreamExists }

// String returns "any", "no stream", "stream exists" or the version number.
func (e ExpectedVersion) String() string {
	switch {
	case e == Any:
		return "any"
	case e == StreamExists:
		return "stream exists"
	case e == NoStream:
		return "no stream"
	case e > 0:
		return fmt.Sprintf("%d", int64(e))
	default:
		return fmt.Sprintf("invalid(%d)", int64(e))
	}
}

// AppendResult reports the outcome of a successful append.
type AppendResult struct {
	// Version is the stream's version after the append (for a pure
	// idempotent retry, or an empty batch, the version it already had).
	Version uint64
	// Position is the global position of the last of the batch's events
	// as stored: the last one written by this call or, when every event of
	// the batch was already stored (an idempotent retry), the highest
	// position among them. It is 0 only for an empty batch, or for a
	// retry whose events were deleted since they were stored. A caller that
	// waits for a read model (a subscription) to reach Position sees its
	// own write there, on a first try and on a retry alike.
	Position uint64
	// Appended counts the events newly stored by this call.
	Appended int
	// Duplicates lists the events of the batch that were already stored in
	// the stream (same ID) and so were not stored again.
	Duplicates []Duplicate
}

// Duplicate describes an event of an append batch whose ID was already
// stored in the same stream.
type Duplicate struct {
	// Index is the event's index in the batch.
	Index int
	// ID is the event ID.
	ID string
	// Version is the version the event already has in the stream.
	Version uint64
}

// StreamInfo describes a stream.
type StreamInfo struct {
	// StreamID is the stream's ID.
	StreamID string
	// Version is the stream's current version, 0 when it has no events.
	// AllStreams has positions, not versions: its Version is 0.
	Version uint64
	// Position is the global position of the stream's last event, 0
	// when there is none. For AllStreams it is the highest position the
	// store has handed out, which a deleted event may have held: every
	// event appended later gets a higher one.
	Position uint64
	// Count is the number of events stored in the stream. Versions are
	// dense from the first event kept, so a truncated stream's first
	// stored version is Version - Count + 1 (see [Lifecycle]).
	Count uint64
	// LastTime is the time of the last event, zero when there is none.
	LastTime time.Time
	// Deleted reports a deleted stream ([Lifecycle.DeleteStream]): it
	// keeps its last Version, has no events (Count 0, Position 0) and
	// refuses appends with ErrStreamDeleted.
	Deleted bool
}

// Snapshot is a saved state of a stream (or of a read model over it) at a
// version. Only the latest snapshot of each (StreamID, Name) pair is kept.
type Snapshot struct {
	// StreamID is the stream the snapshot belongs to, or AllStreams.
	StreamID string
	// Name distinguishes several snapshots of one stream (one per read
	// model). Empty means DefaultSnapshotName.
	Name string
	// Version is the stream version the snapshot reflects; for AllStreams
	// it is a global position.
	Version uint64
	// Schema tags the encoding of Data so that a reader can ignore a
	// snapshot written for another state shape.
	Schema string
	// Data is the encoded state.
	Data []byte
	// Time is when the snapshot was saved (set by the store).
	Time time.Time
}
