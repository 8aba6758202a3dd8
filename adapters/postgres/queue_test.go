package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// blockAppends holds the append lock in an open transaction until the
// returned release is called, and waits until an append of s is blocked
// on it (so that the writer is busy and later appends queue up).
func blockAppends(t *testing.T, s *Store) (release func()) {
	t.Helper()
	ctx := t.Context()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", s.lockKey); err != nil {
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
		s.writer.mu.Lock()
		defer s.writer.mu.Unlock()
		return len(s.writer.queue) == n, nil
	})
}

// TestAppendCanceledWhileQueued: an append whose context ends while it
// waits for the writer returns the context's error and is never written.
func TestAppendCanceledWhileQueued(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithPollInterval(0))
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
	release()
	if err := <-first; err != nil {
		t.Fatalf("first append: %v", err)
	}
	// The writer drops the canceled append; a later append proves it has
	// moved past it.
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
	s := openStore(t, schema, WithoutListen(), WithPollInterval(0))
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

	other := openStore(t, schema, WithoutListen(), WithPollInterval(0))
	for stream, want := range map[string]uint64{"first": 1, "queued": 0} {
		if info, err := other.Info(t.Context(), stream); err != nil || info.Version != want {
			t.Errorf("Info(%s) = %+v, %v; want version %d", stream, info, err, want)
		}
	}
}
