package eventstore

import (
	"context"
	"fmt"
	"iter"
	"strings"
)

// Store is an event store. Adapters (adapters/sqlite, adapters/postgres)
// return one front ([driver.Front]) over their database driver, so every
// store behaves the same way; every implementation passes the conformance
// suite in package eventstoretest. All methods are safe for concurrent use,
// and wrapping a Store (metrics, tracing, tests) is a matter of embedding
// it and overriding the methods of interest.
//
// Every method checks, in this order: a nil context is refused with a
// *ValidationError; an ended context returns its error; a closed store
// returns ErrClosed; then invalid arguments are refused with a
// *ValidationError (ErrInvalidInput) before anything is written. Read and
// Watch make these checks when called and yield the error as their only
// element.
//
// [driver.Front]: https://pkg.go.dev/github.com/esv2/esv2/eventstore/driver#Front
type Store interface {
	// Append appends events to a stream atomically if the stream's version
	// matches expected. An empty batch writes nothing and reports the
	// current version (the expectation is still checked). The metadata
	// of ctx ([WithMetadata], [WithCorrelationID], [WithCausationID]) is
	// added to each event's, the event's own keys winning; the caller's
	// events and maps are not modified.
	//
	// Errors: *ConflictError (ErrConcurrency) when expected does not match;
	// *IdempotencyError (ErrIdempotency) when an event ID is stored in
	// another stream; *StreamDeletedError (ErrStreamDeleted) when the
	// stream was deleted (see [Lifecycle]); *ValidationError
	// (ErrInvalidInput); ErrClosed;
	// ErrUnknownOutcome when the connection to the database was lost
	// while the append committed and the store could not find out whether
	// it did. A conflict always means nothing was written; a nil error,
	// that the events are stored exactly once.
	Append(ctx context.Context, streamID string, expected ExpectedVersion, events ...Event) (AppendResult, error)

	// Read streams the events of a stream in version order, or of
	// AllStreams in global order, as described by opts. The iterator yields
	// at most one error, after which it stops.
	Read(ctx context.Context, streamID string, opts ReadOptions) iter.Seq2[Recorded, error]

	// Watch yields the events of a stream (or of AllStreams) from
	// opts.From (by default from the first event): first those already
	// stored (catch-up), then live ones, in order with no gap and no
	// duplicate, until ctx ends (the iteration then just stops) or the
	// store is closed (it yields ErrClosed).
	Watch(ctx context.Context, streamID string, opts WatchOptions) iter.Seq2[Recorded, error]

	// Info describes a stream. A stream without events has Version 0 and
	// is not an error; a deleted one reports Deleted and keeps its last
	// Version (see [Lifecycle]).
	Info(ctx context.Context, streamID string) (StreamInfo, error)

	// SaveSnapshot stores s as the latest snapshot of (s.StreamID, s.Name),
	// unless a snapshot with a higher version is already stored there. A
	// snapshot past the stream's head (its version, or the last global
	// position for AllStreams) is refused with a *ValidationError, and a
	// snapshot of a deleted stream with a *StreamDeletedError (see
	// [Lifecycle]); nothing is written then.
	SaveSnapshot(ctx context.Context, s Snapshot) error

	// LoadSnapshot returns the latest snapshot of (streamID, name), or an
	// error satisfying errors.Is(err, ErrNotFound). An empty name means
	// DefaultSnapshotName.
	LoadSnapshot(ctx context.Context, streamID, name string) (Snapshot, error)

	// FindEvent returns the event stored with the ID eventID, in whichever
	// stream it is, or an error satisfying errors.Is(err, ErrNotFound).
	// Stores whose database cannot look events up by ID return an error
	// satisfying errors.Is(err, errors.ErrUnsupported); both adapters of
	// this module can.
	FindEvent(ctx context.Context, eventID string) (Recorded, error)
	// Close releases the store. Watchers end with ErrClosed. Close is
	// idempotent.
	Close() error
}

// ReadOptions selects what Read returns.
type ReadOptions struct {
	// From is where the read begins, in its direction: FromStart (the
	// zero value) reads from the first event, or from the last when
	// reading backwards; After(v) from the first event past v (below v
	// when reading backwards); FromEnd reads nothing forwards and from
	// the last event backwards. A key is a bound, not an event that must
	// exist: After a key past every event (up to math.MaxUint64, although
	// no store holds one above math.MaxInt64) reads nothing forwards and
	// everything backwards.
	From Start
	// Backwards reads towards the first event.
	Backwards bool
	// Limit caps the number of events returned; 0 means no limit.
	Limit int
	// Until, when not 0, bounds the keys read (versions, or positions for
	// AllStreams) on the side the read goes to: forwards, none above
	// Until; backwards, none below it. A consumer reading a window of the
	// log with a selective filter bounds the time one read takes with it.
	Until uint64
	// Filter restricts the events returned. It runs in the database.
	Filter Filter
	// Omit names fields of the events that the caller does not use: a
	// store may then leave them zero instead of reading them, which
	// saves work per event on a long read (Repository.Load, which folds
	// only types and data, omits FieldID, FieldMetadata and FieldTime).
	// It is a hint: a store may fill them anyway. The zero value omits
	// nothing; StreamID, Version, Position, Type and Data are always
	// filled. Bits other than the Field constants are invalid.
	Omit Fields
}

// Fields is a set of the optional fields of a [Recorded] event, for
// [ReadOptions.Omit]: combine the Field constants with |.
type Fields uint8

const (
	// FieldID is Event.ID.
	FieldID Fields = 1 << iota
	// FieldMetadata is Event.Metadata.
	FieldMetadata
	// FieldTime is Event.Time.
	FieldTime

	// AllFields is every Field constant.
	AllFields = FieldID | FieldMetadata | FieldTime
)

// WatchOptions selects what Watch yields.
type WatchOptions struct {
	// From is where the watch begins: FromStart (the zero value) catches
	// up from the first event, After(v) from the first event past v, and
	// FromEnd yields only the events that commit after the watch began.
	From Start
	// Filter restricts the events yielded. It runs in the database.
	Filter Filter
}

// Start is where a read or a watch begins: [FromStart] (the zero value),
// [After] a version or position, or [FromEnd].
//
// Reads and watches speak of keys: a version in a stream, a global position
// in AllStreams. A Start is exclusive: After(v) begins with the first event
// past v, so a consumer that keeps the key of the last event it processed
// resumes with After(key) on either call. The zero value, FromStart, begins
// at the beginning, as After(0) does: an accidental zero value can cost a
// replay, never a missed event.
type Start struct {
	after uint64
	end   bool
}

// FromStart begins with the first event (the last, reading backwards). It
// is the zero value, and the same as After(0).
func FromStart() Start { return Start{} }

// FromEnd begins past the last event: a watch yields only the events that
// commit after it began, a forward read yields nothing, and a backward read
// begins with the last event.
func FromEnd() Start { return Start{end: true} }

// After begins with the first event past version v (in a stream) or
// position v (in AllStreams), in the direction of the read: pass the key of
// the last event a consumer processed to resume where it left off. Any v
// is accepted: a watch after a v that no event can pass (math.MaxInt64 and
// above) yields nothing and, like every watch, ends only when its context
// ends or the store is closed.
func After(v uint64) Start { return Start{after: v} }

// Cursor returns the key a read or watch begins after (0 for FromStart),
// and whether it is FromEnd instead.
func (s Start) Cursor() (after uint64, fromEnd bool) { return s.after, s.end }

// String returns "start", "end" or "after <v>".
func (s Start) String() string {
	switch {
	case s.end:
		return "end"
	case s.after == 0:
		return "start"
	}
	return fmt.Sprintf("after %d", s.after)
}

// Filter restricts reads and watches. Conditions combine with AND; an
// empty Filter matches every event.
type Filter struct {
	// Types, when not empty, keeps events whose Type is one of these. A
	// read of all streams by one type is served by an index of types in
	// global order on both adapters.
	Types []string
	// Metadata keeps events whose metadata satisfies every condition.
	Metadata []MetadataFilter
	// StreamPrefix keeps events whose stream ID starts with it. It applies
	// to AllStreams only. A prefix that holds a '-' fixes the streams'
	// [Category] ("order-", "order-42"): both adapters then read it from
	// an index of the category in global order, never scanning other
	// categories' events. A prefix without one ("ord") is tested on every
	// event in the range read.
	StreamPrefix string
	// Partitions, when its Count is not 0, keeps events of streams in some
	// partitions: a consumer group's member reads its share of the log
	// with it (package subscription does). It applies to AllStreams only.
	Partitions Partitions
}

// Partitions selects streams by partition: the events of streams whose
// [PartitionOf] among Count partitions is one of Of. A stream's events
// are all in one partition, so their order holds within a share.
type Partitions struct {
	// Count is the number of partitions, from 1 to [MaxPartitions]; 0
	// means no condition.
	Count int
	// Of lists the partitions kept, each from 0 to Count-1: at least one.
	Of []int
}

// MaxPartitions is the largest Partitions.Count.
const MaxPartitions = 1024

// Category returns the category of a stream: its ID up to the first '-',
// or the whole ID when it has none ("order-42" is in category "order"), as
// message-db and KurrentDB define it. See [Filter.StreamPrefix].
func Category(streamID string) string {
	if i := strings.IndexByte(streamID, '-'); i >= 0 {
		return streamID[:i]
	}
	return streamID
}

// IsZero reports whether f has no condition, and so matches every event.
func (f Filter) IsZero() bool {
	return len(f.Types) == 0 && len(f.Metadata) == 0 && f.StreamPrefix == "" && f.Partitions.Count == 0
}

// StreamHash is the 32-bit FNV-1a hash of a stream ID's bytes: the hash
// partitions are drawn from. Stores keep it with each event so that a
// partition is selected in the database.
func StreamHash(streamID string) uint32 {
	// FNV-1a inline (hash/fnv's would allocate): it runs for every event
	// a group member reads, and for every stream of every append.
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for i := 0; i < len(streamID); i++ {
		h ^= uint32(streamID[i])
		h *= prime32
	}
	return h
}

// PartitionOf returns the partition of a stream among n (0 when n <= 1):
// StreamHash(streamID) % n.
func PartitionOf(streamID string, n int) int {
	if n <= 1 {
		return 0
	}
	return int(StreamHash(streamID) % uint32(n))
}

// Keeps reports whether p keeps the events of streamID (always, when
// Count is 0).
func (p Partitions) Keeps(streamID string) bool {
	if p.Count == 0 {
		return true
	}
	part := PartitionOf(streamID, p.Count)
	for _, o := range p.Of {
		if o == part {
			return true
		}
	}
	return false
}

// MetadataOp is the comparison of a MetadataFilter.
type MetadataOp int

const (
	// MetadataEq keeps events whose metadata value for Key equals Values[0].
	MetadataEq MetadataOp = iota + 1
	// MetadataIn keeps events whose metadata value for Key is one of Values.
	MetadataIn
	// MetadataPrefix keeps events whose metadata value for Key starts with
	// Values[0].
	MetadataPrefix
)

// String returns "eq", "in" or "prefix".
func (o MetadataOp) String() string {
	switch o {
	case MetadataEq:
		return "eq"
	case MetadataIn:
		return "in"
	case MetadataPrefix:
		return "prefix"
	}
	return "unknown"
}

// MetadataFilter is one condition on an event's metadata.
type MetadataFilter struct {
	Key    string
	Op     MetadataOp
	Values []string
}

// MetadataEquals keeps events whose metadata key equals value.
func MetadataEquals(key, value string) MetadataFilter {
	return MetadataFilter{Key: key, Op: MetadataEq, Values: []string{value}}
}

// MetadataOneOf keeps events whose metadata key has one of values.
func MetadataOneOf(key string, values ...string) MetadataFilter {
	return MetadataFilter{Key: key, Op: MetadataIn, Values: values}
}

// MetadataHasPrefix keeps events whose metadata key starts with prefix.
func MetadataHasPrefix(key, prefix string) MetadataFilter {
	return MetadataFilter{Key: key, Op: MetadataPrefix, Values: []string{prefix}}
}

// Collect reads a whole iterator into a slice, stopping at the first error.
// It is meant for tests and small reads; large reads should range over the
// iterator instead.
func Collect(seq iter.Seq2[Recorded, error]) ([]Recorded, error) {
	var out []Recorded
	for r, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}
