package testsuite

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
)

// lifecycleTests are the cases of eventstore.Lifecycle (issue 12):
// deletion with a tombstone, truncation, snapshot deletion, and positions
// and versions never given out again.
func lifecycleTests(f Features) []test {
	if f.NoLifecycle {
		return []test{{"Unsupported", leaf(testLifecycleUnsupported)}}
	}
	tests := []test{
		{"Delete/RemovesEventsAndSnapshots", leaf(func(t *testing.T, s eventstore.Store) { testDeleteRemoves(t, s, f) })},
		{"Delete/ExpectedVersionConflict", leaf(testDeleteConflict)},
		{"Delete/MissingStream", leaf(testDeleteMissing)},
		{"Delete/Again", leaf(testDeleteAgain)},
		{"Delete/AppendRefused", leaf(testDeleteAppendRefused)},
		{"Delete/IDRetryRefused", leaf(testDeleteIDRetry)},
		{"Delete/SnapshotRefused", leaf(testDeleteSnapshotRefused)},
		{"Delete/NewestPositionsNotReused", leaf(testDeleteNewestPositions)},
		{"Delete/InvalidInput", leaf(testDeleteInvalid)},
		{"Delete/StreamHandle", leaf(testDeleteHandle)},
		{"Truncate/KeepsTail", leaf(testTruncateKeepsTail)},
		{"Truncate/KeepsLastEvent", leaf(testTruncateKeepsLast)},
		{"Truncate/PastHead", leaf(testTruncatePastHead)},
		{"Truncate/LowerDoesNothing", leaf(testTruncateLower)},
		{"Truncate/Refused", leaf(testTruncateRefused)},
		{"Truncate/KeepsSnapshots", leaf(testTruncateKeepsSnapshots)},
		{"Truncate/NewestPositionsNotReused", leaf(testTruncateNewestPositions)},
		{"DeleteSnapshots/One", leaf(testDeleteSnapshotsOne)},
		{"DeleteSnapshots/All", leaf(testDeleteSnapshotsAll)},
		{"Watch/AcrossDeletion", leaf(testWatchAcrossDeletion)},
		{"Watch/CatchUpSkipsRemoved", leaf(testWatchCatchUpSkipsRemoved)},
		{"Watch/DeletedStream", leaf(testWatchDeletedStream)},
		{"Delete/ConcurrentWithAppends", leaf(testDeleteConcurrent)},
	}
	if f.NewPair != nil {
		tests = append(tests, test{"Shared/DeletedForOtherStore", func(t *testing.T, _ Factory) {
			a, b := f.NewPair(t)
			testDeleteSharedStores(t, a, b)
		}})
	}
	return tests
}

// testDeleteSharedStores: a deletion made through one store holds for
// another on the same database (another process): it refuses appends to
// the deleted stream, and its positions go on above the deleted ones.
func testDeleteSharedStores(t *testing.T, a, b eventstore.Store) {
	mustAppend(t, a, "x", eventstore.NoStream, numbered(2, "t", "x")...)
	top := mustAppend(t, b, "y", eventstore.NoStream, numbered(2, "t", "y")...).Position
	mustDelete(t, a, "y", eventstore.Exact(2))
	_, err := b.Append(ctxTimeout(t), "y", eventstore.Any, ev("t", "again"))
	wantDeleted(t, "append through the other store", err, "y", 2)
	wantInfo(t, b, "y", 2, 0, true)
	if res := mustAppend(t, b, "z", eventstore.NoStream, ev("t", "z")); res.Position <= top {
		t.Errorf("append through the other store after the deletion: position %d, want above %d", res.Position, top)
	}
	if got := readAll(t, b, eventstore.AllStreams, eventstore.ReadOptions{}); len(got) != 3 {
		t.Errorf("the other store reads %d events, want 3 (x's 2, z's 1)", len(got))
	}
}

// lc returns s's Lifecycle, failing the test without one.
func lc(t *testing.T, s eventstore.Store) eventstore.Lifecycle {
	t.Helper()
	l, ok := s.(eventstore.Lifecycle)
	if !ok {
		t.Fatalf("%T does not implement eventstore.Lifecycle; declare Features.NoLifecycle", s)
	}
	return l
}

func mustDelete(t *testing.T, s eventstore.Store, stream string, expected eventstore.ExpectedVersion) {
	t.Helper()
	if err := lc(t, s).DeleteStream(ctxTimeout(t), stream, expected); err != nil {
		t.Fatalf("DeleteStream(%q, %s): %v", stream, expected, err)
	}
}

func mustTruncate(t *testing.T, s eventstore.Store, stream string, before uint64) {
	t.Helper()
	if err := lc(t, s).TruncateStream(ctxTimeout(t), stream, before); err != nil {
		t.Fatalf("TruncateStream(%q, %d): %v", stream, before, err)
	}
}

// wantInfo checks a stream's Version, Count and Deleted.
func wantInfo(t *testing.T, s eventstore.Store, stream string, version, count uint64, deleted bool) eventstore.StreamInfo {
	t.Helper()
	got := info(t, s, stream)
	if got.Version != version || got.Count != count || got.Deleted != deleted {
		t.Errorf("Info(%q): version %d, count %d, deleted %v; want %d, %d, %v", stream, got.Version, got.Count, got.Deleted, version, count, deleted)
	}
	return got
}

func wantDeleted(t *testing.T, what string, err error, stream string, version uint64) {
	t.Helper()
	wantErr(t, what, err, eventstore.ErrStreamDeleted)
	var de *eventstore.StreamDeletedError
	if !errors.As(err, &de) {
		t.Errorf("%s: error %v (%T), want a *StreamDeletedError", what, err, err)
		return
	}
	if de.StreamID != stream || de.Version != version {
		t.Errorf("%s: StreamDeletedError{%q, %d}, want {%q, %d}", what, de.StreamID, de.Version, stream, version)
	}
}

func testLifecycleUnsupported(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, ev("t", "1"))
	h := eventstore.NewStream(s, "a")
	ctx := ctxTimeout(t)
	wantErr(t, "Delete", h.Delete(ctx, eventstore.Any), errors.ErrUnsupported)
	wantErr(t, "Truncate", h.Truncate(ctx, 1), errors.ErrUnsupported)
	wantErr(t, "DeleteSnapshots", h.DeleteSnapshots(ctx, ""), errors.ErrUnsupported)
	wantVersion(t, s, "a", 1)
}

func testDeleteRemoves(t *testing.T, s eventstore.Store, f Features) {
	mustAppend(t, s, "a", eventstore.NoStream, evID("a1", "t"), ev("t", "a2"), ev("t", "a3"))
	mustAppend(t, s, "b", eventstore.NoStream, ev("t", "b1"))
	save(t, s, eventstore.Snapshot{StreamID: "a", Version: 3, Data: []byte("state")})
	save(t, s, eventstore.Snapshot{StreamID: "a", Name: "other", Version: 2})
	save(t, s, eventstore.Snapshot{StreamID: "b", Version: 1})
	mustDelete(t, s, "a", eventstore.Exact(3))
	if got := readAll(t, s, "a", eventstore.ReadOptions{}); len(got) != 0 {
		t.Errorf("Read of the deleted stream: %d events, want none: %+v", len(got), got)
	}
	if got := readAll(t, s, "a", eventstore.ReadOptions{Backwards: true}); len(got) != 0 {
		t.Errorf("backward Read of the deleted stream: %d events, want none", len(got))
	}
	all := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	wantEvents(t, "Read(AllStreams) after the deletion", recorded("b", 1, ev("t", "b1")), all)
	for _, name := range []string{"", "other"} {
		_, err := s.LoadSnapshot(ctxTimeout(t), "a", name)
		wantErr(t, "LoadSnapshot of a deleted stream's snapshot "+name, err, eventstore.ErrNotFound)
	}
	load(t, s, "b", "") // another stream's snapshot stays
	got := wantInfo(t, s, "a", 3, 0, true)
	if got.Position != 0 || !got.LastTime.IsZero() {
		t.Errorf("Info of the deleted stream: position %d, last time %v; want 0 and zero", got.Position, got.LastTime)
	}
	if c := info(t, s, eventstore.AllStreams).Count; c != 1 {
		t.Errorf("Info(AllStreams).Count after the deletion: %d, want 1", c)
	}
	if !f.NoFindEvent {
		_, err := s.FindEvent(ctxTimeout(t), "a1")
		wantErr(t, "FindEvent of a deleted event", err, eventstore.ErrNotFound)
	}
}

func testDeleteConflict(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, numbered(3, "t", "a")...)
	for _, exp := range []eventstore.ExpectedVersion{eventstore.Exact(2), eventstore.NoStream, eventstore.Exact(4)} {
		err := lc(t, s).DeleteStream(ctxTimeout(t), "a", exp)
		wantErr(t, "DeleteStream with expected "+exp.String(), err, eventstore.ErrConcurrency)
		var ce *eventstore.ConflictError
		if errors.As(err, &ce) && ce.Actual != 3 {
			t.Errorf("ConflictError.Actual %d, want 3", ce.Actual)
		}
	}
	wantInfo(t, s, "a", 3, 3, false)
	if got := readAll(t, s, "a", eventstore.ReadOptions{}); len(got) != 3 {
		t.Errorf("after refused deletions: %d events, want 3", len(got))
	}
}

func testDeleteMissing(t *testing.T, s eventstore.Store) {
	wantErr(t, "DeleteStream of a stream without events", lc(t, s).DeleteStream(ctxTimeout(t), "nope", eventstore.Any), eventstore.ErrNotFound)
	wantErr(t, "TruncateStream of a stream without events", lc(t, s).TruncateStream(ctxTimeout(t), "nope", 1), eventstore.ErrNotFound)
	// Deleting snapshots that do not exist is not an error.
	if err := lc(t, s).DeleteSnapshots(ctxTimeout(t), "nope", ""); err != nil {
		t.Errorf("DeleteSnapshots of a stream without snapshots: %v", err)
	}
	wantInfo(t, s, "nope", 0, 0, false)
}

func testDeleteAgain(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, numbered(2, "t", "a")...)
	mustDelete(t, s, "a", eventstore.Any)
	mustDelete(t, s, "a", eventstore.Any)
	mustDelete(t, s, "a", eventstore.Exact(2))
	mustDelete(t, s, "a", eventstore.StreamExists)
	wantErr(t, "DeleteStream of a deleted stream with a wrong expectation", lc(t, s).DeleteStream(ctxTimeout(t), "a", eventstore.Exact(1)), eventstore.ErrConcurrency)
	wantInfo(t, s, "a", 2, 0, true)
}

func testDeleteAppendRefused(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, numbered(3, "t", "a")...)
	mustAppend(t, s, "b", eventstore.NoStream, ev("t", "b1"))
	mustDelete(t, s, "a", eventstore.Any)
	before := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	for _, exp := range []eventstore.ExpectedVersion{eventstore.Any, eventstore.NoStream, eventstore.Exact(3), eventstore.StreamExists} {
		_, err := s.Append(ctxTimeout(t), "a", exp, ev("t", "again"))
		wantDeleted(t, "Append to a deleted stream, expected "+exp.String(), err, "a", 3)
		_, err = s.Append(ctxTimeout(t), "a", exp)
		wantDeleted(t, "empty Append to a deleted stream, expected "+exp.String(), err, "a", 3)
	}
	wantErr(t, "TruncateStream of a deleted stream", lc(t, s).TruncateStream(ctxTimeout(t), "a", 1), eventstore.ErrStreamDeleted)
	wantEvents(t, "the store after refused appends", before, readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{}))
	wantInfo(t, s, "a", 3, 0, true)
}

// testDeleteIDRetry: a retry of a batch stored in a stream deleted since
// is refused, not taken for a duplicate; the IDs went with the events, so
// another stream may use them.
func testDeleteIDRetry(t *testing.T, s eventstore.Store) {
	batch := []eventstore.Event{evID("x1", "t"), evID("x2", "t")}
	mustAppend(t, s, "a", eventstore.NoStream, batch...)
	mustDelete(t, s, "a", eventstore.Exact(2))
	res, err := s.Append(ctxTimeout(t), "a", eventstore.NoStream, batch...)
	wantDeleted(t, "a retry of a deleted stream's batch", err, "a", 2)
	if len(res.Duplicates) != 0 {
		t.Errorf("a retry of a deleted stream's batch reported duplicates %+v", res.Duplicates)
	}
	res = mustAppend(t, s, "c", eventstore.NoStream, batch[0])
	if res.Appended != 1 || len(res.Duplicates) != 0 {
		t.Errorf("an ID of a deleted event appended to another stream: %+v, want it stored as new", res)
	}
	wantInfo(t, s, "a", 2, 0, true)
}

// testDeleteSnapshotRefused: a deleted stream takes no snapshot, as it
// takes no event. A snapshot saved after the deletion (a repository's
// save that follows its append, racing the deletion; a snapshot job that
// loaded the stream before) would keep the deleted stream's state in the
// store after the deletion that removed it was acknowledged, and a load
// would answer that state.
func testDeleteSnapshotRefused(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, numbered(2, "t", "a")...)
	mustDelete(t, s, "a", eventstore.Exact(2))
	for _, v := range []uint64{2, 1, 0} {
		err := s.SaveSnapshot(ctxTimeout(t), eventstore.Snapshot{StreamID: "a", Version: v, Data: []byte("state")})
		wantDeleted(t, fmt.Sprintf("SaveSnapshot at version %d of a deleted stream", v), err, "a", 2)
	}
	_, err := s.LoadSnapshot(ctxTimeout(t), "a", "")
	wantErr(t, "LoadSnapshot of a deleted stream", err, eventstore.ErrNotFound)
	// Another stream's snapshots are still taken.
	mustAppend(t, s, "b", eventstore.NoStream, ev("t", "b"))
	if err := s.SaveSnapshot(ctxTimeout(t), eventstore.Snapshot{StreamID: "b", Version: 1}); err != nil {
		t.Errorf("SaveSnapshot of a live stream: %v", err)
	}
}

// testDeleteNewestPositions is issue 12's user trial: deleting the stream
// that holds the newest events, then appending elsewhere, must give a
// position above every position ever handed out, and leave Info and
// expected versions right.
func testDeleteNewestPositions(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "old", eventstore.NoStream, numbered(3, "t", "old")...)
	res := mustAppend(t, s, "new", eventstore.NoStream, numbered(2, "t", "new")...)
	top := res.Position
	headBefore := info(t, s, eventstore.AllStreams).Position
	mustDelete(t, s, "new", eventstore.Exact(2))
	if h := info(t, s, eventstore.AllStreams).Position; h < headBefore {
		t.Errorf("Info(AllStreams).Position fell from %d to %d after the deletion: a position would be given out again", headBefore, h)
	}
	next := mustAppend(t, s, "other", eventstore.NoStream, ev("t", "other-1"))
	if next.Position <= top {
		t.Errorf("append after deleting the newest events: position %d, want above %d (every position ever handed out)", next.Position, top)
	}
	all := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	checkPositions(t, all, false)
	if len(all) != 4 || all[3].Position != next.Position {
		t.Errorf("Read(AllStreams) after: %+v, want old's 3 events and other's", all)
	}
	wantInfo(t, s, "new", 2, 0, true)
	wantInfo(t, s, "other", 1, 1, false)
	wantInfo(t, s, "old", 3, 3, false)
	mustAppend(t, s, "old", eventstore.Exact(3), ev("t", "old-4"))
	ai := info(t, s, eventstore.AllStreams)
	if ai.Count != 5 || ai.Position <= next.Position {
		t.Errorf("Info(AllStreams): count %d, position %d; want 5 and above %d", ai.Count, ai.Position, next.Position)
	}
	// The store's last time is its last stored event's, not a deleted
	// one's.
	mustDelete(t, s, "old", eventstore.Exact(4))
	all = readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	if ai = info(t, s, eventstore.AllStreams); ai.Count != 1 || !ai.LastTime.Equal(all[0].Time) {
		t.Errorf("Info(AllStreams) after deleting the newest: count %d, last time %v; want 1 and %v", ai.Count, ai.LastTime, all[0].Time)
	}
}

func testDeleteInvalid(t *testing.T, s eventstore.Store) {
	l := lc(t, s)
	ctx := ctxTimeout(t)
	wantValidation(t, "DeleteStream(AllStreams)", l.DeleteStream(ctx, eventstore.AllStreams, eventstore.Any))
	wantValidation(t, "DeleteStream(\"\")", l.DeleteStream(ctx, "", eventstore.Any))
	wantValidation(t, "DeleteStream with expected -7", l.DeleteStream(ctx, "a", eventstore.ExpectedVersion(-7)))
	wantValidation(t, "TruncateStream(AllStreams)", l.TruncateStream(ctx, eventstore.AllStreams, 2))
	wantValidation(t, "TruncateStream before 0", l.TruncateStream(ctx, "a", 0))
	wantValidation(t, "DeleteSnapshots(\"\")", l.DeleteSnapshots(ctx, "", ""))
}

func testDeleteHandle(t *testing.T, s eventstore.Store) {
	h := eventstore.NewStream(s, "h")
	ctx := ctxTimeout(t)
	if _, err := h.Append(ctx, eventstore.NoStream, numbered(4, "t", "h")...); err != nil {
		t.Fatal(err)
	}
	if err := h.SaveSnapshot(ctx, "n", 4, "", []byte("s")); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteSnapshots(ctx, "n"); err != nil {
		t.Fatalf("Stream.DeleteSnapshots: %v", err)
	}
	if err := h.Truncate(ctx, 3); err != nil {
		t.Fatalf("Stream.Truncate: %v", err)
	}
	wantInfo(t, s, "h", 4, 2, false)
	if err := h.Delete(ctx, eventstore.Exact(4)); err != nil {
		t.Fatalf("Stream.Delete: %v", err)
	}
	wantInfo(t, s, "h", 4, 0, true)
}

func testTruncateKeepsTail(t *testing.T, s eventstore.Store) {
	evs := numbered(5, "t", "a")
	mustAppend(t, s, "a", eventstore.NoStream, evs...)
	mustAppend(t, s, "b", eventstore.NoStream, ev("t", "b1"))
	mustTruncate(t, s, "a", 3)
	wantEvents(t, "Read after TruncateStream(3)", recorded("a", 3, evs[2:]...), readAll(t, s, "a", eventstore.ReadOptions{}))
	wantEvents(t, "Read After(1) after TruncateStream(3)", recorded("a", 3, evs[2:]...), readAll(t, s, "a", eventstore.ReadOptions{From: eventstore.After(1)}))
	if got := versions(readAll(t, s, "a", eventstore.ReadOptions{Backwards: true})); !equalU(got, span(5, 3)) {
		t.Errorf("backward Read after TruncateStream(3): versions %v, want %v", got, span(5, 3))
	}
	got := wantInfo(t, s, "a", 5, 3, false)
	if got.Position == 0 {
		t.Errorf("Info of the truncated stream: position 0")
	}
	res := mustAppend(t, s, "a", eventstore.Exact(5), ev("t", "a-6"))
	if res.Version != 6 {
		t.Errorf("append after the truncation: version %d, want 6", res.Version)
	}
	if got := versions(readAll(t, s, "a", eventstore.ReadOptions{})); !equalU(got, span(3, 6)) {
		t.Errorf("Read after the append: versions %v, want %v", got, span(3, 6))
	}
	all := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	if len(all) != 5 {
		t.Errorf("Read(AllStreams): %d events, want 5 (a's 3 to 6 and b's)", len(all))
	}
	if c := info(t, s, eventstore.AllStreams).Count; c != 5 {
		t.Errorf("Info(AllStreams).Count: %d, want 5", c)
	}
}

func equalU(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// testTruncateKeepsLast: a truncation keeps the stream's last event, so
// that a truncated stream is never empty (deletion empties a stream).
func testTruncateKeepsLast(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, numbered(3, "t", "a")...)
	wantValidation(t, "TruncateStream before version + 1", lc(t, s).TruncateStream(ctxTimeout(t), "a", 4))
	wantInfo(t, s, "a", 3, 3, false)
	mustTruncate(t, s, "a", 3)
	if got := versions(readAll(t, s, "a", eventstore.ReadOptions{})); !equalU(got, []uint64{3}) {
		t.Errorf("after TruncateStream(3) of 3 events: versions %v, want [3]", got)
	}
	wantInfo(t, s, "a", 3, 1, false)
	_, err := s.Append(ctxTimeout(t), "a", eventstore.NoStream, ev("t", "x"))
	wantErr(t, "Append(NoStream) to a truncated stream", err, eventstore.ErrConcurrency)
	res := mustAppend(t, s, "a", eventstore.Exact(3), ev("t", "a-4"))
	if res.Version != 4 {
		t.Errorf("append after the truncation: version %d, want 4", res.Version)
	}
	wantInfo(t, s, "a", 4, 2, false)
}

func testTruncatePastHead(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, numbered(3, "t", "a")...)
	wantValidation(t, "TruncateStream past the version", lc(t, s).TruncateStream(ctxTimeout(t), "a", 5))
	wantInfo(t, s, "a", 3, 3, false)
}

func testTruncateLower(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, numbered(5, "t", "a")...)
	mustTruncate(t, s, "a", 4)
	mustTruncate(t, s, "a", 2)
	mustTruncate(t, s, "a", 1)
	if got := versions(readAll(t, s, "a", eventstore.ReadOptions{})); !equalU(got, span(4, 5)) {
		t.Errorf("after truncating before 4, then 2: versions %v, want %v", got, span(4, 5))
	}
	wantInfo(t, s, "a", 5, 2, false)
}

func testTruncateRefused(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, numbered(2, "t", "a")...)
	mustDelete(t, s, "a", eventstore.Any)
	err := lc(t, s).TruncateStream(ctxTimeout(t), "a", 2)
	wantDeleted(t, "TruncateStream of a deleted stream", err, "a", 2)
}

func testTruncateKeepsSnapshots(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, numbered(5, "t", "a")...)
	snap := eventstore.Snapshot{StreamID: "a", Version: 4, Data: []byte("at 4")}
	save(t, s, snap)
	mustTruncate(t, s, "a", 5)
	wantSnapshot(t, s, "a", "", eventstore.Snapshot{StreamID: "a", Name: eventstore.DefaultSnapshotName, Version: 4, Data: []byte("at 4")})
	if got := versions(readAll(t, s, "a", eventstore.ReadOptions{From: eventstore.After(4)})); !equalU(got, []uint64{5}) {
		t.Errorf("Read after the snapshot: versions %v, want [5]", got)
	}
}

func testTruncateNewestPositions(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "old", eventstore.NoStream, numbered(2, "t", "old")...)
	res := mustAppend(t, s, "new", eventstore.NoStream, numbered(3, "t", "new")...)
	mustTruncate(t, s, "new", 3)
	next := mustAppend(t, s, "other", eventstore.NoStream, ev("t", "o"))
	if next.Position <= res.Position {
		t.Errorf("append after truncating the newest stream: position %d, want above %d", next.Position, res.Position)
	}
	res = mustAppend(t, s, "new", eventstore.Exact(3), ev("t", "new-4"))
	if res.Version != 4 || res.Position <= next.Position {
		t.Errorf("append to the truncated stream: version %d, position %d; want 4 and above %d", res.Version, res.Position, next.Position)
	}
}

func testDeleteSnapshotsOne(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, numbered(2, "t", "a")...)
	save(t, s, eventstore.Snapshot{StreamID: "a", Name: "x", Version: 1})
	save(t, s, eventstore.Snapshot{StreamID: "a", Name: "y", Version: 2})
	if err := lc(t, s).DeleteSnapshots(ctxTimeout(t), "a", "x"); err != nil {
		t.Fatalf("DeleteSnapshots(a, x): %v", err)
	}
	_, err := s.LoadSnapshot(ctxTimeout(t), "a", "x")
	wantErr(t, "LoadSnapshot of the deleted snapshot", err, eventstore.ErrNotFound)
	load(t, s, "a", "y")
	wantInfo(t, s, "a", 2, 2, false) // the events stay
}

func testDeleteSnapshotsAll(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, numbered(2, "t", "a")...)
	mustAppend(t, s, "ab", eventstore.NoStream, numbered(2, "t", "ab")...)
	for _, name := range []string{"", "x", "y"} {
		save(t, s, eventstore.Snapshot{StreamID: "a", Name: name, Version: 2})
	}
	save(t, s, eventstore.Snapshot{StreamID: "ab", Version: 2})
	save(t, s, eventstore.Snapshot{StreamID: eventstore.AllStreams, Version: 1})
	if err := lc(t, s).DeleteSnapshots(ctxTimeout(t), "a", ""); err != nil {
		t.Fatalf("DeleteSnapshots(a, \"\"): %v", err)
	}
	for _, name := range []string{"", "x", "y"} {
		_, err := s.LoadSnapshot(ctxTimeout(t), "a", name)
		wantErr(t, "LoadSnapshot(a, "+name+") after deleting all", err, eventstore.ErrNotFound)
	}
	load(t, s, "ab", "")
	load(t, s, eventstore.AllStreams, "")
	if err := lc(t, s).DeleteSnapshots(ctxTimeout(t), eventstore.AllStreams, ""); err != nil {
		t.Fatalf("DeleteSnapshots(AllStreams): %v", err)
	}
	_, err := s.LoadSnapshot(ctxTimeout(t), eventstore.AllStreams, "")
	wantErr(t, "LoadSnapshot(AllStreams) after deleting it", err, eventstore.ErrNotFound)
}

// testWatchAcrossDeletion: watchers of AllStreams (plain and filtered)
// that run while a stream is deleted get every surviving event once, and
// the events appended after the deletion.
func testWatchAcrossDeletion(t *testing.T, s eventstore.Store) {
	all := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{})
	typed := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{Filter: eventstore.Filter{Types: []string{"keep"}}})
	mustAppend(t, s, "a", eventstore.NoStream, ev("keep", "a1"), ev("keep", "a2"))
	mustAppend(t, s, "b", eventstore.NoStream, ev("keep", "b1"), ev("other", "b2"))
	all.next(t, 4)
	typed.next(t, 3)
	mustAppend(t, s, "d", eventstore.NoStream, ev("keep", "d1")) // the newest, deleted before anyone reads it again
	all.next(t, 1)
	typed.next(t, 1)
	mustDelete(t, s, "d", eventstore.Any)
	mustDelete(t, s, "a", eventstore.Any)
	mustAppend(t, s, "c", eventstore.NoStream, ev("keep", "c1"), ev("other", "c2"))
	mustAppend(t, s, "b", eventstore.Exact(2), ev("keep", "b3"))
	got := all.next(t, 3)
	if d := datas(got); len(d) != 3 || d[0] != "c1" || d[1] != "c2" || d[2] != "b3" {
		t.Errorf("watcher across the deletion: got %v, want [c1 c2 b3]", d)
	}
	checkPositions(t, got, false)
	if d := datas(typed.next(t, 2)); d[0] != "c1" || d[1] != "b3" {
		t.Errorf("filtered watcher across the deletion: got %v, want [c1 b3]", d)
	}
	all.stop(t)
	typed.stop(t)
	// A watcher started now catches up with the surviving events only.
	late := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{})
	wantSame(t, "late watcher", readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{}), late.next(t, 5))
	late.stop(t)
}

// testWatchCatchUpSkipsRemoved: a watch that catches up over removed
// positions and versions skips them, then goes live.
func testWatchCatchUpSkipsRemoved(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, ev("t", "a1"))
	mustAppend(t, s, "b", eventstore.NoStream, ev("t", "b1"))
	mustAppend(t, s, "a", eventstore.Exact(1), ev("t", "a2"))
	mustAppend(t, s, "b", eventstore.Exact(1), ev("t", "b2"), ev("t", "b3"))
	mustDelete(t, s, "a", eventstore.Any)
	mustTruncate(t, s, "b", 3)
	w := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{})
	sw := startWatch(t, s, "b", eventstore.WatchOptions{From: eventstore.After(1)})
	if d := datas(w.next(t, 1)); d[0] != "b3" {
		t.Errorf("catch-up over removed events: got %v, want [b3]", d)
	}
	if got := sw.next(t, 1); got[0].Version != 3 {
		t.Errorf("stream watch After(1) of a stream truncated before 3: version %d first, want 3", got[0].Version)
	}
	mustAppend(t, s, "b", eventstore.Exact(3), ev("t", "b4"))
	if d := datas(w.next(t, 1)); d[0] != "b4" {
		t.Errorf("live after the catch-up: got %v, want [b4]", d)
	}
	if got := sw.next(t, 1); got[0].Version != 4 {
		t.Errorf("stream watch live: version %d, want 4", got[0].Version)
	}
	w.stop(t)
	sw.stop(t)
}

// testWatchDeletedStream: a watch of a deleted stream yields nothing and
// ends quietly with its context, from the start or from the end.
func testWatchDeletedStream(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, numbered(2, "t", "a")...)
	mustDelete(t, s, "a", eventstore.Any)
	from := startWatch(t, s, "a", eventstore.WatchOptions{})
	end := startWatch(t, s, "a", eventstore.WatchOptions{From: eventstore.FromEnd()})
	// An append elsewhere wakes them: still nothing.
	mustAppend(t, s, "b", eventstore.NoStream, ev("t", "b1"))
	all := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{})
	all.next(t, 1)
	from.stop(t)
	end.stop(t)
	all.stop(t)
}

// testDeleteConcurrent: deletions racing appends to the same streams. An
// append either lands before the deletion (and is removed with the
// stream) or is refused with ErrStreamDeleted; no position is handed out
// twice; nothing is stored in a deleted stream; the log stays in order.
func testDeleteConcurrent(t *testing.T, s eventstore.Store) {
	const writers, perWriter, streams = 6, 25, 6
	var (
		mu        sync.Mutex
		positions = map[uint64]string{}
	)
	g, ctx := errgroup.WithContext(ctxTimeout(t))
	for w := range writers {
		g.Go(func() error {
			for i := range perWriter {
				stream := fmt.Sprintf("c-%d", (w+i)%streams)
				res, err := s.Append(ctx, stream, eventstore.Any, ev("t", fmt.Sprintf("w%d-%d", w, i)), ev("t", "second"))
				if errors.Is(err, eventstore.ErrStreamDeleted) {
					continue
				}
				if err != nil {
					return fmt.Errorf("append to %s: %w", stream, err)
				}
				mu.Lock()
				other, reused := positions[res.Position]
				positions[res.Position] = stream
				mu.Unlock()
				if reused {
					return fmt.Errorf("position %d handed out twice: to %s and %s", res.Position, other, stream)
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		l := lc(t, s)
		for i := range streams / 2 {
			stream := fmt.Sprintf("c-%d", i)
			for {
				err := l.DeleteStream(ctx, stream, eventstore.Any)
				if errors.Is(err, eventstore.ErrNotFound) {
					runtime.Gosched() // no append has reached it yet
					continue
				}
				if err != nil {
					return fmt.Errorf("delete %s: %w", stream, err)
				}
				break
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i := range streams / 2 {
		stream := fmt.Sprintf("c-%d", i)
		if got := readAll(t, s, stream, eventstore.ReadOptions{}); len(got) != 0 {
			t.Errorf("deleted stream %s holds %d events", stream, len(got))
		}
		if !info(t, s, stream).Deleted {
			t.Errorf("stream %s is not deleted", stream)
		}
	}
	all := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	checkPositions(t, all, false)
	for _, r := range all {
		if len(r.StreamID) > 2 && r.StreamID[2]-'0' < streams/2 {
			t.Errorf("event of deleted stream %s at position %d", r.StreamID, r.Position)
		}
	}
	for i := streams / 2; i < streams; i++ {
		stream := fmt.Sprintf("c-%d", i)
		got := readAll(t, s, stream, eventstore.ReadOptions{})
		if v := info(t, s, stream); v.Count != uint64(len(got)) || v.Version != uint64(len(got)) {
			t.Errorf("stream %s: Info %+v, %d events read", stream, v, len(got))
		}
	}
}
