package eventstore

import (
	"context"
	"iter"
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
	// current version (the expectation is still checked).
	//
	// Errors: *ConflictError (ErrConcurrency) when expected does not match;
	// *IdempotencyError (ErrIdempotency) when an event ID is stored in
	// another stream; *ValidationError (ErrInvalidInput); ErrClosed;
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
	// opts.From, first those already stored (catch-up) and then live ones,
	// in order with no gap and no duplicate, until ctx ends (the iteration
	// then just stops) or the store is closed (it yields ErrClosed).
	Watch(ctx context.Context, streamID string, opts WatchOptions) iter.Seq2[Recorded, error]

	// Info describes a stream. A stream without events has Version 0 and
	// is not an error.
	Info(ctx context.Context, streamID string) (StreamInfo, error)

	// SaveSnapshot stores s as the latest snapshot of (s.StreamID, s.Name),
	// unless a snapshot with a higher version is already stored there. A
	// snapshot past the stream's head (its version, or the last global
	// position for AllStreams) is refused with a *ValidationError and
	// nothing is written.
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
	// From is the first version (for a stream) or global position (for
	// AllStreams) to return; 0 means the start when reading forwards and
	// the end when reading backwards. It is a bound, not an event that must
	// exist: a From past every event (up to math.MaxUint64, although no
	// store holds a version or position above math.MaxInt64) reads nothing
	// forwards and everything backwards, on every adapter (issue 9 item 9).
	From uint64
	// Backwards reads from From (or the end) towards the start.
	Backwards bool
	// Limit caps the number of events returned; 0 means no limit.
	Limit int
	// Filter restricts the events returned. It runs in the database.
	Filter Filter
}

// WatchOptions selects what Watch yields.
type WatchOptions struct {
	// From is where the watch starts. The zero value starts at the present:
	// only events appended after the iteration begins are yielded.
	From Start
	// Filter restricts the events yielded. It runs in the database.
	Filter Filter
}

// Start is where a watch begins: FromPresent (the zero value), FromStart,
// or After a version or position.
type Start struct {
	after uint64
	set   bool
}

// FromPresent starts a watch with the events appended after it begins.
func FromPresent() Start { return Start{} }

// FromStart starts a watch with the first event.
func FromStart() Start { return Start{set: true} }

// After starts a watch with the events after version v (for a stream) or
// position v (for AllStreams): pass the last version or position a consumer
// processed to resume where it left off. Any v is accepted: a watch after
// a v that no event can pass (math.MaxInt64 and above) yields nothing and,
// like every watch, ends only when its context ends or the store is closed
// (issue 9 item 9).
func After(v uint64) Start { return Start{after: v, set: true} }

// Cursor returns the version or position after which the watch starts,
// and false for FromPresent, whose position is the head when the watch
// begins.
func (s Start) Cursor() (after uint64, ok bool) { return s.after, s.set }

// Filter restricts reads and watches. Conditions combine with AND; an
// empty Filter matches every event.
type Filter struct {
	// Types, when not empty, keeps events whose Type is one of these.
	Types []string
	// Metadata keeps events whose metadata satisfies every condition.
	Metadata []MetadataFilter
	// StreamPrefix keeps events whose stream ID starts with it. It applies
	// to AllStreams only.
	StreamPrefix string
}

// IsZero reports whether f has no condition, and so matches every event.
func (f Filter) IsZero() bool {
	return len(f.Types) == 0 && len(f.Metadata) == 0 && f.StreamPrefix == ""
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
