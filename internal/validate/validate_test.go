package validate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/validate"
)

// wantInvalid checks that err is a *ValidationError with the given field and
// index (want nil for no error).
func wantInvalid(t *testing.T, what string, err error, want *eventstore.ValidationError) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Errorf("%s: %v, want no error", what, err)
		}
		return
	}
	var ve *eventstore.ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("%s: %v, want a *ValidationError", what, err)
		return
	}
	if !errors.Is(err, eventstore.ErrInvalidInput) {
		t.Errorf("%s: errors.Is(%v, ErrInvalidInput) = false", what, err)
	}
	if diff := cmp.Diff(want, ve, cmpopts.IgnoreFields(eventstore.ValidationError{}, "Reason")); diff != "" {
		t.Errorf("%s: ValidationError mismatch (-want +got):\n%s", what, diff)
	}
	if ve.Reason == "" {
		t.Errorf("%s: ValidationError has no reason", what)
	}
}

func TestValidateAppend(t *testing.T) {
	ok := eventstore.Event{Type: "t"}
	long := strings.Repeat("x", eventstore.MaxIDLength)
	bad := func(field string, index int) *eventstore.ValidationError {
		return &eventstore.ValidationError{Field: field, Index: index}
	}
	for _, c := range []struct {
		name     string
		stream   string
		expected eventstore.ExpectedVersion
		events   []eventstore.Event
		max      int
		want     *eventstore.ValidationError
	}{
		{"Valid", "s", eventstore.Any, []eventstore.Event{ok, {ID: "a", Type: "t", Data: []byte{0, 0xff}, Metadata: map[string]string{"k": ""}}}, 0, nil},
		{"EmptyBatch", "s", eventstore.NoStream, nil, 0, nil},
		{"LongestNames", long, eventstore.Exact(5), []eventstore.Event{{ID: long, Type: long}}, 0, nil},
		{"AtSizeLimit", "s", eventstore.Any, []eventstore.Event{{Type: "t", Data: make([]byte, 8), Metadata: map[string]string{"ab": "cd"}}}, 12, nil},
		{"EmptyStreamID", "", eventstore.Any, []eventstore.Event{ok}, 0, bad("stream ID", -1)},
		{"StreamIDTooLong", long + "x", eventstore.Any, []eventstore.Event{ok}, 0, bad("stream ID", -1)},
		{"StreamIDInvalidUTF8", "\xc3", eventstore.Any, []eventstore.Event{ok}, 0, bad("stream ID", -1)},
		{"StreamIDNUL", "a\x00", eventstore.Any, []eventstore.Event{ok}, 0, bad("stream ID", -1)},
		{"AllStreams", eventstore.AllStreams, eventstore.Any, []eventstore.Event{ok}, 0, bad("stream ID", -1)},
		{"ExpectedVersionUndefined", "s", eventstore.ExpectedVersion(-3), []eventstore.Event{ok}, 0, bad("expected version", -1)},
		{"ExpectedVersionTooLarge", "s", eventstore.Exact(1 << 63), nil, 0, bad("expected version", -1)},
		{"BatchTooLarge", "s", eventstore.Any, make([]eventstore.Event, eventstore.MaxBatchSize+1), 0, bad("batch", -1)},
		{"EmptyType", "s", eventstore.Any, []eventstore.Event{ok, {}}, 0, bad("event type", 1)},
		{"TypeTooLong", "s", eventstore.Any, []eventstore.Event{{Type: long + "x"}}, 0, bad("event type", 0)},
		{"TypeNUL", "s", eventstore.Any, []eventstore.Event{ok, ok, {Type: "\x00"}}, 0, bad("event type", 2)},
		{"IDInvalidUTF8", "s", eventstore.Any, []eventstore.Event{{ID: "\xff", Type: "t"}}, 0, bad("event ID", 0)},
		{"IDTooLong", "s", eventstore.Any, []eventstore.Event{{ID: long + "x", Type: "t"}}, 0, bad("event ID", 0)},
		{"DuplicateIDs", "s", eventstore.Any, []eventstore.Event{{ID: "a", Type: "t"}, {ID: "b", Type: "t"}, {ID: "a", Type: "t"}}, 0, bad("event ID", 2)},
		{"MetadataEmptyKey", "s", eventstore.Any, []eventstore.Event{{Type: "t", Metadata: map[string]string{"": "v"}}}, 0, bad("metadata", 0)},
		{"MetadataKeyInvalidUTF8", "s", eventstore.Any, []eventstore.Event{{Type: "t", Metadata: map[string]string{"\xff": "v"}}}, 0, bad("metadata", 0)},
		{"MetadataValueInvalidUTF8", "s", eventstore.Any, []eventstore.Event{{Type: "t", Metadata: map[string]string{"k": "\xff"}}}, 0, bad("metadata", 0)},
		{"MetadataValueNUL", "s", eventstore.Any, []eventstore.Event{{Type: "t", Metadata: map[string]string{"k": "\x00"}}}, 0, bad("metadata", 0)},
		{"OverDefaultSize", "s", eventstore.Any, []eventstore.Event{{Type: "t", Data: make([]byte, eventstore.DefaultMaxEventSize+1)}}, 0, bad("event size", 0)},
		{"OverGivenSize", "s", eventstore.Any, []eventstore.Event{ok, {Type: "t", Data: make([]byte, 8), Metadata: map[string]string{"ab": "cde"}}}, 12, bad("event size", 1)},
		{"TimeBeforeMin", "s", eventstore.Any, []eventstore.Event{ok, {Type: "t", Time: eventstore.MinTime.Add(-time.Nanosecond)}}, 0, bad("event time", 1)},
		{"TimeAfterMax", "s", eventstore.Any, []eventstore.Event{{Type: "t", Time: time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)}}, 0, bad("event time", 0)},
		{"TimeAtBounds", "s", eventstore.Any, []eventstore.Event{{Type: "t", Time: eventstore.MinTime}, {Type: "t", Time: eventstore.MaxTime}}, 0, nil},
		{"AtDefaultSize", "s", eventstore.Any, []eventstore.Event{{Type: "t", Data: make([]byte, eventstore.DefaultMaxEventSize)}}, -1, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantInvalid(t, "ValidateAppend", validate.Append(c.stream, c.expected, c.events, c.max), c.want)
		})
	}
}

func TestValidateReadOptions(t *testing.T) {
	type mf = eventstore.MetadataFilter
	bad := &eventstore.ValidationError{Field: "filter", Index: -1}
	for _, c := range []struct {
		name   string
		stream string
		filter eventstore.Filter
		want   *eventstore.ValidationError
	}{
		{"Empty", "s", eventstore.Filter{}, nil},
		{"AllStreams", eventstore.AllStreams, eventstore.Filter{StreamPrefix: "acc-"}, nil},
		{"Full", "s", eventstore.Filter{Types: []string{"a", "b"}, Metadata: []mf{
			eventstore.MetadataEquals("k", ""), eventstore.MetadataOneOf("k", "a", "b"), eventstore.MetadataHasPrefix("k", "p"),
		}}, nil},
		{"EmptyStreamID", "", eventstore.Filter{}, &eventstore.ValidationError{Field: "stream ID", Index: -1}},
		{"StreamPrefixOnStream", "s", eventstore.Filter{StreamPrefix: "a"}, bad},
		{"StreamPrefixInvalidUTF8", eventstore.AllStreams, eventstore.Filter{StreamPrefix: "\xff"}, bad},
		{"StreamPrefixNUL", eventstore.AllStreams, eventstore.Filter{StreamPrefix: "a\x00"}, bad},
		{"EmptyType", "s", eventstore.Filter{Types: []string{"a", ""}}, &eventstore.ValidationError{Field: "filter event type", Index: -1}},
		{"MetadataEmptyKey", "s", eventstore.Filter{Metadata: []mf{eventstore.MetadataEquals("", "v")}}, bad},
		{"MetadataEqNoValue", "s", eventstore.Filter{Metadata: []mf{{Key: "k", Op: eventstore.MetadataEq}}}, bad},
		{"MetadataPrefixTwoValues", "s", eventstore.Filter{Metadata: []mf{{Key: "k", Op: eventstore.MetadataPrefix, Values: []string{"a", "b"}}}}, bad},
		{"MetadataInNoValue", "s", eventstore.Filter{Metadata: []mf{eventstore.MetadataOneOf("k")}}, bad},
		{"MetadataZeroOp", "s", eventstore.Filter{Metadata: []mf{{Key: "k", Values: []string{"v"}}}}, bad},
		{"MetadataKeyNUL", "s", eventstore.Filter{Metadata: []mf{eventstore.MetadataEquals("k\x00", "v")}}, bad},
		{"MetadataKeyInvalidUTF8", "s", eventstore.Filter{Metadata: []mf{eventstore.MetadataHasPrefix("\xff", "v")}}, bad},
		{"MetadataValueNUL", "s", eventstore.Filter{Metadata: []mf{eventstore.MetadataEquals("k", "a\x00b")}}, bad},
		{"MetadataValueInvalidUTF8", "s", eventstore.Filter{Metadata: []mf{eventstore.MetadataOneOf("k", "a", "\xff")}}, bad},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantInvalid(t, "ValidateReadOptions", validate.Filter(c.stream, c.filter), c.want)
		})
	}
}

func TestValidateSnapshot(t *testing.T) {
	for _, c := range []struct {
		name string
		snap eventstore.Snapshot
		max  int
		want *eventstore.ValidationError
	}{
		{"Minimal", eventstore.Snapshot{StreamID: "s"}, 0, nil},
		{"Full", eventstore.Snapshot{StreamID: eventstore.AllStreams, Name: "n", Version: 1<<63 - 1, Schema: "v1", Data: []byte("1234")}, 4, nil},
		{"EmptyStreamID", eventstore.Snapshot{}, 0, &eventstore.ValidationError{Field: "stream ID", Index: -1}},
		{"NameNUL", eventstore.Snapshot{StreamID: "s", Name: "\x00"}, 0, &eventstore.ValidationError{Field: "snapshot name", Index: -1}},
		{"SchemaInvalidUTF8", eventstore.Snapshot{StreamID: "s", Schema: "\xff"}, 0, &eventstore.ValidationError{Field: "snapshot schema", Index: -1}},
		{"TooLarge", eventstore.Snapshot{StreamID: "s", Data: []byte("12345")}, 4, &eventstore.ValidationError{Field: "snapshot size", Index: -1}},
		{"VersionTooLarge", eventstore.Snapshot{StreamID: "s", Version: 1 << 63}, 0, &eventstore.ValidationError{Field: "snapshot version", Index: -1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantInvalid(t, "ValidateSnapshot", validate.Snapshot(c.snap, c.max), c.want)
		})
	}
}

func TestValidateStreamID(t *testing.T) {
	for id, valid := range map[string]bool{"s": true, eventstore.AllStreams: true, "ünï": true, "": false, "\xff": false, "a\x00b": false} {
		err := validate.StreamID(id)
		if (err == nil) != valid {
			t.Errorf("ValidateStreamID(%q) = %v, want valid %v", id, err, valid)
		}
		if err != nil && !errors.Is(err, eventstore.ErrInvalidInput) {
			t.Errorf("ValidateStreamID(%q) = %v, want ErrInvalidInput", id, err)
		}
	}
}

func TestCheckContext(t *testing.T) {
	if err := validate.Context(context.Background()); err != nil {
		t.Errorf("CheckContext(live) = %v, want nil", err)
	}
	var nilCtx context.Context
	wantInvalid(t, "CheckContext(nil)", validate.Context(nilCtx), &eventstore.ValidationError{Field: "context", Index: -1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := validate.Context(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("CheckContext(cancelled) = %v, want context.Canceled", err)
	}
}

func TestFilterAcceptsTheConstructors(t *testing.T) {
	f := eventstore.Filter{Metadata: []eventstore.MetadataFilter{
		eventstore.MetadataEquals("k", "v"),
		eventstore.MetadataOneOf("k", "a", "b"),
		eventstore.MetadataHasPrefix("k", "p"),
	}}
	if err := validate.Filter("s", f); err != nil {
		t.Errorf("filters built by the constructors are invalid: %v", err)
	}
}
