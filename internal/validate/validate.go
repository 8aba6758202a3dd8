// Package validate holds the checks the front (package eventstore/driver)
// makes before a store does anything; the in-module reference store of the
// conformance suite and the aggregate use them too.
package validate

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/esv2/esv2/eventstore"
)

// StreamID checks a stream ID for reading. eventstore.AllStreams is accepted.
func StreamID(id string) error {
	return checkName("stream ID", -1, id, true)
}

// Append checks an append before anything is written. It refuses
// writes to eventstore.AllStreams, empty or malformed stream IDs and event types
// (invalid UTF-8, NUL bytes, longer than eventstore.MaxIDLength), events whose Data
// plus metadata exceed maxEventSize (eventstore.DefaultMaxEventSize when <= 0),
// duplicate event IDs inside the batch, times outside eventstore.MinTime to eventstore.MaxTime,
// an undefined eventstore.ExpectedVersion and batches longer than eventstore.MaxBatchSize. Every
// error unwraps to ErrInvalidInput.
func Append(streamID string, expected eventstore.ExpectedVersion, events []eventstore.Event, maxEventSize int) error {
	if err := checkName("stream ID", -1, streamID, true); err != nil {
		return err
	}
	if streamID == eventstore.AllStreams {
		return invalid("stream ID", -1, "%q is the all-streams log and cannot be appended to", eventstore.AllStreams)
	}
	if !expected.Valid() {
		return invalid("expected version", -1, "%d is not eventstore.Any, eventstore.NoStream, eventstore.StreamExists or a version", int64(expected))
	}
	if len(events) > eventstore.MaxBatchSize {
		return invalid("batch", -1, "%d events is more than the limit of %d", len(events), eventstore.MaxBatchSize)
	}
	if maxEventSize <= 0 {
		maxEventSize = eventstore.DefaultMaxEventSize
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
		if t := ev.Time; !t.IsZero() && (t.Before(eventstore.MinTime) || t.After(eventstore.MaxTime)) {
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

// Snapshot checks a snapshot before it is saved.
func Snapshot(s eventstore.Snapshot, maxSize int) error {
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

// SnapshotHead refuses a snapshot past the stream's head: head is
// the stream's current version (the last global position for eventstore.AllStreams),
// read in the same transaction or statement as the save, so that no
// concurrent change slips between the check and the write. A snapshot the
// stream contradicts would be trusted by a load, and every append made
// from that state would conflict (issue 9 item 7).
func SnapshotHead(s eventstore.Snapshot, head uint64) error {
	if s.Version > head {
		return invalid("snapshot version", -1, "%d is past the head of stream %q (%d)", s.Version, s.StreamID, head)
	}
	return nil
}

// Filter checks read or watch options for the given stream.
func Filter(streamID string, f eventstore.Filter) error {
	if err := StreamID(streamID); err != nil {
		return err
	}
	if f.StreamPrefix != "" && streamID != eventstore.AllStreams {
		return invalid("filter", -1, "a stream prefix applies only to %q", eventstore.AllStreams)
	}
	if !cleanText(f.StreamPrefix) {
		return invalid("filter", -1, "stream prefix is not valid UTF-8 without NUL")
	}
	if err := partitions(streamID, f.Partitions); err != nil {
		return err
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
		case eventstore.MetadataEq, eventstore.MetadataPrefix:
			if len(m.Values) != 1 {
				return invalid("filter", -1, "metadata %q: %s takes exactly one value", m.Key, m.Op)
			}
		case eventstore.MetadataIn:
			if len(m.Values) == 0 {
				return invalid("filter", -1, "metadata %q: in takes at least one value", m.Key)
			}
		default:
			return invalid("filter", -1, "metadata %q: unknown operator %d", m.Key, m.Op)
		}
	}
	return nil
}

// partitions checks a partition filter.
func partitions(streamID string, p eventstore.Partitions) error {
	switch {
	case p.Count == 0 && len(p.Of) == 0:
		return nil
	case p.Count < 1 || p.Count > eventstore.MaxPartitions:
		return invalid("filter", -1, "partition count %d is not from 1 to %d", p.Count, eventstore.MaxPartitions)
	case streamID != eventstore.AllStreams:
		return invalid("filter", -1, "partitions apply only to %q", eventstore.AllStreams)
	case len(p.Of) == 0:
		return invalid("filter", -1, "partitions: none of the %d is kept", p.Count)
	}
	for _, o := range p.Of {
		if o < 0 || o >= p.Count {
			return invalid("filter", -1, "partition %d is not from 0 to %d", o, p.Count-1)
		}
	}
	return nil
}

// Context returns an error for a nil or ended context.
func Context(ctx context.Context) error {
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
	case len(s) > eventstore.MaxIDLength:
		return invalid(field, index, "%d bytes is longer than the limit of %d", len(s), eventstore.MaxIDLength)
	case !utf8.ValidString(s):
		return invalid(field, index, "not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return invalid(field, index, "contains a NUL byte")
	}
	return nil
}

func invalid(field string, index int, format string, args ...any) error {
	return &eventstore.ValidationError{Field: field, Index: index, Reason: fmt.Sprintf(format, args...)}
}

// EventID checks an event ID to look up.
func EventID(id string) error {
	return checkName("event ID", -1, id, true)
}

// Delete checks the arguments of a DeleteStream.
func Delete(streamID string, expected eventstore.ExpectedVersion) error {
	if err := lifecycleStream(streamID, "deleted"); err != nil {
		return err
	}
	if !expected.Valid() {
		return invalid("expected version", -1, "%d is not eventstore.Any, eventstore.NoStream, eventstore.StreamExists or a version", int64(expected))
	}
	return nil
}

// Truncate checks the arguments of a TruncateStream (before's upper
// bound, the stream's version, is the store's to check).
func Truncate(streamID string, before uint64) error {
	if err := lifecycleStream(streamID, "truncated"); err != nil {
		return err
	}
	if before == 0 || before > 1<<63-1 {
		return invalid("truncate before", -1, "%d is not a version (1 or more)", before)
	}
	return nil
}

// TruncateHead refuses a truncation before a version past the stream's
// version (a truncation keeps the last event), or nil.
func TruncateHead(streamID string, before, version uint64) error {
	if before > version {
		return invalid("truncate before", -1, "%d is past the stream %q's version %d: a truncation keeps the last event", before, streamID, version)
	}
	return nil
}

func lifecycleStream(streamID, what string) error {
	if err := checkName("stream ID", -1, streamID, true); err != nil {
		return err
	}
	if streamID == eventstore.AllStreams {
		return invalid("stream ID", -1, "%q is the all-streams log and cannot be %s", eventstore.AllStreams, what)
	}
	return nil
}

// LockStream checks the stream ID of a LockStream or StreamLocked.
func LockStream(streamID string) error {
	return lifecycleStream(streamID, "locked")
}
