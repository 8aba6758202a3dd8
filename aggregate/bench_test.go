package aggregate_test

import (
	"testing"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/eventstore"
)

// countOnly is a reducer that allocates nothing, so that the benchmarks
// measure the repository and the store.
func countOnly(s Counter, e CounterEvent) Counter {
	if a, ok := e.(Added); ok {
		s.N += a.By
	}
	return s
}

const benchEvents = 1000

// benchStores are the stores the benchmarks run on; the postgres one
// needs ESV2_POSTGRES_DSN.
var benchStores = []struct {
	name string
	open func(testing.TB) eventstore.Store
}{
	{"sqlite", func(tb testing.TB) eventstore.Store { return openSQLite(tb, "") }},
	{"postgres", openPostgres},
}

func benchStream(b *testing.B, open func(testing.TB) eventstore.Store) (eventstore.Store, *aggregate.Repository[Counter, CounterEvent]) {
	b.Helper()
	store := open(b)
	repo := newRepo(b, store, aggregate.Config[Counter, CounterEvent]{Evolve: countOnly})
	a, err := repo.Load(b.Context(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	for i := range benchEvents {
		a.Record(Added{By: int64(i)})
	}
	if err := repo.Save(b.Context(), a); err != nil {
		b.Fatal(err)
	}
	return store, repo
}

// BenchmarkLoad folds a 1,000-event stream; compare with BenchmarkRead, the
// same read without decoding or folding:
//
//	go test -run XXX -bench 'Load|Read' -benchtime 200x ./aggregate
func BenchmarkLoad(b *testing.B) {
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			_, repo := benchStream(b, bs.open)
			b.ReportAllocs()
			for b.Loop() {
				a, err := repo.Load(b.Context(), "bench")
				if err != nil || a.Version() != benchEvents {
					b.Fatal(a, err)
				}
			}
		})
	}
}

func BenchmarkRead(b *testing.B) {
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			store, _ := benchStream(b, bs.open)
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				for _, err := range store.Read(b.Context(), "bench", eventstore.ReadOptions{}) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != benchEvents {
					b.Fatal(n)
				}
			}
		})
	}
}

// TestLoadAllocations guards "Load allocates nothing per event beyond
// decoding": folding a stream may cost, per event, what the store's read
// of the same fields costs (Load omits IDs, metadata and times) plus the
// decoded event's interface box, no more. Added is a flat struct, which
// the codec decodes without the value escaping (through msgpack, it cost
// a second allocation).
func TestLoadAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	store := openSQLite(t, "")
	repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{Evolve: countOnly})
	ctx := t.Context()
	a, err := repo.Load(ctx, "allocs")
	if err != nil {
		t.Fatal(err)
	}
	for i := range benchEvents {
		a.Record(Added{By: int64(i) + 1000}) // values >= 256 so boxing allocates
	}
	if err := repo.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	read := testing.AllocsPerRun(5, func() {
		for _, err := range store.Read(ctx, "allocs", eventstore.ReadOptions{Omit: eventstore.AllFields}) {
			if err != nil {
				t.Fatal(err)
			}
		}
	})
	load := testing.AllocsPerRun(5, func() {
		if _, err := repo.Load(ctx, "allocs"); err != nil {
			t.Fatal(err)
		}
	})
	perEvent := (load - read) / benchEvents
	t.Logf("allocations: read %.0f, load %.0f: %.2f more per event", read, load, perEvent)
	if perEvent > 1.1 {
		t.Errorf("Load allocates %.2f more per event than the read under it, want at most 1 (the decoded event's box)", perEvent)
	}
}
