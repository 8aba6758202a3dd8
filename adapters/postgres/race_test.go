package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
)

// TestWriterBypassingTheLock: a transaction that inserts an event without
// the append lock (not something this package does, but the unique index
// must still hold) makes a concurrent append hit a unique violation; the
// writer retries it against the committed state, so the caller gets a
// precise result, never a raw driver error.
func TestWriterBypassingTheLock(t *testing.T) {
	for _, tc := range []struct {
		name     string
		expected eventstore.ExpectedVersion
		want     string
	}{
		{"NoStreamConflicts", eventstore.NoStream, "conflict: actual 1"},
		{"AnySucceedsAfter", eventstore.Any, "ok: version 2, 1 appended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t, WithoutListen(), WithoutPoll())
			ctx := t.Context()
			tx, err := s.d.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.WithoutCancel(ctx))
			if _, err := tx.Exec(ctx, "INSERT INTO "+s.d.schema+".events (position, stream_id, version, type, data, occurred_at) VALUES (1, 's', 1, 'raw', '', now())"); err != nil {
				t.Fatal(err)
			}
			done := appendWaitingOnLock(t, s, "s", tc.expected, evt("x"))
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, <-done); diff != "" {
				t.Errorf("append racing a lockless writer (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAppendsRacingSideBySide: appends commit side by side
// (migrations/0011), so two that store the same stream version or event
// ID race on the unique indexes instead of queueing for a lock: the
// second waits for the first's transaction, fails having written nothing,
// and its retry answers as if it had come after.
func TestAppendsRacingSideBySide(t *testing.T) {
	withID := func(id string) eventstore.Event { e := evt("x"); e.ID = id; return e }
	for _, tc := range []struct {
		name     string
		stream   string
		expected eventstore.ExpectedVersion
		event    eventstore.Event
		want     string
	}{
		{"StreamVersionNoStream", "s", eventstore.NoStream, evt("x"), "conflict: actual 1"},
		{"StreamVersionAny", "s", eventstore.Any, evt("x"), "ok: version 2, 1 appended"},
		{"EventIDInAnotherStream", "other", eventstore.Any, withID("id-1"), "idempotency: id-1 in s"},
		{"EventIDRetried", "s", eventstore.NoStream, withID("id-1"), "ok: version 1, 0 appended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t, WithoutListen(), WithoutPoll())
			ctx := t.Context()
			tx, err := s.d.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.WithoutCancel(ctx))
			if _, err := rawAppend(ctx, s, tx, "s", withID("id-1")); err != nil {
				t.Fatal(err)
			}
			done := appendWaitingOnLock(t, s, tc.stream, tc.expected, tc.event)
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, <-done); diff != "" {
				t.Errorf("append racing a held one (-want +got):\n%s", diff)
			}
			all, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}))
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range all {
				if r.ID != "" {
					ids = append(ids, r.StreamID+"/"+r.ID)
				}
			}
			if diff := cmp.Diff([]string{"s/id-1"}, ids); diff != "" {
				t.Errorf("event IDs stored (-want +got):\n%s", diff)
			}
			checkIncreasing(t, "read", all)
		})
	}
}

// appendWaitingOnLock starts an append to stream and waits until it waits
// for a lock in the database (a transaction the test holds). The channel
// then gives its outcome once: "conflict: actual N", "idempotency: ID in
// STREAM", "ok: version V, N appended" or "error: ...".
func appendWaitingOnLock(t *testing.T, s *Store, stream string, expected eventstore.ExpectedVersion, e eventstore.Event) <-chan string {
	t.Helper()
	ctx := t.Context()
	done := make(chan string, 1)
	go func() {
		res, err := s.Append(ctx, stream, expected, e)
		var ce *eventstore.ConflictError
		var ie *eventstore.IdempotencyError
		switch {
		case errors.As(err, &ce):
			done <- "conflict: actual " + eventstore.Exact(ce.Actual).String()
		case errors.As(err, &ie):
			done <- "idempotency: " + ie.EventID + " in " + ie.StoredIn
		case err != nil:
			done <- "error: " + err.Error()
		default:
			done <- fmt.Sprintf("ok: version %d, %d appended", res.Version, res.Appended)
		}
	}()
	waitFor(t, "the append to wait on a lock", func() (bool, error) {
		var n int
		err := s.d.pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0",
			s.d.schema+".append_batch").Scan(&n)
		return n == 1, err
	})
	return done
}
