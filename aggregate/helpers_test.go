package aggregate_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// storeFactory opens a fresh, empty store for one test; the store is closed
// in t.Cleanup.
type storeFactory struct {
	name string
	open func(t *testing.T) eventstore.Store
}

// stores lists every adapter the aggregate tests run on. Adding an adapter
// is one line here.
var stores = []storeFactory{
	{"sqlite-memory", func(t *testing.T) eventstore.Store { return openSQLite(t, "") }},
	{"sqlite-file", func(t *testing.T) eventstore.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "events.db"))
	}},
	{"postgres", func(t *testing.T) eventstore.Store { return openPostgres(t) }},
}

func openSQLite(t testing.TB, path string) eventstore.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("sqlite.Open(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openPostgres opens a store on a fresh schema of the database named by
// ESV2_POSTGRES_DSN, dropped when the test ends; it skips the test when the
// variable is unset.
func openPostgres(t testing.TB) eventstore.Store {
	t.Helper()
	schema := pgtest.FreshSchema(t, "esv2_aggregate_test_") // dropped after the store closes
	dsn := pgtest.DSN(t)
	s, err := postgres.Open(t.Context(), dsn, postgres.WithSchema(schema), postgres.WithMigrate())
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// eachStore runs f as a subtest on every store.
func eachStore(t *testing.T, f func(t *testing.T, store eventstore.Store)) {
	t.Helper()
	for _, sf := range stores {
		t.Run(sf.name, func(t *testing.T) { f(t, sf.open(t)) })
	}
}

// The counter aggregate of the tests. Log keeps every event's effect in
// order, so that a state built from events in the wrong order, or with one
// missing or doubled, differs.
type Counter struct {
	Name string
	N    int64
	Log  []int64
}

type CounterEvent interface{ isCounterEvent() }

type Added struct{ By int64 }
type Renamed struct{ Name string }
type Cleared struct{}

func (Added) isCounterEvent()   {}
func (Renamed) isCounterEvent() {}
func (Cleared) isCounterEvent() {}

func evolve(s Counter, e CounterEvent) Counter {
	switch e := e.(type) {
	case Added:
		s.N += e.By
		s.Log = append(s.Log, e.By)
	case Renamed:
		s.Name = e.Name
	case Cleared:
		s.N = 0
		s.Log = append(s.Log, 0)
	}
	return s
}

func counterCodec(t testing.TB) *codec.Registry[CounterEvent] {
	t.Helper()
	reg := codec.New[CounterEvent]()
	if err := errors.Join(
		codec.Register[Added](reg, "counter.added"),
		codec.Register[Renamed](reg, "counter.renamed"),
		codec.Register[Cleared](reg, "counter.cleared"),
	); err != nil {
		t.Fatal(err)
	}
	return reg
}

func newRepo(t testing.TB, store eventstore.Store, cfg aggregate.Config[Counter, CounterEvent]) *aggregate.Repository[Counter, CounterEvent] {
	t.Helper()
	if cfg.Evolve == nil {
		cfg.Evolve = evolve
	}
	if cfg.Codec == nil {
		cfg.Codec = counterCodec(t)
	}
	repo, err := aggregate.NewRepository(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// snapshotErrors collects what a repository reports to OnSnapshotError.
type snapshotErrors struct {
	mu   sync.Mutex
	errs []error
}

func (s *snapshotErrors) hook(_ context.Context, _ string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

func (s *snapshotErrors) get() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// appendRaw appends already-encoded events, as another program would.
func appendRaw(t *testing.T, store eventstore.Store, stream string, events ...eventstore.Event) {
	t.Helper()
	if _, err := store.Append(t.Context(), stream, eventstore.Any, events...); err != nil {
		t.Fatalf("Append(%q): %v", stream, err)
	}
}

// mustLoad loads id or fails the test.
func mustLoad(t testing.TB, ctx context.Context, repo *aggregate.Repository[Counter, CounterEvent], id string) *aggregate.Aggregate[Counter, CounterEvent] {
	t.Helper()
	a, err := repo.Load(ctx, id)
	if err != nil {
		t.Fatalf("Load(%q): %v", id, err)
	}
	return a
}
