package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// TestAppendWaitsForHeldAppendToItsStream: an append to a stream another
// transaction has an append to in flight waits for that transaction
// (migrations/0012), then checks its expectation against the version it
// left: committed, the append expecting it succeeds after it; rolled
// back, the same append is a conflict with the stream's version. Without
// the wait, both appends read the stream's version before either
// committed: the first case was refused as a conflict, and appends
// expecting Any ran out of retries under contention (TestConcurrentAppends).
func TestAppendWaitsForHeldAppendToItsStream(t *testing.T) {
	for _, commit := range []bool{true, false} {
		name := map[bool]string{true: "Commit", false: "Rollback"}[commit]
		t.Run(name, func(t *testing.T) {
			schema := freshSchema(t)
			s := openStore(t, schema)
			// Another process: a store appends its groups one at a time,
			// so its appends to other streams would queue behind x's.
			other := openStore(t, schema)
			ctx := t.Context()
			if _, err := other.Append(ctx, "other", eventstore.Any, evt("o1")); err != nil {
				t.Fatal(err)
			}
			tx, err := s.d.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.WithoutCancel(ctx))
			if _, err := rawAppend(ctx, s, tx, "x", evt("held")); err != nil {
				t.Fatal(err)
			}
			type result struct {
				res eventstore.AppendResult
				err error
			}
			done := make(chan result, 1)
			go func() {
				res, err := s.Append(ctx, "x", eventstore.Exact(1), evt("next"))
				done <- result{res, err}
			}()
			// The append waits for tx's stream lock...
			waitFor(t, "a backend waiting for the stream's lock", func() (bool, error) {
				var n int
				err := s.d.pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks
					WHERE locktype = 'advisory' AND NOT granted AND objsubid = 2 AND classid::bigint = $1 AND objid::bigint = $2`,
					(32768|s.d.lockKey&32767)<<16, int64(eventstore.StreamHash("x"))).Scan(&n)
				return n == 1, err
			})
			// ...while appends to other streams go on.
			if _, err := other.Append(ctx, "other", eventstore.Exact(1), evt("o2")); err != nil {
				t.Fatalf("append to another stream while x's is held: %v", err)
			}
			select {
			case r := <-done:
				t.Fatalf("append to x returned before the held one ended: %+v, %v", r.res, r.err)
			default:
			}
			if commit {
				err = tx.Commit(ctx)
			} else {
				err = tx.Rollback(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("append to x still waiting after the held one ended")
			}
			var conflict *eventstore.ConflictError
			switch {
			case commit && (r.err != nil || r.res.Version != 2):
				t.Errorf("after the held append committed: %+v, %v; want version 2", r.res, r.err)
			case !commit && (!errors.As(r.err, &conflict) || conflict.Actual != 0):
				t.Errorf("after the held append rolled back: %+v, %v; want a conflict with actual version 0", r.res, r.err)
			}
		})
	}
}
