package aggregate_test

import (
	"testing"

	"github.com/esv2/esv2/aggregate"
)

// BenchmarkLoadSnapshot loads a stream of 1,100 events with a snapshot at
// 1,000: the snapshot plus 100 events. Load reads from the snapshot's own
// event, to see that the stream reaches it (issue 9 item 7), so it reads
// 101 events. The postgres case needs ESV2_POSTGRES_DSN:
//
//	go test -run XXX -bench LoadSnapshot -count 5 ./aggregate
func BenchmarkLoadSnapshot(b *testing.B) {
	for _, bc := range benchStores {
		b.Run(bc.name, func(b *testing.B) {
			store := bc.open(b)
			repo := newRepo(b, store, aggregate.Config[Counter, CounterEvent]{Evolve: countOnly, SnapshotEvery: 1000, SnapshotSchema: "v1"})
			for _, n := range []int{1000, 100} {
				a, err := repo.Load(b.Context(), "bench")
				if err != nil {
					b.Fatal(err)
				}
				for i := range n {
					a.Record(Added{By: int64(i)})
				}
				if err := repo.Save(b.Context(), a); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				a, err := repo.Load(b.Context(), "bench")
				if err != nil || a.Version() != 1100 || a.SnapshotVersion() != 1000 {
					b.Fatal(a, err)
				}
			}
		})
	}
}
