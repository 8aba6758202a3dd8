package aggregate_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/eventstore"
)

// TestLoadAfterTruncation (issue 12): a load from a snapshot at or after
// the truncation point gives the full state; a load that needs removed
// events fails with ErrTruncated instead of folding what is left.
func TestLoadAfterTruncation(t *testing.T) {
	eachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := t.Context()
		snapRepo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{SnapshotEvery: 4, SnapshotSchema: "v1"})
		plain := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{})
		a, err := snapRepo.Load(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			a.Record(Added{By: int64(i + 1)})
		}
		if err := snapRepo.Save(ctx, a); err != nil { // a snapshot at 6
			t.Fatal(err)
		}
		want := a.State()
		h := eventstore.NewStream(store, "c")
		for _, before := range []uint64{3, 6} { // removes 1-2, then 1-5 (a truncation keeps the last event)
			if err := h.Truncate(ctx, before); err != nil {
				t.Fatalf("Truncate(%d): %v", before, err)
			}
			b, err := snapRepo.Load(ctx, "c")
			if err != nil {
				t.Fatalf("load from the snapshot at 6 after Truncate(%d): %v", before, err)
			}
			if diff := cmp.Diff(want, b.State()); diff != "" || b.Version() != 6 {
				t.Errorf("after Truncate(%d): version %d, state (-want +got):\n%s", before, b.Version(), diff)
			}
			_, err = plain.Load(ctx, "c")
			if !errors.Is(err, eventstore.ErrTruncated) {
				t.Errorf("load without a snapshot after Truncate(%d): error %v, want ErrTruncated", before, err)
			}
			var te *eventstore.TruncatedError
			if errors.As(err, &te) && te.Need != 1 {
				t.Errorf("TruncatedError.Need %d, want 1", te.Need)
			}
		}
		// Appends go on after the truncation, and the snapshot still
		// serves; without it the gap is reported.
		b, err := snapRepo.Load(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		b.Record(Added{By: 100})
		if err := snapRepo.Save(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := h.DeleteSnapshots(ctx, ""); err != nil {
			t.Fatal(err)
		}
		_, err = snapRepo.Load(ctx, "c")
		var te *eventstore.TruncatedError
		if !errors.As(err, &te) || te.Need != 1 || te.First != 6 {
			t.Errorf("load after the snapshot was deleted: error %v, want a TruncatedError{Need 1, First 6}", err)
		}
	})
}

// TestLoadDeletedStream: a deleted aggregate loads as a new one (its
// stream has no events), and saving to it fails with ErrStreamDeleted:
// neither Save nor Update recreates it.
func TestLoadDeletedStream(t *testing.T) {
	eachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := t.Context()
		repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{SnapshotEvery: 1, SnapshotSchema: "v1"})
		a, err := repo.Load(ctx, "gone")
		if err != nil {
			t.Fatal(err)
		}
		a.Record(Added{By: 1})
		if err := repo.Save(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := eventstore.NewStream(store, "gone").Delete(ctx, eventstore.Exact(1)); err != nil {
			t.Fatal(err)
		}
		b, err := repo.Load(ctx, "gone")
		if err != nil || b.Version() != 0 {
			t.Fatalf("Load of a deleted stream: version %v, %v; want a new aggregate", b, err)
		}
		b.Record(Added{By: 2})
		if err := repo.Save(ctx, b); !errors.Is(err, eventstore.ErrStreamDeleted) {
			t.Errorf("Save to a deleted stream: error %v, want ErrStreamDeleted", err)
		}
		a.Record(Added{By: 3})
		if err := repo.Save(ctx, a); !errors.Is(err, eventstore.ErrStreamDeleted) {
			t.Errorf("Save of an aggregate loaded before the deletion: error %v, want ErrStreamDeleted", err)
		}
		calls := 0
		_, err = repo.Update(ctx, "gone", func(Counter) ([]CounterEvent, error) {
			calls++
			return []CounterEvent{Added{By: 4}}, nil
		})
		if !errors.Is(err, eventstore.ErrStreamDeleted) || calls != 1 {
			t.Errorf("Update of a deleted stream: error %v after %d decisions, want ErrStreamDeleted after 1 (not retried)", err, calls)
		}
		if info, err := store.Info(ctx, "gone"); err != nil || !info.Deleted || info.Count != 0 {
			t.Errorf("Info after the refused writes: %+v, %v", info, err)
		}
	})
}
