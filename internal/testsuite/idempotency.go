package testsuite

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
)

func idempotencyTests() []test {
	return []test{
		{"Idempotency/RetryReportsDuplicates", leaf(testIdemRetry)},
		{"Idempotency/RetryReportsPosition", leaf(testIdemRetryPosition)},
		{"Idempotency/RetryAfterOtherAppends", leaf(testIdemRetryAfterOthers)},
		{"Idempotency/MixedBatch", leaf(testIdemMixed)},
		{"Idempotency/MixedBatchConflict", leaf(testIdemMixedConflict)},
		{"Idempotency/IDInOtherStream", leaf(testIdemOtherStream)},
		{"Idempotency/DuplicateIDsInBatch", leaf(testIdemDuplicateInBatch)},
		{"Idempotency/NoIDNoDedup", leaf(testIdemNoID)},
		{"Idempotency/ConcurrentRetries", leaf(testIdemConcurrentRetries)},
		{"Idempotency/ConcurrentIDInTwoStreams", leaf(testIdemConcurrentTwoStreams)},
	}
}

func testIdemRetry(t *testing.T, s eventstore.Store) {
	batch := []eventstore.Event{evID("a", "t"), evID("b", "t")}
	first := mustAppend(t, s, "s", eventstore.NoStream, batch...)
	if first.Appended != 2 || first.Version != 2 || len(first.Duplicates) != 0 {
		t.Fatalf("first append: %+v, want 2 appended at version 2", first)
	}
	stored := readAll(t, s, "s", eventstore.ReadOptions{})
	if len(stored) != 2 {
		t.Fatalf("stream holds %d events, want 2", len(stored))
	}
	want := eventstore.AppendResult{
		Version:  2,
		Appended: 0,
		Position: stored[1].Position, // where the batch's events are
		Duplicates: []eventstore.Duplicate{
			{Index: 0, ID: "a", Version: 1},
			{Index: 1, ID: "b", Version: 2},
		},
	}
	// A retry succeeds whatever its expected version.
	for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any, eventstore.StreamExists, eventstore.Exact(2), eventstore.Exact(1), eventstore.Exact(9)} {
		res, err := s.Append(ctxTimeout(t), "s", exp, batch...)
		if err != nil {
			t.Errorf("retry with %s: %v, want success", exp, err)
			continue
		}
		if diff := cmp.Diff(want, res); diff != "" {
			t.Errorf("retry with %s: result mismatch (-want +got):\n%s", exp, diff)
		}
	}
	// A retry of part of the batch, in another order, too.
	res, err := s.Append(ctxTimeout(t), "s", eventstore.NoStream, evID("b", "t"))
	if err != nil {
		t.Fatalf("partial retry: %v", err)
	}
	if diff := cmp.Diff(eventstore.AppendResult{Version: 2, Position: stored[1].Position, Duplicates: []eventstore.Duplicate{{Index: 0, ID: "b", Version: 2}}}, res); diff != "" {
		t.Errorf("partial retry: result mismatch (-want +got):\n%s", diff)
	}
	wantEvents(t, "Read", recorded("s", 1, batch...), readAll(t, s, "s", eventstore.ReadOptions{}))
	wantEvents(t, "Read(AllStreams)", recorded("s", 1, batch...), readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{}))
}

// testIdemRetryAfterOthers is the lost-reply case: a writer's append
// succeeded, others appended after it, and the writer retries its batch
// with its original expectation.
func testIdemRetryAfterOthers(t *testing.T, s eventstore.Store) {
	batch := []eventstore.Event{evID("a", "t"), evID("b", "t")}
	first := mustAppend(t, s, "s", eventstore.NoStream, batch...)
	mustAppend(t, s, "s", eventstore.Exact(2), ev("t", "other writer"))
	res, err := s.Append(ctxTimeout(t), "s", eventstore.NoStream, batch...)
	if err != nil {
		t.Fatalf("retry after other appends: %v, want success", err)
	}
	want := eventstore.AppendResult{
		Version:    3,              // the stream's version
		Position:   first.Position, // the batch's, not the stream's head
		Duplicates: []eventstore.Duplicate{{Index: 0, ID: "a", Version: 1}, {Index: 1, ID: "b", Version: 2}},
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("retry result mismatch (-want +got):\n%s", diff)
	}
	wantVersion(t, s, "s", 3)
}

func testIdemMixed(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, evID("a", "t"), evID("b", "t"))
	// The expectation is checked against the stream as it is (version 2),
	// and only the new events are appended.
	res, err := s.Append(ctxTimeout(t), "s", eventstore.Exact(2), evID("b", "t"), evID("c", "t"), ev("t", "no id"), evID("a", "t"))
	if err != nil {
		t.Fatalf("mixed batch: %v", err)
	}
	if res.Version != 4 || res.Appended != 2 || res.Position == 0 {
		t.Errorf("mixed batch: result %+v, want version 4, 2 appended, a position", res)
	}
	wantDups := []eventstore.Duplicate{{Index: 0, ID: "b", Version: 2}, {Index: 3, ID: "a", Version: 1}}
	if diff := cmp.Diff(wantDups, res.Duplicates); diff != "" {
		t.Errorf("mixed batch: duplicates mismatch (-want +got):\n%s", diff)
	}
	got := readAll(t, s, "s", eventstore.ReadOptions{})
	wantEvents(t, "Read", recorded("s", 1, evID("a", "t"), evID("b", "t"), evID("c", "t"), ev("t", "no id")), got)
	if len(got) == 4 && got[3].Position != res.Position {
		t.Errorf("mixed batch reported position %d, last event has %d", res.Position, got[3].Position)
	}
	// A retry of the mixed batch is now a pure retry.
	res, err = s.Append(ctxTimeout(t), "s", eventstore.Exact(2), evID("b", "t"), evID("c", "t"))
	if err != nil {
		t.Fatalf("retry of the mixed batch: %v", err)
	}
	var cPos uint64
	if len(got) == 4 {
		cPos = got[2].Position
	}
	if diff := cmp.Diff(eventstore.AppendResult{Version: 4, Position: cPos, Duplicates: []eventstore.Duplicate{{Index: 0, ID: "b", Version: 2}, {Index: 1, ID: "c", Version: 3}}}, res); diff != "" {
		t.Errorf("retry of the mixed batch: result mismatch (-want +got):\n%s", diff)
	}
}

func testIdemMixedConflict(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, evID("a", "t"), evID("b", "t"))
	for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Exact(1), eventstore.Exact(3)} {
		_, err := s.Append(ctxTimeout(t), "s", exp, evID("b", "t"), evID("c", "t"))
		wantConflict(t, err, "s", exp, 2)
	}
	wantVersion(t, s, "s", 2)
	// c was not stored: it can go to another stream.
	mustAppend(t, s, "other", eventstore.NoStream, evID("c", "t"))
}

func testIdemOtherStream(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, evID("x", "t"))
	before := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	for _, exp := range []eventstore.ExpectedVersion{eventstore.Any, eventstore.NoStream} {
		_, err := s.Append(ctxTimeout(t), "b", exp, evID("y", "t"), evID("x", "t"), ev("t", "no id"))
		var ie *eventstore.IdempotencyError
		if !errors.As(err, &ie) {
			t.Fatalf("append of an ID stored in another stream with %s: error %v, want an *IdempotencyError", exp, err)
		}
		if ie.EventID != "x" || ie.StreamID != "b" || (ie.StoredIn != "a" && ie.StoredIn != "") {
			t.Errorf("IdempotencyError %+v, want EventID x, StreamID b, StoredIn a (or empty)", *ie)
		}
		wantErr(t, "IdempotencyError", err, eventstore.ErrIdempotency)
		if errors.Is(err, eventstore.ErrConcurrency) {
			t.Errorf("IdempotencyError %v also matches ErrConcurrency", err)
		}
	}
	// Also when the stream exists.
	mustAppend(t, s, "b", eventstore.NoStream, ev("t", "b1"))
	_, err := s.Append(ctxTimeout(t), "b", eventstore.Exact(1), evID("x", "t"))
	wantErr(t, "ID of a stored event appended to an existing stream", err, eventstore.ErrIdempotency)
	before = append(before, recorded("b", 1, ev("t", "b1"))...)
	wantEvents(t, "nothing written", before, readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{}))
	// y was not stored: it can be appended now.
	mustAppend(t, s, "c", eventstore.NoStream, evID("y", "t"))
}

func testIdemDuplicateInBatch(t *testing.T, s eventstore.Store) {
	_, err := s.Append(ctxTimeout(t), "s", eventstore.Any, evID("a", "t"), evID("b", "t"), evID("a", "t"))
	wantValidation(t, "duplicate IDs in a batch", err)
	wantEmptyStore(t, s)
}

func testIdemNoID(t *testing.T, s eventstore.Store) {
	e := ev("t", "same")
	mustAppend(t, s, "s", eventstore.Any, e)
	res := mustAppend(t, s, "s", eventstore.Any, e, e)
	if res.Appended != 2 || res.Version != 3 || len(res.Duplicates) != 0 {
		t.Errorf("events without ID: result %+v, want all appended", res)
	}
}

// testIdemConcurrentRetries sends the same batch from several goroutines at
// once: it is stored once and every caller succeeds.
func testIdemConcurrentRetries(t *testing.T, s eventstore.Store) {
	const writers = 6
	batch := []eventstore.Event{evID("a", "t"), evID("b", "t"), evID("c", "t")}
	start := make(chan struct{})
	appended := make([]int, writers) // one slot per writer
	g, ctx := errgroup.WithContext(ctxTimeout(t))
	for w := range writers {
		g.Go(func() error {
			<-start
			res, err := s.Append(ctx, "s", eventstore.Any, batch...)
			if err != nil {
				return fmt.Errorf("writer %d: %w", w, err)
			}
			if res.Version != 3 || res.Appended+len(res.Duplicates) != 3 {
				return fmt.Errorf("writer %d: result %+v, want version 3 and every event appended or duplicate", w, res)
			}
			appended[w] = res.Appended
			return nil
		})
	}
	close(start)
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range appended {
		total += n
	}
	if total != len(batch) {
		t.Errorf("writers appended %v events, %d in all, want %d in all", appended, total, len(batch))
	}
	wantEvents(t, "Read", recorded("s", 1, batch...), readAll(t, s, "s", eventstore.ReadOptions{}))
}

// testIdemConcurrentTwoStreams appends one ID to several streams at once:
// exactly one stream gets it, the others get ErrIdempotency.
func testIdemConcurrentTwoStreams(t *testing.T, s eventstore.Store) {
	const writers = 4
	start := make(chan struct{})
	results := make([]error, writers) // one slot per writer
	g, ctx := errgroup.WithContext(ctxTimeout(t))
	for w := range writers {
		g.Go(func() error {
			<-start
			_, err := s.Append(ctx, fmt.Sprint("s", w), eventstore.Any, evID("x", "t"))
			if err != nil && !errors.Is(err, eventstore.ErrIdempotency) {
				return fmt.Errorf("writer %d: unexpected error %w", w, err)
			}
			results[w] = err
			return nil
		})
	}
	close(start)
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	winners := 0
	for _, err := range results {
		if err == nil {
			winners++
		}
	}
	if winners != 1 {
		t.Errorf("%d streams got the ID, want exactly 1 (errors %v)", winners, results)
	}
	if got := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{}); len(got) != 1 {
		t.Errorf("store holds %d events, want 1: %+v", len(got), got)
	}
}

// testIdemRetryPosition: a retry reports where its events are, so that a
// caller whose first reply was lost can still wait for a read model to
// reach its write (issue 14). Position is never 0 when events exist.
func testIdemRetryPosition(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "other", eventstore.NoStream, ev("t", "before"))
	first := mustAppend(t, s, "s", eventstore.NoStream, evID("a", "t"), evID("b", "t"), evID("c", "t"))
	mustAppend(t, s, "other", eventstore.Exact(1), ev("t", "after"))
	if first.Position == 0 {
		t.Fatalf("first append reported position 0")
	}
	got := readAll(t, s, "s", eventstore.ReadOptions{})
	if len(got) != 3 {
		t.Fatalf("stream holds %d events, want 3", len(got))
	}
	for _, c := range []struct {
		name  string
		batch []eventstore.Event
		want  uint64
	}{
		{"whole batch", []eventstore.Event{evID("a", "t"), evID("b", "t"), evID("c", "t")}, got[2].Position},
		{"first event", []eventstore.Event{evID("a", "t")}, got[0].Position},
		{"out of order", []eventstore.Event{evID("b", "t"), evID("a", "t")}, got[1].Position},
	} {
		res, err := s.Append(ctxTimeout(t), "s", eventstore.Any, c.batch...)
		if err != nil {
			t.Fatalf("retry of %s: %v", c.name, err)
		}
		if res.Position != c.want || res.Appended != 0 {
			t.Errorf("retry of %s: position %d, %d appended; want position %d (its last event's), none appended", c.name, res.Position, res.Appended, c.want)
		}
	}
}
