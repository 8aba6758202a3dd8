package testsuite

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
)

func infoTests() []test {
	return []test{
		{"Stream", leaf(testInfoStream)},
		{"MissingStream", leaf(testInfoMissing)},
		{"AllStreams", leaf(testInfoAll)},
		{"LastTimeSetByStore", leaf(testInfoTimeSet)},
		{"CancelledContext", leaf(testInfoCancelled)},
		{"InvalidInput", leaf(testInfoInvalid)},
	}
}

func testInfoStream(t *testing.T, s eventstore.Store) {
	last := time.Date(2024, 5, 6, 7, 8, 9, 10000, time.UTC)
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"), ev("t", "2"))
	mustAppend(t, s, "other", eventstore.NoStream, ev("t", "x"))
	res := mustAppend(t, s, "s", eventstore.Exact(2), eventstore.Event{Type: "t", Time: last})
	mustAppend(t, s, "other", eventstore.Exact(1), ev("t", "y"))
	got := info(t, s, "s")
	want := eventstore.StreamInfo{StreamID: "s", Version: 3, Position: res.Position, Count: 3, LastTime: last}
	if diff := cmp.Diff(want, got, cmp.Comparer(time.Time.Equal)); diff != "" {
		t.Errorf("Info mismatch (-want +got):\n%s", diff)
	}
}

func testInfoMissing(t *testing.T, s eventstore.Store) {
	for _, id := range []string{"missing", eventstore.AllStreams} {
		got := info(t, s, id)
		if diff := cmp.Diff(eventstore.StreamInfo{StreamID: id}, got); diff != "" {
			t.Errorf("Info(%q) on an empty store mismatch (-want +got):\n%s", id, diff)
		}
	}
	mustAppend(t, s, "present", eventstore.NoStream, ev("t", "1"))
	if diff := cmp.Diff(eventstore.StreamInfo{StreamID: "missing"}, info(t, s, "missing")); diff != "" {
		t.Errorf("Info(missing) mismatch (-want +got):\n%s", diff)
	}
}

func testInfoAll(t *testing.T, s eventstore.Store) {
	last := time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC)
	mustAppend(t, s, "a", eventstore.NoStream, ev("t", "1"), ev("t", "2"))
	mustAppend(t, s, "b", eventstore.NoStream, ev("t", "3"))
	res := mustAppend(t, s, "a", eventstore.Any, eventstore.Event{Type: "t", Time: last})
	got := info(t, s, eventstore.AllStreams)
	// AllStreams has positions, not versions (issue 10).
	want := eventstore.StreamInfo{StreamID: eventstore.AllStreams, Position: res.Position, Count: 4, LastTime: last}
	if diff := cmp.Diff(want, got, cmp.Comparer(time.Time.Equal)); diff != "" {
		t.Errorf("Info(AllStreams) mismatch (-want +got):\n%s", diff)
	}
}

func testInfoTimeSet(t *testing.T, s eventstore.Store) {
	lo := time.Now()
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"))
	hi := time.Now()
	got := info(t, s, "s")
	checkTime(t, "Info(s).LastTime", got.LastTime, lo, hi)
	if read := readAll(t, s, "s", eventstore.ReadOptions{}); len(read) == 1 && !read[0].Time.Equal(got.LastTime) {
		t.Errorf("Info LastTime %v, event read back has Time %v", got.LastTime, read[0].Time)
	}
	checkTime(t, "Info(AllStreams).LastTime", info(t, s, eventstore.AllStreams).LastTime, lo, hi)
}

func testInfoCancelled(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, id := range []string{"s", eventstore.AllStreams} {
		_, err := s.Info(ctx, id)
		wantErr(t, "Info with a cancelled context", err, context.Canceled)
	}
}

func testInfoInvalid(t *testing.T, s eventstore.Store) {
	for _, id := range []string{"", "\xff", "a\x00"} {
		_, err := s.Info(ctxTimeout(t), id)
		wantValidation(t, "Info("+id+")", err)
	}
}
