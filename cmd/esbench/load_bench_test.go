package main

import (
	"context"
	"os"
	"testing"

	"github.com/esv2/esv2/eventstore"
)

// BenchmarkLoadSides times load_aggregate's two sides on one SQLite file
// of 20,000 counter events, as esbench builds them: Repository.Load of the
// counter (side=library) and the bare driver's read (side=driver). Their
// ratio is load_aggregate's on a quiet machine; for counts that do not
// depend on the machine's load, run each side under callgrind with
// -test.benchtime 1x and 5x on a database file kept between runs
// (ESBENCH_LOAD_DB; made by the first run): a quarter of the difference is
// one load's instructions, setup excluded.
//
//	go test -c -o /tmp/esbench.test ./cmd/esbench
//	export ESBENCH_LOAD_DB=/tmp/loadsides.db GODEBUG=asyncpreemptoff=1
//	/tmp/esbench.test -test.run '^$' -test.bench LoadSides -test.benchtime 1x
//	valgrind --tool=callgrind /tmp/esbench.test -test.run '^$' \
//		-test.bench 'LoadSides/side=library$' -test.benchtime 1x   # then 5x, and side=driver
//
// (asyncpreemptoff: callgrind fails on the runtime's preemption signals.)
func BenchmarkLoadSides(b *testing.B) {
	const events = 20_000
	ctx := context.Background()
	cfg := defaultConfig()
	cfg.path = os.Getenv("ESBENCH_LOAD_DB") // reused when it exists
	if cfg.path == "" {
		cfg.path = b.TempDir() + "/events.db"
	}
	_, statErr := os.Stat(cfg.path)
	e, err := openSQLite(ctx, &cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := e.cleanup(); err != nil {
			b.Error(err)
		}
	})
	const stream = "bench-load"
	for n := 0; n < events && statErr != nil; n += 1000 {
		evs, _, err := counterEvents(1000)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.store.Append(ctx, stream, eventstore.Exact(uint64(n)), evs...); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("side=library", func(b *testing.B) {
		repo, err := newCounterRepoWith(e.store, 0, evolve, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			a, err := repo.Load(ctx, stream)
			if err != nil || a.State().N != events {
				b.Fatal(a, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
	})
	b.Run("side=driver", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n, err := e.drv.read(ctx, stream, 1, func(uint64, string, []byte) error { return nil })
			if err != nil || n != events {
				b.Fatal(n, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
	})
}
