package postgres

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
)

// TestGlobalOrder proves that AllStreams never skips an event when
// transactions commit in another order than they started, or roll back: a
// watcher running all along sees every committed event once, positions
// increase in delivery order, and reading after the checkpoint of the
// first delivered event misses nothing.
func TestGlobalOrder(t *testing.T) {
	t.Run("EarlierAppendCommitsLast", func(t *testing.T) {
		// tx holds an append uncommitted (and with it the append lock);
		// a later append from the store must wait, then follow it.
		s := newTestStore(t)
		ctx := t.Context()
		w := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()})

		tx, err := s.d.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		early, err := rawAppend(ctx, s, tx, "early", evt("e1"))
		if err != nil {
			t.Fatal(err)
		}

		late := make(chan error, 1)
		var lateRes eventstore.AppendResult
		go func() {
			var err error
			lateRes, err = s.Append(ctx, "late", eventstore.Any, evt("l1"))
			late <- err
		}()
		waitFor(t, "the later append waits on the append lock", func() (bool, error) {
			n, err := lockWaiters(ctx, s)
			return n == 1, err
		})
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-late; err != nil {
			t.Fatalf("later append: %v", err)
		}
		if early.Position >= lateRes.Position {
			t.Errorf("positions: early %d, late %d; want early < late", early.Position, lateRes.Position)
		}
		checkDelivery(t, s, w, []string{"early@1", "late@1"})
	})

	t.Run("LaterTransactionCommitsFirst", func(t *testing.T) {
		// tx begins (and takes its snapshot) first, an append commits,
		// then tx appends and commits: tx's event comes after.
		s := newTestStore(t)
		ctx := t.Context()
		w := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()})

		tx, err := s.d.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, "second", eventstore.Any, evt("s1")); err != nil {
			t.Fatal(err)
		}
		if _, err := rawAppend(ctx, s, tx, "first", evt("f1")); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		checkDelivery(t, s, w, []string{"second@1", "first@1"})
	})

	t.Run("Rollback", func(t *testing.T) {
		// tx appends and holds the lock, a store append waits, tx rolls
		// back: the waiting append takes the position tx had; nothing is
		// skipped or delivered twice.
		s := newTestStore(t)
		ctx := t.Context()
		if _, err := s.Append(ctx, "before", eventstore.Any, evt("b1")); err != nil {
			t.Fatal(err)
		}
		w := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()})

		tx, err := s.d.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		if _, err := rawAppend(ctx, s, tx, "doomed", evt("d1")); err != nil {
			t.Fatal(err)
		}
		late := make(chan error, 1)
		go func() {
			_, err := s.Append(ctx, "late", eventstore.Any, evt("l1"))
			late <- err
		}()
		waitFor(t, "the later append waits on the append lock", func() (bool, error) {
			n, err := lockWaiters(ctx, s)
			return n == 1, err
		})
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-late; err != nil {
			t.Fatalf("later append: %v", err)
		}
		if _, err := s.Append(ctx, "after", eventstore.Any, evt("a1")); err != nil {
			t.Fatal(err)
		}
		checkDelivery(t, s, w, []string{"before@1", "late@1", "after@1"})
	})
}

// checkDelivery checks that the watcher yields exactly want (as
// stream@version) in that order with increasing positions, that reading
// AllStreams after the first delivered position returns the rest, and
// that nothing else comes.
func checkDelivery(t *testing.T, s *Store, w *watcher, want []string) {
	t.Helper()
	got := w.next(t, len(want))
	if diff := cmp.Diff(want, streamsOf(got)); diff != "" {
		t.Errorf("watch delivered (-want +got):\n%s", diff)
	}
	checkIncreasing(t, "watch", got)
	rest, err := eventstore.Collect(s.Read(t.Context(), eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(got[0].Position)}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[1:], streamsOf(rest)); diff != "" {
		t.Errorf("read after the first delivered position %d (-want +got):\n%s", got[0].Position, diff)
	}
	all, err := eventstore.Collect(s.Read(t.Context(), eventstore.AllStreams, eventstore.ReadOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, all); diff != "" {
		t.Errorf("watch and read disagree (-watch +read):\n%s", diff)
	}
	w.expectNothingBut(t, s)
}
