package postgres

import (
	"context"
	"testing"
	"time"

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
		// tx holds an append uncommitted; a later append from the store
		// commits first, side by side (migrations/0011). Until tx commits,
		// no reader of the whole log passes tx's position: the watch,
		// Read and Head stop below it.
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
		late, err := s.Append(ctx, "late", eventstore.Any, evt("l1"))
		if err != nil {
			t.Fatalf("later append: %v", err)
		}
		if early.Position >= late.Position {
			t.Errorf("positions: early %d, late %d; want early < late", early.Position, late.Position)
		}
		checkHeld(t, s, w, early.Position-1)
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
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
		// tx appends and holds its positions, a store append commits
		// after them, tx rolls back: its positions stay unused, and the
		// watch, woken by no NOTIFY, still gets the later append once the
		// settler sees the head move; nothing is skipped or delivered
		// twice, and the store's count leaves the unused position out.
		s := newTestStore(t)
		ctx := t.Context()
		if _, err := s.Append(ctx, "before", eventstore.Any, evt("b1")); err != nil {
			t.Fatal(err)
		}
		w := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()})
		if got := w.next(t, 1); got[0].StreamID != "before" {
			t.Fatalf("first delivered %s, want before", got[0].StreamID)
		}

		tx, err := s.d.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		doomed, err := rawAppend(ctx, s, tx, "doomed", evt("d1"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, "late", eventstore.Any, evt("l1")); err != nil {
			t.Fatalf("later append: %v", err)
		}
		checkHeld(t, s, w, doomed.Position-1)
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if got := w.next(t, 1); got[0].StreamID != "late" {
			t.Fatalf("after the rollback the watch delivered %s, want late", got[0].StreamID)
		}
		info, err := s.Info(ctx, eventstore.AllStreams)
		if err != nil {
			t.Fatal(err)
		}
		if info.Count != 2 || info.Position != doomed.Position+1 {
			t.Errorf("Info(AllStreams) after the rollback: count %d position %d, want 2 and %d", info.Count, info.Position, doomed.Position+1)
		}
		if _, err := s.Append(ctx, "after", eventstore.Any, evt("a1")); err != nil {
			t.Fatal(err)
		}
		all, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"before@1", "late@1", "after@1"}, streamsOf(all)); diff != "" {
			t.Errorf("read after the rollback (-want +got):\n%s", diff)
		}
		checkIncreasing(t, "read", all)
		if got := w.next(t, 1); got[0].StreamID != "after" {
			t.Fatalf("the watch delivered %s, want after", got[0].StreamID)
		}
		w.expectNothingBut(t, s)
	})
}

// checkHeld checks, while an append is held uncommitted at position
// head+1 and a later one has committed, that the whole log stops at head:
// Head and Info report it, Read returns nothing past it, and the watch
// delivers nothing (it is given 200 ms to).
func checkHeld(t *testing.T, s *Store, w *watcher, head uint64) {
	t.Helper()
	ctx := t.Context()
	info, err := s.Info(ctx, eventstore.AllStreams)
	if err != nil {
		t.Fatal(err)
	}
	if info.Position != head {
		t.Errorf("Info(AllStreams).Position while an earlier append is held: %d, want %d", info.Position, head)
	}
	got, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(head)}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("Read(AllStreams) after %d while an earlier append is held: %s, want nothing", head, streamsOf(got))
	}
	select {
	case r := <-w.events:
		t.Errorf("the watch delivered %s@%d at position %d past an append held at %d", r.StreamID, r.Version, r.Position, head+1)
	case <-time.After(200 * time.Millisecond):
	}
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
