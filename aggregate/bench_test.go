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

func benchStream(b *testing.B) (eventstore.Store, *aggregate.Repository[Counter, CounterEvent]) {
	b.Helper()
	store := openSQLiteB(b)
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
	_, repo := benchStream(b)
	b.ReportAllocs()
	for b.Loop() {
		a, err := repo.Load(b.Context(), "bench")
		if err != nil || a.Version() != benchEvents {
			b.Fatal(a, err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	store, _ := benchStream(b)
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
}
