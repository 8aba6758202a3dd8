package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/esv2/esv2/eventstore"
)

// blockAppends holds the append lock in an open transaction until the
// returned release is called, and waits until an append of s is blocked
// on it (so that the writer is busy and later appends queue up).
func blockAppends(t *testing.T, s *Store) (release func()) {
	t.Helper()
	ctx := t.Context()
	tx, err := s.d.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", s.d.lockKey); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if err := tx.Rollback(context.WithoutCancel(ctx)); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(release) // before the store closes, should the test fail first
	return release
}

func waitBlocked(t *testing.T, s *Store) {
	t.Helper()
	waitFor(t, "an append waits on the append lock", func() (bool, error) {
		n, err := lockWaiters(t.Context(), s)
		return n == 1, err
	})
}

func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	waitFor(t, "appends queued", func() (bool, error) {
		s.d.writer.mu.Lock()
		defer s.d.writer.mu.Unlock()
		return len(s.d.writer.queue) == n, nil
	})
}

// TestAppendCanceledWhileQueued: an append whose context ends while it
// waits for the writer returns the context's error and is never written.
func TestAppendCanceledWhileQueued(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	release := blockAppends(t, s)
	first := make(chan error, 1)
	go func() {
		_, err := s.Append(t.Context(), "first", eventstore.Any, evt("x"))
		first <- err
	}()
	waitBlocked(t, s)

	ctx, cancel := context.WithCancel(t.Context())
	queued := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "queued", eventstore.Any, evt("y"))
		queued <- err
	}()
	waitQueued(t, s, 1)
	cancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Errorf("canceled append: %v, want context.Canceled", err)
	}
	// Withdrawn before Append returned: the writer never reads its
	// events, which the caller owns again.
	s.d.writer.mu.Lock()
	left := len(s.d.writer.queue)
	s.d.writer.mu.Unlock()
	if left != 0 {
		t.Errorf("%d appends still queued after the canceled one returned, want 0", left)
	}
	release()
	if err := <-first; err != nil {
		t.Fatalf("first append: %v", err)
	}
	// A later append proves the writer has moved on.
	if _, err := s.Append(t.Context(), "later", eventstore.Any, evt("z")); err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(t.Context(), "queued"); err != nil || info.Version != 0 {
		t.Errorf("Info(queued) = %+v, %v; want version 0", info, err)
	}
}

// TestCloseDuringAppend: Close lets the group being committed finish,
// fails the queued appends with ErrClosed, and returns after both.
func TestCloseDuringAppend(t *testing.T) {
	schema := freshSchema(t)
	s := openStore(t, schema, WithoutListen(), WithoutPoll())
	release := blockAppends(t, s)
	first := make(chan error, 1)
	go func() {
		_, err := s.Append(t.Context(), "first", eventstore.Any, evt("x"))
		first <- err
	}()
	waitBlocked(t, s)
	queued := make(chan error, 1)
	go func() {
		_, err := s.Append(t.Context(), "queued", eventstore.Any, evt("y"))
		queued <- err
	}()
	waitQueued(t, s, 1)

	closed := make(chan struct{})
	go func() {
		closeOK(t, s)
		close(closed)
	}()
	if err := <-queued; !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("queued append at Close: %v, want ErrClosed", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned while an append was being committed")
	default:
	}
	release()
	if err := <-first; err != nil {
		t.Errorf("append being committed at Close: %v, want success", err)
	}
	select {
	case <-closed:
	case <-time.After(waitTimeout):
		t.Fatal("Close did not return")
	}

	other := openStore(t, schema, WithoutListen(), WithoutPoll())
	for stream, want := range map[string]uint64{"first": 1, "queued": 0} {
		if info, err := other.Info(t.Context(), stream); err != nil || info.Version != want {
			t.Errorf("Info(%s) = %+v, %v; want version %d", stream, info, err, want)
		}
	}
}

// TestAppendCanceledAfterTaken: an append whose context ends once the
// writer has sent its group waits for the group and returns its real
// outcome, success or refusal, not the context's error (issue 10: it used
// to return ctx.Err() then, and the caller could not tell whether its
// events were stored; SQLite already gave the outcome). The writer's
// fault hook holds the group in the database until Append has seen its
// context end.
func TestAppendCanceledAfterTaken(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	appendCanceled := func(expected eventstore.ExpectedVersion) (eventstore.AppendResult, error) {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		gaveUp := make(chan struct{})
		s.d.hooks = &faultHooks{
			sent: func(*pgconn.PgConn) {
				cancel()
				select {
				case <-gaveUp:
				case <-time.After(waitTimeout):
					t.Error("Append did not see its context end while its group was in the database")
				}
			},
			gaveUp: func() { close(gaveUp) },
		}
		defer func() { s.d.hooks = nil }()
		res, err := s.Append(ctx, "s", expected, evt("x"), evt("y"))
		if ctx.Err() == nil {
			t.Fatal("the context did not end: the test proves nothing")
		}
		return res, err
	}
	res, err := appendCanceled(eventstore.NoStream)
	if err != nil || res.Version != 2 || res.Appended != 2 || res.Position != 2 {
		t.Fatalf("append canceled after it was sent: %+v, %v; want version 2, position 2, 2 appended", res, err)
	}
	_, err = appendCanceled(eventstore.Exact(1))
	var conflict *eventstore.ConflictError
	if !errors.As(err, &conflict) || conflict.Actual != 2 {
		t.Fatalf("conflicting append canceled after it was sent: %v; want a ConflictError at version 2", err)
	}
	if info, err := s.Info(t.Context(), "s"); err != nil || info.Version != 2 {
		t.Errorf("Info(s) = %+v, %v; want version 2 (stored once, the conflict not at all)", info, err)
	}
}
