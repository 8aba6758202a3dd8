package testsuite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
)

func appendTests() []test {
	tests := []test{
		{"ExpectedVersion/Any", leaf(testAppendAny)},
		{"ExpectedVersion/NoStream", leaf(testAppendNoStream)},
		{"ExpectedVersion/StreamExists", leaf(testAppendStreamExists)},
		{"ExpectedVersion/Exact", leaf(testAppendExact)},
		{"ExpectedVersionConflict", leaf(testAppendConflict)},
		{"EmptyBatch", leaf(testAppendEmptyBatch)},
		{"Result", leaf(testAppendResult)},
		{"VersionsContiguous", leaf(testAppendVersionsContiguous)},
		{"PositionsIncreaseAcrossStreams", leaf(testAppendPositions)},
		{"TimeSetByStore", leaf(testAppendTimeSet)},
		{"TimeKept", leaf(testAppendTimeKept)},
		{"TimeFarFromNow", leaf(testAppendTimeRange)},
		{"TimePrecision", leaf(testAppendTimePrecision)},
		{"MetadataRoundTrip", leaf(testAppendMetadata)},
		{"ContextMetadata", leaf(testAppendContextMetadata)},
		{"DataRoundTrip", testAppendData},
		{"LargeBatch", leaf(testAppendLargeBatch)},
		{"AwkwardStreamIDs", leaf(testAppendStreamIDs)},
		{"ConcurrentSameExpectedVersion", leaf(testAppendRace)},
		{"ConcurrentResults", leaf(testAppendConcurrentResults)},
		{"CancelledContext", leaf(testAppendCancelled)},
		{"ContextEndsDuringAppend", leaf(testAppendContextEnds)},
		{"InvalidInput", testAppendInvalid},
		{"InvalidEventMidBatchWritesNothing", leaf(testAppendInvalidMidBatch)},
	}
	return append(tests, idempotencyTests()...)
}

func testAppendAny(t *testing.T, s eventstore.Store) {
	var want uint64
	for i, n := range []int{2, 1, 3} {
		res := mustAppend(t, s, "s", eventstore.Any, numbered(n, "t", fmt.Sprint(i))...)
		want += uint64(n)
		if res.Version != want {
			t.Errorf("append %d with Any: version %d, want %d", i, res.Version, want)
		}
	}
	wantVersion(t, s, "s", 6)
}

func testAppendNoStream(t *testing.T, s eventstore.Store) {
	res := mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"))
	if res.Version != 1 {
		t.Errorf("first append with NoStream: version %d, want 1", res.Version)
	}
	_, err := s.Append(ctxTimeout(t), "s", eventstore.NoStream, ev("t", "2"))
	wantConflict(t, err, "s", eventstore.NoStream, 1)
	// Exact(0) is NoStream.
	_, err = s.Append(ctxTimeout(t), "s", eventstore.Exact(0), ev("t", "2"))
	wantConflict(t, err, "s", eventstore.NoStream, 1)
	wantVersion(t, s, "s", 1)
	// A stream is independent of the others.
	mustAppend(t, s, "other", eventstore.NoStream, ev("t", "1"))
}

func testAppendStreamExists(t *testing.T, s eventstore.Store) {
	_, err := s.Append(ctxTimeout(t), "s", eventstore.StreamExists, ev("t", "1"))
	wantConflict(t, err, "s", eventstore.StreamExists, 0)
	wantVersion(t, s, "s", 0)
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"))
	res := mustAppend(t, s, "s", eventstore.StreamExists, ev("t", "2"), ev("t", "3"))
	if res.Version != 3 {
		t.Errorf("append with StreamExists: version %d, want 3", res.Version)
	}
}

func testAppendExact(t *testing.T, s eventstore.Store) {
	_, err := s.Append(ctxTimeout(t), "s", eventstore.Exact(1), ev("t", "1"))
	wantConflict(t, err, "s", eventstore.Exact(1), 0)
	for v := range uint64(4) {
		res := mustAppend(t, s, "s", eventstore.Exact(v), ev("t", fmt.Sprint(v+1)))
		if res.Version != v+1 {
			t.Errorf("append at Exact(%d): version %d, want %d", v, res.Version, v+1)
		}
	}
	// A plain conversion is the same expectation.
	mustAppend(t, s, "s", eventstore.ExpectedVersion(4), ev("t", "5"))
	// Past the end, however far (internal/torture's bad input): a conflict
	// that names both versions, never an overflow.
	for _, stale := range []uint64{3, 6, 100, 1 << 40, 1<<63 - 1} {
		_, err := s.Append(ctxTimeout(t), "s", eventstore.Exact(stale), ev("t", "x"))
		wantConflict(t, err, "s", eventstore.Exact(stale), 5)
	}
	wantEvents(t, "Read", recorded("s", 1, numberedData("t", "1", "2", "3", "4", "5")...),
		readAll(t, s, "s", eventstore.ReadOptions{}))
}

func testAppendConflict(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"), ev("t", "2"))
	before := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})

	res, err := s.Append(ctxTimeout(t), "s", eventstore.Exact(1), ev("t", "3"), ev("t", "4"))
	if err == nil {
		t.Fatalf("Append at stale version succeeded: %+v", res)
	}
	var ce *eventstore.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T), want a *ConflictError", err, err)
	}
	want := &eventstore.ConflictError{StreamID: "s", Expected: eventstore.Exact(1), Actual: 2}
	if diff := cmp.Diff(want, ce); diff != "" {
		t.Errorf("ConflictError mismatch (-want +got):\n%s", diff)
	}
	wantErr(t, "conflict", err, eventstore.ErrConcurrency)
	if errors.Is(err, eventstore.ErrInvalidInput) || errors.Is(err, eventstore.ErrIdempotency) {
		t.Errorf("conflict error %v also matches another sentinel", err)
	}
	wantEvents(t, "nothing written", before, readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{}))
}

// wantConflict checks that err is a *ConflictError with the given fields.
func wantConflict(t *testing.T, err error, stream string, expected eventstore.ExpectedVersion, actual uint64) {
	t.Helper()
	var ce *eventstore.ConflictError
	if !errors.As(err, &ce) {
		t.Errorf("Append(%q, %s): error %v, want a *ConflictError", stream, expected, err)
		return
	}
	want := &eventstore.ConflictError{StreamID: stream, Expected: expected, Actual: actual}
	if diff := cmp.Diff(want, ce); diff != "" {
		t.Errorf("Append(%q, %s): ConflictError mismatch (-want +got):\n%s", stream, expected, diff)
	}
	if !errors.Is(err, eventstore.ErrConcurrency) {
		t.Errorf("Append(%q, %s): errors.Is(%v, ErrConcurrency) = false", stream, expected, err)
	}
}

func testAppendEmptyBatch(t *testing.T, s eventstore.Store) {
	// On a missing stream.
	for _, exp := range []eventstore.ExpectedVersion{eventstore.Any, eventstore.NoStream} {
		res, err := s.Append(ctxTimeout(t), "s", exp)
		if err != nil {
			t.Fatalf("empty append with %s on a missing stream: %v", exp, err)
		}
		if diff := cmp.Diff(eventstore.AppendResult{}, res); diff != "" {
			t.Errorf("empty append with %s on a missing stream: result mismatch (-want +got):\n%s", exp, diff)
		}
	}
	_, err := s.Append(ctxTimeout(t), "s", eventstore.StreamExists)
	wantConflict(t, err, "s", eventstore.StreamExists, 0)
	wantEmptyStore(t, s)

	// On a stream with events.
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"), ev("t", "2"))
	for _, exp := range []eventstore.ExpectedVersion{eventstore.Any, eventstore.StreamExists, eventstore.Exact(2)} {
		res, err := s.Append(ctxTimeout(t), "s", exp, []eventstore.Event{}...)
		if err != nil {
			t.Fatalf("empty append with %s: %v", exp, err)
		}
		if diff := cmp.Diff(eventstore.AppendResult{Version: 2}, res); diff != "" {
			t.Errorf("empty append with %s: result mismatch (-want +got):\n%s", exp, diff)
		}
	}
	for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Exact(1), eventstore.Exact(3)} {
		_, err := s.Append(ctxTimeout(t), "s", exp)
		wantConflict(t, err, "s", exp, 2)
	}
	wantVersion(t, s, "s", 2)
}

func testAppendResult(t *testing.T, s eventstore.Store) {
	res1 := mustAppend(t, s, "a", eventstore.NoStream, ev("t", "1"), ev("t", "2"), ev("t", "3"))
	res2 := mustAppend(t, s, "b", eventstore.NoStream, ev("t", "1"))
	for _, c := range []struct {
		name     string
		res      eventstore.AppendResult
		stream   string
		version  uint64
		appended int
	}{
		{"first", res1, "a", 3, 3},
		{"second", res2, "b", 1, 1},
	} {
		if c.res.Version != c.version || c.res.Appended != c.appended || len(c.res.Duplicates) != 0 {
			t.Errorf("%s append: result %+v, want version %d, %d appended, no duplicates", c.name, c.res, c.version, c.appended)
		}
		// Position is the global position of the last event written.
		last := readAll(t, s, c.stream, eventstore.ReadOptions{Backwards: true, Limit: 1})
		if len(last) != 1 || last[0].Position != c.res.Position {
			t.Errorf("%s append: result position %d, last event read back %+v", c.name, c.res.Position, last)
		}
	}
	if res2.Position <= res1.Position {
		t.Errorf("positions of successive appends: %d then %d, want increasing", res1.Position, res2.Position)
	}
}

func testAppendVersionsContiguous(t *testing.T, s eventstore.Store) {
	var want []eventstore.Event
	for i, n := range []int{1, 3, 1, 10, 2} {
		evs := numbered(n, "t", fmt.Sprint("batch", i))
		mustAppend(t, s, "s", eventstore.Any, evs...)
		want = append(want, evs...)
	}
	got := readAll(t, s, "s", eventstore.ReadOptions{})
	wantEvents(t, "Read", recorded("s", 1, want...), got)
	checkPositions(t, got, false)
}

func testAppendPositions(t *testing.T, s eventstore.Store) {
	streams := []string{"a", "b", "c"}
	var want []eventstore.Recorded
	var lastPos uint64
	for round := range 4 {
		for i, id := range streams {
			evs := numbered(i+1, "t", fmt.Sprintf("%s-%d", id, round))
			res := mustAppend(t, s, id, eventstore.Any, evs...)
			if res.Position <= lastPos {
				t.Errorf("append %d to %q: position %d after %d, want increasing", round, id, res.Position, lastPos)
			}
			lastPos = res.Position
			want = append(want, recorded(id, res.Version-uint64(len(evs))+1, evs...)...)
		}
	}
	got := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	wantEvents(t, "Read(AllStreams)", want, got)
	checkPositions(t, got, false)
	if len(got) > 0 && got[len(got)-1].Position != lastPos {
		t.Errorf("last position read %d, last append reported %d", got[len(got)-1].Position, lastPos)
	}
	// Each stream read gives the same positions as the global read.
	byKey := make(map[string]uint64, len(got))
	for _, r := range got {
		byKey[fmt.Sprint(r.StreamID, "@", r.Version)] = r.Position
	}
	for _, id := range streams {
		for _, r := range readAll(t, s, id, eventstore.ReadOptions{}) {
			if p := byKey[fmt.Sprint(r.StreamID, "@", r.Version)]; p != r.Position {
				t.Errorf("%s@%d: position %d in the stream read, %d in the global read", r.StreamID, r.Version, r.Position, p)
			}
		}
	}
}

func testAppendTimeSet(t *testing.T, s eventstore.Store) {
	lo := time.Now()
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"), ev("t", "2"))
	hi := time.Now()
	got := readAll(t, s, "s", eventstore.ReadOptions{})
	if len(got) != 2 {
		t.Fatalf("read %d events, want 2", len(got))
	}
	checkTimes(t, got, lo, hi)
	checkTimes(t, readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{}), lo, hi)
}

func testAppendTimeKept(t *testing.T, s eventstore.Store) {
	// Microseconds: the finest precision every database of the project
	// keeps. Times are compared with Equal, so the location may differ.
	explicit := []time.Time{
		time.Date(2001, 2, 3, 4, 5, 6, 123456000, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("UTC+5", 5*3600)),
		time.Date(2030, 6, 1, 0, 0, 0, 1000, time.UTC),
	}
	evs := make([]eventstore.Event, len(explicit)+1)
	for i, tm := range explicit {
		evs[i] = eventstore.Event{Type: "t", Time: tm}
	}
	evs[len(explicit)] = ev("t", "now") // zero time in the same batch
	lo := time.Now()
	mustAppend(t, s, "s", eventstore.NoStream, evs...)
	hi := time.Now()
	got := readAll(t, s, "s", eventstore.ReadOptions{})
	if len(got) != len(evs) {
		t.Fatalf("read %d events, want %d", len(got), len(evs))
	}
	for i, tm := range explicit {
		if !got[i].Time.Equal(tm) {
			t.Errorf("event %d: Time %v, want %v (as given)", i, got[i].Time, tm)
		}
	}
	checkTimes(t, got[len(explicit):], lo, hi)
}

// testAppendTimePrecision appends times finer than a microsecond: every
// store keeps them truncated to eventstore.TimePrecision (rounded down,
// before 1970 too) and reads return the stored value, so that an event
// reads back equal whichever adapter stored it. (Issue 9 item 9: PostgreSQL
// kept microseconds, SQLite nanoseconds.) Times the store sets, and
// snapshot times, have the same precision.
func testAppendTimePrecision(t *testing.T, s eventstore.Store) {
	given := []time.Time{
		time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC),
		time.Date(2024, 5, 6, 7, 8, 9, 999, time.FixedZone("UTC-3", -3*3600)),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Now(), // with a monotonic clock reading
	}
	evs := make([]eventstore.Event, len(given)+1)
	want := make([]time.Time, len(given))
	for i, tm := range given {
		evs[i] = eventstore.Event{Type: "t", Time: tm}
		want[i] = tm.Truncate(eventstore.TimePrecision)
	}
	evs[len(given)] = ev("t", "stamped")
	lo := time.Now()
	mustAppend(t, s, "s", eventstore.NoStream, evs...)
	hi := time.Now()
	for i, tm := range given {
		if !evs[i].Time.Equal(tm) {
			t.Errorf("Append changed the caller's event %d: Time %v, was %v", i, evs[i].Time, tm)
		}
	}
	times := func(rs []eventstore.Recorded) []time.Time {
		out := make([]time.Time, len(rs))
		for i, r := range rs {
			out[i] = r.Time
		}
		return out
	}
	wantPrecise := func(what string, tm time.Time) {
		t.Helper()
		if !tm.Equal(tm.Truncate(eventstore.TimePrecision)) {
			t.Errorf("%s: Time %v is finer than eventstore.TimePrecision (%v)", what, tm, eventstore.TimePrecision)
		}
	}
	got := readAll(t, s, "s", eventstore.ReadOptions{})
	if len(got) != len(evs) {
		t.Fatalf("read %d events, want %d", len(got), len(evs))
	}
	// Compared with Equal (go-cmp uses it): the location may differ.
	if diff := cmp.Diff(want, times(got[:len(given)])); diff != "" {
		t.Errorf("Read: times not truncated to %v (-want +got):\n%s", eventstore.TimePrecision, diff)
	}
	stamped := got[len(given)].Time
	wantPrecise("time set by the store", stamped)
	checkTime(t, "time set by the store", stamped, lo, hi)
	if diff := cmp.Diff(times(got), times(readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{}))); diff != "" {
		t.Errorf("Read(AllStreams) times differ from Read(s) (-s +all):\n%s", diff)
	}
	w := startWatch(t, s, "s", eventstore.WatchOptions{From: eventstore.FromStart()})
	if diff := cmp.Diff(times(got), times(w.next(t, len(got)))); diff != "" {
		t.Errorf("Watch times differ from Read (-read +watch):\n%s", diff)
	}
	w.stop(t)
	if info := info(t, s, "s"); !info.LastTime.Equal(stamped) {
		t.Errorf("Info(s).LastTime %v, want %v (the last event's)", info.LastTime, stamped)
	}
	mustAppend(t, s, "s2", eventstore.NoStream, eventstore.Event{Type: "t", Time: given[0]})
	if info := info(t, s, "s2"); !info.LastTime.Equal(want[0]) {
		t.Errorf("Info(s2).LastTime %v, want %v (the given time truncated)", info.LastTime, want[0])
	}
	save(t, s, eventstore.Snapshot{StreamID: "s", Version: 1, Schema: "v1", Data: []byte("x")})
	snap, err := s.LoadSnapshot(ctxTimeout(t), "s", "")
	if err != nil {
		t.Fatalf("LoadSnapshot: %v", err)
	}
	wantPrecise("snapshot", snap.Time)
}

func testAppendMetadata(t *testing.T, s eventstore.Store) {
	evs := []eventstore.Event{
		{Type: "t", Metadata: map[string]string{"correlation": "c-1", "causation": "x", "user": "ünïcødé ✓"}},
		{Type: "t"},
		{Type: "t", Metadata: map[string]string{"empty": "", "quote'\"": "back\\slash%_", "long": strings.Repeat("m", 4000)}},
		{Type: "t", Metadata: map[string]string{}},
	}
	mustAppend(t, s, "s", eventstore.NoStream, evs...)
	wantEvents(t, "Read", recorded("s", 1, evs...), readAll(t, s, "s", eventstore.ReadOptions{}))
	wantEvents(t, "Read backwards", recorded("s", 4, evs[3]),
		readAll(t, s, "s", eventstore.ReadOptions{Backwards: true, Limit: 1}))
}

func testAppendData(t *testing.T, newStore Factory) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := make([]byte, 64<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"Nil", nil},
		{"Empty", []byte{}},
		{"Binary", all},
		{"InvalidUTF8", []byte{0xff, 0xfe, 0x00, 0xc3}},
		{"JSON", []byte(`{"amount":10,"note":"naïve"}`)},
		{"Large", big},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			e := eventstore.Event{ID: "id-" + c.name, Type: "t", Data: c.data}
			mustAppend(t, s, "s", eventstore.NoStream, e, ev("t", "after"))
			want := recorded("s", 1, e, ev("t", "after"))
			wantEvents(t, "Read", want, readAll(t, s, "s", eventstore.ReadOptions{}))
			wantEvents(t, "Read(AllStreams)", want, readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{}))
		})
	}
}

// testAppendRace races several writers on the same expected version, a few
// rounds in a row: exactly one wins each round and the others get a
// *ConflictError.
func testAppendRace(t *testing.T, s eventstore.Store) {
	const writers, rounds = 4, 8
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "0"))
	for round := range rounds {
		at := uint64(round + 1)
		start := make(chan struct{})
		results := make([]error, writers) // one slot per writer
		g, ctx := errgroup.WithContext(ctxTimeout(t))
		for w := range writers {
			g.Go(func() error {
				<-start
				_, err := s.Append(ctx, "s", eventstore.Exact(at), ev("t", fmt.Sprintf("round %d writer %d", round, w)))
				var ce *eventstore.ConflictError
				if err != nil && !errors.As(err, &ce) {
					return fmt.Errorf("writer %d: unexpected error: %w", w, err)
				}
				results[w] = err
				return nil
			})
		}
		close(start)
		if err := g.Wait(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		winners := 0
		for _, err := range results {
			if err == nil {
				winners++
				continue
			}
			wantConflict(t, err, "s", eventstore.Exact(at), at+1)
		}
		if winners != 1 {
			t.Fatalf("round %d: %d writers succeeded at Exact(%d), want exactly 1 (errors %v)", round, winners, at, results)
		}
	}
	got := readAll(t, s, "s", eventstore.ReadOptions{})
	if diff := cmp.Diff(span(1, rounds+1), versions(got)); diff != "" {
		t.Errorf("versions after the races (-want +got):\n%s", diff)
	}
}

func testAppendCancelled(t *testing.T, s eventstore.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Append(ctx, "s", eventstore.Any, ev("t", "1"))
	wantErr(t, "Append with a cancelled context", err, context.Canceled)

	ctx, cancel = context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = s.Append(ctx, "s", eventstore.Any, ev("t", "1"))
	wantErr(t, "Append past its deadline", err, context.DeadlineExceeded)
	wantEmptyStore(t, s)
	// The store still works.
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"))
}

// numberedData returns events of type typ whose data are the given strings.
func numberedData(typ string, data ...string) []eventstore.Event {
	evs := make([]eventstore.Event, len(data))
	for i, d := range data {
		evs[i] = ev(typ, d)
	}
	return evs
}

// testAppendLargeBatch appends one batch larger than a multi-row INSERT
// of a handful of columns can take in one statement on SQLite (32766
// parameters): an adapter must split it or bind arrays. (PostgreSQL's
// limit, 65535, would take twice as many events; under -race that costs
// more than it is worth here.)
func testAppendLargeBatch(t *testing.T, s eventstore.Store) {
	const n = 5_000
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = eventstore.Event{ID: fmt.Sprint("id-", i), Type: "t", Data: []byte{byte(i)}}
		if i%100 == 0 {
			evs[i].Metadata = map[string]string{"i": fmt.Sprint(i)}
		}
	}
	mustAppend(t, s, "warm", eventstore.NoStream, ev("t", "first"))
	res := mustAppend(t, s, "s", eventstore.NoStream, evs...)
	if res.Version != n || res.Appended != n {
		t.Errorf("large batch: result version %d, %d appended; want %d, %d", res.Version, res.Appended, n, n)
	}
	got := readAll(t, s, "s", eventstore.ReadOptions{})
	if len(got) != n {
		t.Fatalf("read %d events back, want %d", len(got), n)
	}
	// go-cmp over ten thousand events takes seconds under -race: compare
	// field by field, and diff only the first mismatch.
	want := recorded("s", 1, evs...)
	for i := range want {
		w, g := want[i], got[i]
		if w.ID != g.ID || w.Type != g.Type || !bytes.Equal(w.Data, g.Data) || !maps.Equal(w.Metadata, g.Metadata) ||
			w.StreamID != g.StreamID || w.Version != g.Version {
			wantEvents(t, fmt.Sprintf("event %d read back", i), want[i:i+1], got[i:i+1])
			break
		}
	}
	checkPositions(t, got, false)
	if len(got) == n && got[n-1].Position != res.Position {
		t.Errorf("large batch: result position %d, last event has %d", res.Position, got[n-1].Position)
	}
	// Its retry is recognised whole.
	res, err := s.Append(ctxTimeout(t), "s", eventstore.NoStream, evs...)
	if err != nil || res.Appended != 0 || len(res.Duplicates) != n {
		t.Errorf("retry of the large batch: %d appended, %d duplicates, %v; want 0, %d, nil", res.Appended, len(res.Duplicates), err, n)
	}
}

// testAppendStreamIDs round-trips stream IDs and event types that quote,
// escape or pattern-match badly in SQL.
func testAppendStreamIDs(t *testing.T, s eventstore.Store) {
	ids := []string{
		"with space", "quote'd", `double"quote`, `back\slash`, "semi;colon --", "%", "_", "ünïcødé/✓", "$all2", "$al",
		"emoji-🙂", strings.Repeat("L", eventstore.MaxIDLength), "a\tb\nc",
	}
	for _, id := range ids {
		e := eventstore.Event{ID: clip("ev " + id), Type: clip("type " + id), Data: []byte(id)}
		mustAppend(t, s, id, eventstore.NoStream, e)
		mustAppend(t, s, id, eventstore.Exact(1), e) // an idempotent retry
		wantEvents(t, fmt.Sprintf("Read(%q)", id), recorded(id, 1, e), readAll(t, s, id, eventstore.ReadOptions{}))
		wantEvents(t, fmt.Sprintf("Read(%q) with its type", id), recorded(id, 1, e),
			readAll(t, s, id, eventstore.ReadOptions{Filter: eventstore.Filter{Types: []string{e.Type}}}))
		wantVersion(t, s, id, 1)
	}
	all := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	if len(all) != len(ids) {
		t.Errorf("Read(AllStreams): %d events, want %d", len(all), len(ids))
	}
	for i, r := range all {
		if i < len(ids) && r.StreamID != ids[i] {
			t.Errorf("event %d of the global log is in stream %q, want %q", i, r.StreamID, ids[i])
		}
	}
}

// clip cuts an ASCII s to the longest accepted name.
func clip(s string) string { return s[:min(len(s), eventstore.MaxIDLength)] }

// testAppendTimeRange appends times far from today. A store may refuse a
// time it cannot represent (ErrInvalidInput, nothing written), but must
// not store it wrong: a Unix-nanosecond column, for one, overflows outside
// 1678-2262.
func testAppendTimeRange(t *testing.T, s eventstore.Store) {
	for i, tm := range []time.Time{
		time.Date(1066, 10, 14, 9, 0, 0, 0, time.UTC),
		time.Date(1677, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2500, 6, 30, 12, 0, 0, 123000, time.UTC),
	} {
		stream := fmt.Sprint("s", i)
		_, err := s.Append(ctxTimeout(t), stream, eventstore.NoStream, eventstore.Event{Type: "t", Time: tm})
		if err != nil {
			wantValidation(t, fmt.Sprintf("Append with Time %v", tm), err)
			wantVersion(t, s, stream, 0)
			continue
		}
		got := readAll(t, s, stream, eventstore.ReadOptions{})
		if len(got) != 1 || !got[0].Time.Equal(tm) {
			t.Errorf("Append with Time %v: read back %+v, want the time kept (or the append refused as invalid input)", tm, got)
		}
		if info := info(t, s, stream); !info.LastTime.Equal(tm) {
			t.Errorf("Append with Time %v: Info LastTime %v", tm, info.LastTime)
		}
	}
}

// testAppendConcurrentResults has many writers append at once, some with a
// stale expectation or an ID stored elsewhere, so that an adapter grouping
// concurrent appends into one transaction must still give each caller its
// own result or error: a failing append fails alone, and each success
// reports its own version and position.
func testAppendConcurrentResults(t *testing.T, s eventstore.Store) {
	const writers, rounds = 12, 10
	mustAppend(t, s, "owner", eventstore.NoStream, evID("shared", "t"))
	type landed struct{ version, position uint64 }
	got := make([][]landed, writers) // one slot per writer
	start := make(chan struct{})
	g, ctx := errgroup.WithContext(ctxTimeout(t))
	for w := range writers {
		g.Go(func() error {
			<-start
			stream := fmt.Sprint("c-", w)
			var version uint64
			for i := range rounds {
				n := 1 + (w+i)%3
				evs := numbered(n, "t", fmt.Sprintf("%d-%d", w, i))
				switch {
				case (w+i)%4 == 3: // stale: fails alone
					_, err := s.Append(ctx, stream, eventstore.Exact(version+5), evs...)
					var ce *eventstore.ConflictError
					if !errors.As(err, &ce) || ce.StreamID != stream || ce.Actual != version {
						return fmt.Errorf("writer %d round %d: stale append: %v, want a ConflictError on %s with actual %d", w, i, err, stream, version) //nolint:errorlint // err is the wrong result described (maybe nil), not a cause
					}
				case (w+i)%5 == 4: // an ID stored in another stream: fails alone
					_, err := s.Append(ctx, stream, eventstore.Exact(version), append(evs, evID("shared", "t"))...)
					if !errors.Is(err, eventstore.ErrIdempotency) {
						return fmt.Errorf("writer %d round %d: append of a foreign ID: %v, want ErrIdempotency", w, i, err) //nolint:errorlint // err is the wrong result described (maybe nil), not a cause
					}
				default:
					res, err := s.Append(ctx, stream, eventstore.Exact(version), evs...)
					if err != nil {
						return fmt.Errorf("writer %d round %d: %w", w, i, err)
					}
					if res.Version != version+uint64(n) || res.Appended != n || len(res.Duplicates) != 0 || res.Position == 0 {
						return fmt.Errorf("writer %d round %d: result %+v, want version %d and %d appended", w, i, res, version+uint64(n), n)
					}
					version += uint64(n)
					got[w] = append(got[w], landed{version, res.Position})
				}
			}
			return nil
		})
	}
	close(start)
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	seen := make(map[uint64]string)
	for w, ls := range got {
		stream := fmt.Sprint("c-", w)
		read := readAll(t, s, stream, eventstore.ReadOptions{})
		if len(ls) > 0 && uint64(len(read)) != ls[len(ls)-1].version {
			t.Errorf("%s holds %d events, its writer's last append reported version %d", stream, len(read), ls[len(ls)-1].version)
			continue
		}
		for _, l := range ls {
			r := read[l.version-1]
			if r.Position != l.position {
				t.Errorf("%s@%d: position %d, its append reported %d", stream, l.version, r.Position, l.position)
			}
			if other, dup := seen[l.position]; dup {
				t.Errorf("position %d reported to %s and %s", l.position, other, stream)
			}
			seen[l.position] = stream
		}
	}
	if n := len(readAll(t, s, "owner", eventstore.ReadOptions{})); n != 1 {
		t.Errorf("owner holds %d events, want 1", n)
	}
}

// testAppendContextMetadata: the metadata of the context (WithMetadata,
// WithCorrelationID, WithCausationID) is added to each event's, the
// event's own keys winning, and the caller's maps are left alone (issue
// 14).
func testAppendContextMetadata(t *testing.T, s eventstore.Store) {
	ctx := eventstore.WithCorrelationID(ctxTimeout(t), "corr-1")
	ctx = eventstore.WithMetadata(ctx, map[string]string{"user": "alice", eventstore.CausationIDKey: "cause-ctx"})
	own := map[string]string{eventstore.CausationIDKey: "cause-event"}
	events := []eventstore.Event{ev("t", "plain"), {Type: "t", Metadata: own}}
	if _, err := s.Append(ctx, "s", eventstore.NoStream, events...); err != nil {
		t.Fatal(err)
	}
	if events[0].Metadata != nil || len(own) != 1 {
		t.Errorf("Append modified the caller's events: %v, %v", events[0].Metadata, own)
	}
	got := readAll(t, s, "s", eventstore.ReadOptions{})
	want := []map[string]string{
		{eventstore.CorrelationIDKey: "corr-1", "user": "alice", eventstore.CausationIDKey: "cause-ctx"},
		{eventstore.CorrelationIDKey: "corr-1", "user": "alice", eventstore.CausationIDKey: "cause-event"},
	}
	var mds []map[string]string
	for _, r := range got {
		mds = append(mds, r.Metadata)
	}
	if diff := cmp.Diff(want, mds); diff != "" {
		t.Errorf("stored metadata mismatch (-want +got):\n%s", diff)
	}
	// Reads filter on it like any metadata.
	n := len(readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{Filter: eventstore.Filter{Metadata: []eventstore.MetadataFilter{eventstore.MetadataEquals(eventstore.CorrelationIDKey, "corr-1")}}}))
	if n != 2 {
		t.Errorf("read filtered on the correlation ID: %d events, want 2", n)
	}
}
