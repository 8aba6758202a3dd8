package aggregate_test

import (
	"context"
	"errors"
	"testing"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/eventstore"
)

// lastPosition returns the global position of the last event of stream.
func lastPosition(t *testing.T, store eventstore.Store, stream string) uint64 {
	t.Helper()
	info, err := store.Info(t.Context(), stream)
	if err != nil {
		t.Fatalf("Info(%q): %v", stream, err)
	}
	return info.Position
}

// TestPositionReadYourWrites: Save and Update report the global position of
// the events they stored, and a repeated command (WithCommandID) reports
// where its events already are, on every path a repeat takes (issue 14).
func TestPositionReadYourWrites(t *testing.T) {
	eachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := t.Context()
		repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{})
		appendRaw(t, store, "noise", eventstore.Event{Type: "noise"})

		a := mustLoad(t, ctx, repo, "c")
		if a.Position() != 0 {
			t.Errorf("new aggregate: Position %d, want 0", a.Position())
		}
		a.Record(Added{By: 1}, Added{By: 2})
		if err := repo.Save(ctx, a); err != nil {
			t.Fatal(err)
		}
		if got, want := a.Position(), lastPosition(t, store, "c"); got == 0 || got != want {
			t.Errorf("after Save: Position %d, want %d (the stream's last event)", got, want)
		}
		if got, want := mustLoad(t, ctx, repo, "c").Position(), a.Position(); got != want {
			t.Errorf("after Load: Position %d, want %d", got, want)
		}

		// One event per command: a repeat is recognised by the append.
		one, err := repo.Update(ctx, "c", func(Counter) ([]CounterEvent, error) { return []CounterEvent{Added{By: 3}}, nil }, aggregate.WithCommandID("one"))
		if err != nil {
			t.Fatal(err)
		}
		onePos := one.Position()
		if onePos != lastPosition(t, store, "c") {
			t.Errorf("Update: Position %d, want %d", onePos, lastPosition(t, store, "c"))
		}
		// Two events per command: a repeat is looked up before appending.
		two, err := repo.Update(ctx, "c", func(Counter) ([]CounterEvent, error) {
			return []CounterEvent{Added{By: 4}, Added{By: 5}}, nil
		}, aggregate.WithCommandID("two"))
		if err != nil {
			t.Fatal(err)
		}
		twoPos := two.Position()
		appendRaw(t, store, "noise", eventstore.Event{Type: "noise"})

		again, err := repo.Update(ctx, "c", func(Counter) ([]CounterEvent, error) { return []CounterEvent{Added{By: 3}}, nil }, aggregate.WithCommandID("one"))
		if err != nil {
			t.Fatal(err)
		}
		if again.Position() != onePos {
			t.Errorf("repeat of a one-event command: Position %d, want %d (where its event is)", again.Position(), onePos)
		}
		again, err = repo.Update(ctx, "c", func(Counter) ([]CounterEvent, error) {
			return []CounterEvent{Added{By: 4}, Added{By: 5}}, nil
		}, aggregate.WithCommandID("two"))
		if err != nil {
			t.Fatal(err)
		}
		if again.Position() < twoPos {
			t.Errorf("repeat of a two-event command: Position %d, want at least %d", again.Position(), twoPos)
		}
		// A repeat whose decide now fails.
		boom := errors.New("boom")
		again, err = repo.Update(ctx, "c", func(Counter) ([]CounterEvent, error) { return nil, boom }, aggregate.WithCommandID("two"))
		if err != nil {
			t.Fatal(err)
		}
		if again.Position() < twoPos {
			t.Errorf("repeat whose decide fails: Position %d, want at least %d", again.Position(), twoPos)
		}
	})
}

// TestNotFound: LoadExisting and Update with MustExist tell a missing
// aggregate apart with ErrNotFound (issue 14), and find an existing one.
func TestNotFound(t *testing.T) {
	eachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := t.Context()
		repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{})

		_, err := repo.LoadExisting(ctx, "missing")
		if !errors.Is(err, aggregate.ErrNotFound) || !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("LoadExisting of a missing aggregate: %v, want aggregate.ErrNotFound and eventstore.ErrNotFound", err)
		}
		called := false
		_, err = repo.Update(ctx, "missing", func(Counter) ([]CounterEvent, error) {
			called = true
			return []CounterEvent{Added{By: 1}}, nil
		}, aggregate.MustExist())
		if !errors.Is(err, aggregate.ErrNotFound) {
			t.Errorf("Update with MustExist of a missing aggregate: %v, want ErrNotFound", err)
		}
		if called {
			t.Error("Update with MustExist called decide for a missing aggregate")
		}
		if v := lastPosition(t, store, "missing"); v != 0 {
			t.Errorf("Update with MustExist stored events (position %d)", v)
		}

		// Without MustExist, Update creates it; then both find it.
		if _, err := repo.Update(ctx, "c", func(Counter) ([]CounterEvent, error) { return []CounterEvent{Added{By: 1}}, nil }); err != nil {
			t.Fatal(err)
		}
		a, err := repo.LoadExisting(ctx, "c")
		if err != nil || a.Version() != 1 {
			t.Fatalf("LoadExisting of an existing aggregate: %v, version %v", err, a)
		}
		a, err = repo.Update(ctx, "c", func(Counter) ([]CounterEvent, error) { return []CounterEvent{Added{By: 1}}, nil }, aggregate.MustExist())
		if err != nil || a.Version() != 2 {
			t.Fatalf("Update with MustExist of an existing aggregate: %v", err)
		}
		// An invalid ID is a validation error, not "not found".
		if _, err := repo.LoadExisting(ctx, ""); errors.Is(err, aggregate.ErrNotFound) || !errors.Is(err, eventstore.ErrInvalidInput) {
			t.Errorf("LoadExisting(\"\"): %v, want ErrInvalidInput", err)
		}
	})
}

// TestNilContext: a nil context is invalid input for every call, with or
// without a command ID and hooks, never a panic.
func TestNilContext(t *testing.T) {
	store := openSQLite(t, "")
	hooked := 0
	repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{Hooks: aggregate.Hooks{
		Call: func(ctx context.Context, _ aggregate.CallInfo) (context.Context, func(aggregate.CallResult)) {
			hooked++
			return ctx, nil
		},
	}})
	var nilCtx context.Context
	a := mustLoad(t, t.Context(), repo, "c")
	a.Record(Added{By: 1}, Added{By: 2})
	for name, err := range map[string]error{
		"Save":         repo.Save(nilCtx, a, aggregate.WithCommandID("x")),
		"Load":         func() error { _, err := repo.Load(nilCtx, "c"); return err }(),
		"LoadExisting": func() error { _, err := repo.LoadExisting(nilCtx, "c"); return err }(),
		"Update": func() error {
			_, err := repo.Update(nilCtx, "c", func(Counter) ([]CounterEvent, error) { return nil, nil }, aggregate.WithCommandID("y"))
			return err
		}(),
	} {
		if !errors.Is(err, eventstore.ErrInvalidInput) {
			t.Errorf("%s with a nil context: %v, want ErrInvalidInput", name, err)
		}
	}
	if hooked != 1 { // mustLoad's; a nil context is not handed to hooks
		t.Errorf("hooks called %d times, want 1", hooked)
	}
}

// TestDeleted: a deleted aggregate has no events, so LoadExisting says
// ErrNotFound; an Update that would write to it is refused with
// ErrStreamDeleted (HTTP 410 in examples/service).
func TestDeleted(t *testing.T) {
	store := openSQLite(t, "")
	repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{})
	ctx := t.Context()
	add := func(Counter) ([]CounterEvent, error) { return []CounterEvent{Added{By: 1}}, nil }
	if _, err := repo.Update(ctx, "c", add); err != nil {
		t.Fatal(err)
	}
	if err := store.(eventstore.Lifecycle).DeleteStream(ctx, "c", eventstore.Any); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.LoadExisting(ctx, "c"); !errors.Is(err, aggregate.ErrNotFound) {
		t.Errorf("LoadExisting of a deleted aggregate: %v, want ErrNotFound", err)
	}
	if _, err := repo.Update(ctx, "c", add); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Errorf("Update of a deleted aggregate: %v, want ErrStreamDeleted", err)
	}
}
