package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
)

// BenchmarkReadUnderAppendLoad measures reads (Info and a short Read, in
// turn) while 128 goroutines append single events as fast as the store
// takes them, optionally with 64 watchers following the appenders'
// streams: the workload of issue 9 item 2, where the in-memory store's
// reads failed with ErrBusy and their p99 was 40 times the file store's.
// The memory and file stores run as sub-benchmarks of one invocation, so
// that their figures come from the same run on the same machine:
//
//	go test -run '^$' -bench ReadUnderAppendLoad -benchtime 10s ./adapters/sqlite
//
// It reports read-p50-ms and read-p99-ms, read-busy (reads and watches
// that failed with ErrBusy; the issue requires 0), append-busy and
// appends/s.
func BenchmarkReadUnderAppendLoad(b *testing.B) {
	for _, watchers := range []int{0, 64} {
		for _, kind := range []string{"memory", "file"} {
			b.Run(fmt.Sprintf("store=%s/watchers=%d", kind, watchers), func(b *testing.B) {
				path := ""
				if kind == "file" {
					path = filepath.Join(b.TempDir(), "load.db")
				}
				s, err := sqlite.Open(b.Context(), path)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				readUnderLoad(b, s, 128, watchers)
			})
		}
	}
}

func readUnderLoad(b *testing.B, s *sqlite.Store, appenders, watchers int) {
	ctx, stop := context.WithCancel(b.Context())
	defer stop()
	var (
		readBusy, appendBusy, appended atomic.Int64
		bg                             sync.WaitGroup
		errMu                          sync.Mutex
		firstErr                       error
	)
	fail := func(busy *atomic.Int64, err error) {
		if errors.Is(err, sqlite.ErrBusy) {
			busy.Add(1)
			return
		}
		if ctx.Err() != nil {
			return
		}
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		stop()
	}
	stream := func(i int) string { return fmt.Sprintf("load-%d", i) }
	ev := eventstore.Event{Type: "t", Data: make([]byte, 100)}
	// Every stream has events before the clock starts, so that reads
	// find some.
	for i := range appenders {
		if _, err := s.Append(ctx, stream(i), eventstore.Any, ev, ev, ev); err != nil {
			b.Fatal(err)
		}
	}
	for i := range appenders {
		bg.Go(func() {
			for ctx.Err() == nil {
				if _, err := s.Append(ctx, stream(i), eventstore.Any, ev); err != nil {
					fail(&appendBusy, err)
					continue
				}
				appended.Add(1)
			}
		})
	}
	for i := range watchers {
		bg.Go(func() {
			for ctx.Err() == nil {
				for _, err := range s.Watch(ctx, stream(i), eventstore.WatchOptions{From: eventstore.FromEnd()}) {
					if err != nil {
						fail(&readBusy, err)
						break
					}
				}
			}
		})
	}

	// The clock starts once the appenders are in full flow.
	for appended.Load() < int64(2*appenders) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	var (
		latMu sync.Mutex
		lat   []time.Duration
		next  atomic.Int64
	)
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	startAppended := appended.Load()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			i := int(next.Add(1))
			id := stream(i % appenders)
			t0 := time.Now()
			var err error
			if i%2 == 0 {
				_, err = s.Info(ctx, id)
			} else {
				for _, e := range s.Read(ctx, id, eventstore.ReadOptions{Limit: 20}) {
					if e != nil {
						err = e
						break
					}
				}
			}
			mine = append(mine, time.Since(t0))
			if err != nil {
				fail(&readBusy, err)
			}
		}
		latMu.Lock()
		lat = append(lat, mine...)
		latMu.Unlock()
	})
	b.StopTimer()
	elapsed := time.Since(start)
	rate := float64(appended.Load()-startAppended) / elapsed.Seconds()
	stop()
	bg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "read-p50-ms")
	b.ReportMetric(pct(0.99), "read-p99-ms")
	b.ReportMetric(float64(readBusy.Load()), "read-busy")
	b.ReportMetric(float64(appendBusy.Load()), "append-busy")
	b.ReportMetric(rate, "appends/s")
}

// BenchmarkWALAfterLongReader is the workload of issue 9 item 5: a foreign
// connection holds a read transaction for 20 s while 16 goroutines append
// 1 KiB events, then leaves; the appends go on for 5 s more, then stop. It
// reports the WAL's size at the reader's release (wal-peak-MB), 5 s later
// while appends continue (wal-busy-MB), and 5 s after the appends stopped
// (wal-idle-MB). Run it once:
//
//	go test -run '^$' -bench WALAfterLongReader -benchtime 1x ./adapters/sqlite
func BenchmarkWALAfterLongReader(b *testing.B) {
	const hold, after = 20 * time.Second, 5 * time.Second
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "wal.db")
		s, err := sqlite.Open(b.Context(), path)
		if err != nil {
			b.Fatal(err)
		}
		ctx := b.Context()
		if _, err := s.Append(ctx, "s-0", eventstore.Any, eventstore.Event{Type: "t"}); err != nil {
			b.Fatal(err)
		}
		db, err := sql.Open("sqlite", path)
		if err != nil {
			b.Fatal(err)
		}
		reader, err := db.Conn(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var n int
		if _, err := reader.ExecContext(ctx, "BEGIN"); err != nil {
			b.Fatal(err)
		}
		if err := reader.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil {
			b.Fatal(err)
		}
		appendCtx, stop := context.WithCancel(ctx)
		var g sync.WaitGroup
		ev := eventstore.Event{Type: "t", Data: make([]byte, 1024)}
		for i := range 16 {
			g.Go(func() {
				for appendCtx.Err() == nil {
					_, _ = s.Append(appendCtx, fmt.Sprintf("s-%d", i), eventstore.Any, ev)
				}
			})
		}
		walMB := func() float64 {
			fi, err := os.Stat(path + "-wal")
			if err != nil {
				return 0
			}
			return float64(fi.Size()) / (1 << 20)
		}
		time.Sleep(hold)
		peak := walMB()
		if _, err := reader.ExecContext(ctx, "COMMIT"); err != nil {
			b.Fatal(err)
		}
		_ = reader.Close()
		_ = db.Close()
		time.Sleep(after)
		busy := walMB()
		stop()
		g.Wait()
		time.Sleep(after)
		idle := walMB()
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(peak, "wal-peak-MB")
		b.ReportMetric(busy, "wal-busy-MB")
		b.ReportMetric(idle, "wal-idle-MB")
	}
}
