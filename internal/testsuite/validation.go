package testsuite

import (
	"fmt"
	"strings"
	"testing"

	"github.com/esv2/esv2/eventstore"
)

// testAppendInvalid checks that each kind of invalid append is refused
// with a *ValidationError and writes nothing.
func testAppendInvalid(t *testing.T, newStore Factory) {
	ok := ev("t", "ok")
	withMeta := func(k, v string) eventstore.Event {
		return eventstore.Event{Type: "t", Metadata: map[string]string{k: v}}
	}
	for _, c := range []struct {
		name     string
		stream   string
		expected eventstore.ExpectedVersion
		events   []eventstore.Event
	}{
		{"EmptyStreamID", "", eventstore.Any, []eventstore.Event{ok}},
		{"StreamIDInvalidUTF8", "s\xff", eventstore.Any, []eventstore.Event{ok}},
		{"StreamIDNUL", "s\x00t", eventstore.Any, []eventstore.Event{ok}},
		{"StreamIDTooLong", strings.Repeat("s", eventstore.MaxIDLength+1), eventstore.Any, []eventstore.Event{ok}},
		{"AllStreams", eventstore.AllStreams, eventstore.Any, []eventstore.Event{ok}},
		{"AllStreamsEmptyBatch", eventstore.AllStreams, eventstore.Any, nil},
		{"EmptyType", "s", eventstore.Any, []eventstore.Event{{Data: []byte("x")}}},
		{"TypeInvalidUTF8", "s", eventstore.Any, []eventstore.Event{{Type: "t\xc3"}}},
		{"TypeNUL", "s", eventstore.Any, []eventstore.Event{{Type: "t\x00"}}},
		{"TypeTooLong", "s", eventstore.Any, []eventstore.Event{{Type: strings.Repeat("t", eventstore.MaxIDLength+1)}}},
		{"IDInvalidUTF8", "s", eventstore.Any, []eventstore.Event{{ID: "\xff", Type: "t"}}},
		{"IDNUL", "s", eventstore.Any, []eventstore.Event{{ID: "a\x00", Type: "t"}}},
		{"MetadataEmptyKey", "s", eventstore.Any, []eventstore.Event{withMeta("", "v")}},
		{"MetadataInvalidUTF8", "s", eventstore.Any, []eventstore.Event{withMeta("k", "v\xff")}},
		{"MetadataNUL", "s", eventstore.Any, []eventstore.Event{withMeta("k\x00", "v")}},
		{"OversizeData", "s", eventstore.Any, []eventstore.Event{{Type: "t", Data: make([]byte, eventstore.DefaultMaxEventSize+1)}}},
		{"OversizeMetadata", "s", eventstore.Any, []eventstore.Event{
			{Type: "t", Data: make([]byte, eventstore.DefaultMaxEventSize-10), Metadata: map[string]string{"key": "0123456789"}},
		}},
		// Far over the limit: refused before the store tries to send it
		// anywhere (internal/torture's bad input, issue 10).
		{"HugeData", "s", eventstore.Any, []eventstore.Event{ok, {Type: "t", Data: make([]byte, 32<<20)}}},
		{"HugeMetadata", "s", eventstore.Any, []eventstore.Event{{Type: "t", Metadata: map[string]string{"k": strings.Repeat("v", 8<<20)}}}},
		{"BatchTooLarge", "s", eventstore.Any, tooManyEvents()},
		{"ExpectedVersionUndefined", "s", eventstore.ExpectedVersion(-3), []eventstore.Event{ok}},
		{"ExpectedVersionNegative", "s", eventstore.ExpectedVersion(-100), []eventstore.Event{ok}},
		{"ExpectedVersionTooLarge", "s", eventstore.Exact(1 << 63), []eventstore.Event{ok}},
		{"ExpectedVersionUndefinedEmptyBatch", "s", eventstore.ExpectedVersion(-3), nil},
		{"DuplicateIDs", "s", eventstore.Any, []eventstore.Event{evID("a", "t"), evID("a", "t")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			res, err := s.Append(ctxTimeout(t), c.stream, c.expected, c.events...)
			if err == nil {
				t.Fatalf("Append succeeded with %+v, want a *ValidationError", res)
			}
			wantValidation(t, "Append", err)
			wantEmptyStore(t, s)
			if c.stream != eventstore.AllStreams {
				if info, err := s.Info(ctxTimeout(t), c.stream); err == nil && info.Version != 0 {
					t.Errorf("Info(%q) after a refused append: %+v, want version 0", c.stream, info)
				}
			}
		})
	}
}

// tooManyEvents returns a batch one event longer than MaxBatchSize, of
// events without IDs.
func tooManyEvents() []eventstore.Event {
	evs := make([]eventstore.Event, eventstore.MaxBatchSize+1)
	for i := range evs {
		evs[i] = eventstore.Event{Type: "t"}
	}
	return evs
}

// testAppendInvalidMidBatch checks that one invalid event in the middle of
// a batch leaves nothing of the batch written.
func testAppendInvalidMidBatch(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"))
	before := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	for _, bad := range []eventstore.Event{
		{Type: ""},
		{Type: "t", Data: make([]byte, eventstore.DefaultMaxEventSize+1)},
		{Type: "t", Metadata: map[string]string{"k": "\xff"}},
	} {
		batch := []eventstore.Event{evID("a", "t"), ev("t", "2"), bad, evID("b", "t")}
		_, err := s.Append(ctxTimeout(t), "s", eventstore.Exact(1), batch...)
		wantValidation(t, "Append with an invalid event in the middle", err)
	}
	wantEvents(t, "nothing written", before, readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{}))
	// The IDs of the refused batch were not stored.
	mustAppend(t, s, "other", eventstore.NoStream, evID("a", "t"), evID("b", "t"))
}

// invalidReads are read and watch arguments that must be refused.
var invalidReads = []struct {
	name   string
	stream string
	filter eventstore.Filter
}{
	{"EmptyStreamID", "", eventstore.Filter{}},
	{"StreamIDInvalidUTF8", "\xff", eventstore.Filter{}},
	{"StreamPrefixOnStream", "s", eventstore.Filter{StreamPrefix: "s"}},
	{"EmptyFilterType", "s", eventstore.Filter{Types: []string{""}}},
	{"MetadataEmptyKey", "s", eventstore.Filter{Metadata: []eventstore.MetadataFilter{eventstore.MetadataEquals("", "v")}}},
	{"MetadataUnknownOp", "s", eventstore.Filter{Metadata: []eventstore.MetadataFilter{{Key: "k", Op: 99, Values: []string{"v"}}}}},
	{"MetadataInNoValues", "s", eventstore.Filter{Metadata: []eventstore.MetadataFilter{eventstore.MetadataOneOf("k")}}},
	{"MetadataEqTwoValues", "s", eventstore.Filter{Metadata: []eventstore.MetadataFilter{{Key: "k", Op: eventstore.MetadataEq, Values: []string{"a", "b"}}}}},
	{"PartitionsOnStream", "s", eventstore.Filter{Partitions: eventstore.Partitions{Count: 2, Of: []int{0}}}},
	{"PartitionsNoneKept", eventstore.AllStreams, eventstore.Filter{Partitions: eventstore.Partitions{Count: 2}}},
	{"PartitionsOfWithoutCount", eventstore.AllStreams, eventstore.Filter{Partitions: eventstore.Partitions{Of: []int{0}}}},
	{"PartitionsCountTooLarge", eventstore.AllStreams, eventstore.Filter{Partitions: eventstore.Partitions{Count: eventstore.MaxPartitions + 1, Of: []int{0}}}},
	{"PartitionOutOfRange", eventstore.AllStreams, eventstore.Filter{Partitions: eventstore.Partitions{Count: 3, Of: []int{3}}}},
	{"PartitionNegative", eventstore.AllStreams, eventstore.Filter{Partitions: eventstore.Partitions{Count: 3, Of: []int{-1}}}},
}

// testReadInvalid checks that invalid read arguments are refused.
func testReadInvalid(t *testing.T, newStore Factory) {
	for _, c := range invalidReads {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"))
			for _, backwards := range []bool{false, true} {
				got, err := readErr(t, "Read", s.Read(ctxTimeout(t), c.stream, eventstore.ReadOptions{Backwards: backwards, Filter: c.filter}))
				if len(got) != 0 {
					t.Errorf("Read(backwards=%v) yielded %d events before its error", backwards, len(got))
				}
				wantValidation(t, "Read", err)
			}
		})
	}
	t.Run("NegativeLimit", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"))
		for _, stream := range []string{"s", eventstore.AllStreams} {
			got, err := readErr(t, "Read", s.Read(ctxTimeout(t), stream, eventstore.ReadOptions{Limit: -1}))
			if len(got) != 0 {
				t.Errorf("Read(%q) with a negative limit yielded %d events before its error", stream, len(got))
			}
			wantValidation(t, fmt.Sprintf("Read(%q) with a negative limit", stream), err)
		}
	})
	t.Run("OmitUnknownField", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"))
		for _, stream := range []string{"s", eventstore.AllStreams} {
			got, err := readErr(t, "Read", s.Read(ctxTimeout(t), stream, eventstore.ReadOptions{Omit: eventstore.AllFields + 1}))
			if len(got) != 0 {
				t.Errorf("Read(%q) omitting an unknown field yielded %d events before its error", stream, len(got))
			}
			wantValidation(t, fmt.Sprintf("Read(%q) omitting an unknown field", stream), err)
		}
	})
}

// testWatchInvalid checks that invalid watch arguments are refused: the
// watch yields the error and ends instead of waiting.
func testWatchInvalid(t *testing.T, newStore Factory) {
	for _, c := range invalidReads {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"))
			for _, from := range []eventstore.Start{eventstore.FromEnd(), eventstore.FromStart()} {
				got, err := readErr(t, "Watch", s.Watch(ctxTimeout(t), c.stream, eventstore.WatchOptions{From: from, Filter: c.filter}))
				if len(got) != 0 {
					t.Errorf("Watch(%+v) yielded %d events before its error", from, len(got))
				}
				wantValidation(t, "Watch", err)
			}
		})
	}
}
