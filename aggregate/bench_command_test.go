package aggregate_test

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/esv2/esv2/aggregate"
)

// updateBenchEvents is the length of the stream BenchmarkUpdateCommandID
// updates: long enough that anything reading the whole stream shows.
const updateBenchEvents = 50_000

// BenchmarkUpdateCommandID runs one-event Updates on a 50,000-event stream
// of a SQLite file with a snapshot every 100 events, without and with a
// (new, so never applied) command ID, deciding one event or two. A command
// ID must not make Update read the stream: with one event it costs nothing
// more; with two, one look-up of the command by event ID.
//
//	go test -run XXX -bench UpdateCommandID -benchtime 50x ./aggregate
func BenchmarkUpdateCommandID(b *testing.B) {
	store := openSQLite(b, filepath.Join(b.TempDir(), "events.db"))
	repo := newRepo(b, store, aggregate.Config[Counter, CounterEvent]{
		Evolve: countOnly, SnapshotEvery: 100, SnapshotSchema: "counter.v1",
	})
	ctx := b.Context()
	a, err := repo.Load(ctx, "long")
	if err != nil {
		b.Fatal(err)
	}
	for i := range updateBenchEvents {
		a.Record(Added{By: int64(i)})
	}
	if err := repo.Save(ctx, a); err != nil { // snapshots at 50,000
		b.Fatal(err)
	}
	one := func(Counter) ([]CounterEvent, error) { return []CounterEvent{Added{By: 1}}, nil }
	two := func(Counter) ([]CounterEvent, error) { return []CounterEvent{Added{By: 1}, Added{By: 2}}, nil }
	none := func() aggregate.CallOption { return nil }
	// n counts the commands across sub-benchmarks, so every one is new.
	n := 0
	cmd := func() aggregate.CallOption { n++; return aggregate.WithCommandID("bench-" + strconv.Itoa(n)) }
	for _, bc := range []struct {
		name   string
		decide func(Counter) ([]CounterEvent, error)
		opt    func() aggregate.CallOption
	}{
		{"none", one, none},
		{"commandID", one, cmd},
		// Two events: the command is looked up before the append.
		{"none/2events", two, none},
		{"commandID/2events", two, cmd},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				before := a.Version()
				if a, err = repo.Update(ctx, "long", bc.decide, bc.opt()); err != nil {
					b.Fatal(err)
				}
				if a.Version() == before { // a retry: not what is measured
					b.Fatalf("Update stored nothing at version %d", before)
				}
			}
		})
	}
}
