package eventstore

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on what a store accepts. Adapters may lower MaxEventSize through
// their options; they check every append with ValidateAppend.
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

// ValidateStreamID checks a stream ID for reading. AllStreams is accepted.
func ValidateStreamID(id string) error {
	return checkName("stream ID", -1, id, true)
}

// ValidateAppend checks an append before anything is written. It refuses
// writes to AllStreams, empty or malformed stream IDs and event types
// (invalid UTF-8, NUL bytes, longer than MaxIDLength), events whose Data
// plus metadata exceed maxEventSize (DefaultMaxEventSize when <= 0),
// duplicate event IDs inside the batch, times outside MinTime to MaxTime,
// an undefined ExpectedVersion and batches longer than MaxBatchSize. Every
// error unwraps to ErrInvalidInput.
func ValidateAppend(streamID string, expected ExpectedVersion, events []Event, maxEventSize int) error {
	if err := checkName("stream ID", -1, streamID, true); err != nil {
		return err
	}
	if streamID == AllStreams {
		return invalid("stream ID", -1, "%q is the all-streams log and cannot be appended to", AllStreams)
	}
	if !expected.Valid() {
		return invalid("expected version", -1, "%d is not Any, NoStream, StreamExists or a version", int64(expected))
	}
	if len(events) > MaxBatchSize {
		return invalid("batch", -1, "%d events is more than the limit of %d", len(events), MaxBatchSize)
	}
	if maxEventSize <= 0 {
		maxEventSize = DefaultMaxEventSize
	}
	var seen map[string]int
	for i := range events {
		ev := &events[i]
		if err := checkName("event type", i, ev.Type, true); err != nil {
			return err
		}
		if ev.ID != "" {
			if err := checkName("event ID", i, ev.ID, false); err != nil {
				return err
			}
			if seen == nil {
				seen = make(map[string]int, len(events))
			}
			if j, dup := seen[ev.ID]; dup {
				return invalid("event ID", i, "%q is also the ID of event %d of the batch", ev.ID, j)
			}
			seen[ev.ID] = i
		}
		if t := ev.Time; !t.IsZero() && (t.Before(MinTime) || t.After(MaxTime)) {
			return invalid("event time", i, "%v is outside the range a store can hold (years 1678 to 2262)", t)
		}
		size := len(ev.Data)
		for k, v := range ev.Metadata {
			if k == "" {
				return invalid("metadata", i, "empty key")
			}
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return invalid("metadata", i, "key %q: not valid UTF-8", k)
			}
			if strings.IndexByte(k, 0) >= 0 || strings.IndexByte(v, 0) >= 0 {
				return invalid("metadata", i, "key %q: contains a NUL byte", k)
			}
			size += len(k) + len(v)
		}
		if size > maxEventSize {
			return invalid("event size", i, "%d bytes is more than the limit of %d", size, maxEventSize)
		}
	}
	return nil
}

// ValidateSnapshot checks a snapshot before it is saved.
func ValidateSnapshot(s Snapshot, maxSize int) error {
	if err := checkName("stream ID", -1, s.StreamID, true); err != nil {
		return err
	}
	if s.Name != "" {
		if err := checkName("snapshot name", -1, s.Name, false); err != nil {
			return err
		}
	}
	if s.Schema != "" {
		if err := checkName("snapshot schema", -1, s.Schema, false); err != nil {
			return err
		}
	}
	if maxSize > 0 && len(s.Data) > maxSize {
		return invalid("snapshot size", -1, "%d bytes is more than the limit of %d", len(s.Data), maxSize)
	}
	if s.Version > 1<<63-1 {
		return invalid("snapshot version", -1, "%d is too large", s.Version)
	}
	return nil
}

// ValidateSnapshotHead refuses a snapshot past the stream's head: head is
// the stream's current version (the last global position for AllStreams),
// read in the same transaction or statement as the save, so that no
// concurrent change slips between the check and the write. A snapshot the
// stream contradicts would be trusted by a load, and every append made
// from that state would conflict (issue 9 item 7).
func ValidateSnapshotHead(s Snapshot, head uint64) error {
	if s.Version > head {
		return invalid("snapshot version", -1, "%d is past the head of stream %q (%d)", s.Version, s.StreamID, head)
	}
	return nil
}

// ValidateReadOptions checks read or watch options for the given stream.
func ValidateReadOptions(streamID string, f Filter) error {
	if err := ValidateStreamID(streamID); err != nil {
		return err
	}
	if f.StreamPrefix != "" && streamID != AllStreams {
		return invalid("filter", -1, "a stream prefix applies only to %q", AllStreams)
	}
	if !cleanText(f.StreamPrefix) {
		return invalid("filter", -1, "stream prefix is not valid UTF-8 without NUL")
	}
	for _, t := range f.Types {
		if err := checkName("filter event type", -1, t, true); err != nil {
			return err
		}
	}
	for _, m := range f.Metadata {
		if m.Key == "" {
			return invalid("filter", -1, "metadata key is empty")
		}
		if !cleanText(m.Key) {
			return invalid("filter", -1, "metadata key %q is not valid UTF-8 without NUL", m.Key)
		}
		for _, v := range m.Values {
			if !cleanText(v) {
				return invalid("filter", -1, "metadata %q: value %q is not valid UTF-8 without NUL", m.Key, v)
			}
		}
		switch m.Op {
		case MetadataEq, MetadataPrefix:
			if len(m.Values) != 1 {
				return invalid("filter", -1, "metadata %q: %s takes exactly one value", m.Key, m.Op)
			}
		case MetadataIn:
			if len(m.Values) == 0 {
				return invalid("filter", -1, "metadata %q: in takes at least one value", m.Key)
			}
		default:
			return invalid("filter", -1, "metadata %q: unknown operator %d", m.Key, m.Op)
		}
	}
	return nil
}

// CheckContext returns an error for a nil or ended context.
func CheckContext(ctx context.Context) error {
	if ctx == nil {
		return invalid("context", -1, "nil")
	}
	return ctx.Err()
}

// cleanText reports whether s is valid UTF-8 without NUL bytes, as every
// string a store keeps or compares in SQL must be.
func cleanText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

func checkName(field string, index int, s string, required bool) error {
	switch {
	case s == "":
		if required {
			return invalid(field, index, "empty")
		}
		return invalid(field, index, "empty string (omit it instead)")
	case len(s) > MaxIDLength:
		return invalid(field, index, "%d bytes is longer than the limit of %d", len(s), MaxIDLength)
	case !utf8.ValidString(s):
		return invalid(field, index, "not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return invalid(field, index, "contains a NUL byte")
	}
	return nil
}
