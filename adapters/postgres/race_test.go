package postgres

import (
	"context"
	"errors"
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
		{"AnySucceedsAfter", eventstore.Any, "ok: version 2"},
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
			done := make(chan string, 1)
			go func() {
				res, err := s.Append(ctx, "s", tc.expected, evt("x"))
				var ce *eventstore.ConflictError
				switch {
				case errors.As(err, &ce):
					done <- "conflict: actual " + eventstore.Exact(ce.Actual).String()
				case err != nil:
					done <- "error: " + err.Error()
				default:
					done <- "ok: version " + eventstore.Exact(res.Version).String()
				}
			}()
			waitFor(t, "the append waits on the raw insert", func() (bool, error) {
				var n int
				err := s.d.pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0",
					s.d.schema+".append_batch").Scan(&n)
				return n == 1, err
			})
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, <-done); diff != "" {
				t.Errorf("append racing a lockless writer (-want +got):\n%s", diff)
			}
		})
	}
}
