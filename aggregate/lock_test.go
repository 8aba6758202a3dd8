package aggregate_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/eventstore"
)

// storeOnly hides every optional ability of a store, its stream lock
// included: a Repository over it updates as before the lock existed.
type storeOnly struct{ eventstore.Store }

// BenchmarkUpdateUncontended runs one goroutine's one-event Updates of an
// aggregate no one else writes, on PostgreSQL with a snapshot every 100
// events, alternately over the store ("lock": each Update first asks
// StreamLocked, one round trip) and over the same store without its
// stream lock ("nolock", as before the lock existed): what the turn
// across processes costs when there is no contention. Alternating keeps a
// shared machine's changing load out of the comparison.
//
//	ESV2_POSTGRES_DSN=... go test -run XXX -bench UpdateUncontended -benchtime 1000x ./aggregate
func BenchmarkUpdateUncontended(b *testing.B) {
	store := openPostgres(b)
	decide := func(Counter) ([]CounterEvent, error) { return []CounterEvent{Added{By: 1}}, nil }
	cfg := aggregate.Config[Counter, CounterEvent]{Evolve: countOnly, SnapshotEvery: 100, SnapshotSchema: "counter.v1"}
	repos := []*aggregate.Repository[Counter, CounterEvent]{newRepo(b, store, cfg), newRepo(b, storeOnly{store}, cfg)}
	var took [2]time.Duration
	n := 0
	for b.Loop() {
		for i, repo := range repos {
			start := time.Now()
			if _, err := repo.Update(b.Context(), "uncontended-"+strconv.Itoa(i), decide); err != nil {
				b.Fatal(err)
			}
			took[i] += time.Since(start)
		}
		n++
	}
	b.ReportMetric(float64(took[0].Microseconds())/float64(n), "lock-µs/update")
	b.ReportMetric(float64(took[1].Microseconds())/float64(n), "nolock-µs/update")
}

// An Update of an ID no stream can have fails the same way on every
// store: with the load's validation error, not the stream lock's.
func TestUpdateInvalidIDSameOnEveryStore(t *testing.T) {
	eachStore(t, func(t *testing.T, store eventstore.Store) {
		repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{})
		_, err := repo.Update(t.Context(), eventstore.AllStreams, func(Counter) ([]CounterEvent, error) {
			return []CounterEvent{Added{By: 1}}, nil
		})
		var ve *eventstore.ValidationError
		if !errors.As(err, &ve) || strings.Contains(err.Error(), "lock") {
			t.Fatalf("Update(AllStreams): %v, want the load's *ValidationError", err)
		}
	})
}
