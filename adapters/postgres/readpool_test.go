package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esv2/esv2/eventstore"
)

// TestAppendInsideReadSmallPool: a loop body that appends while a Read
// is under way does not need a connection of its own on top of the
// read's. With a pool of 2 connections, 4 readers each copying a stream
// (several pages) event by event into another stream all finish: the
// read holds no connection while its loop body runs. Before reads were
// paged, the readers held both connections and the writer waited for one
// forever, holding up every append.
func TestAppendInsideReadSmallPool(t *testing.T) {
	schema := freshSchema(t)
	cfg, err := pgxpool.ParseConfig(testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := New(t.Context(), pool, WithSchema(schema), WithMigrate(), WithoutListen(), WithoutPoll())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeOK(t, s) })

	const n = 200 // several pages: the front's first holds 64 rows
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = evt(fmt.Sprint(i))
	}
	if _, err := s.Append(t.Context(), "src", eventstore.NoStream, evs...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	const readers = 4
	errs := make(chan error, readers)
	var wg sync.WaitGroup
	for g := range readers {
		wg.Go(func() {
			dst := fmt.Sprint("dst-", g)
			for r, err := range s.Read(ctx, "src", eventstore.ReadOptions{}) {
				if err != nil {
					errs <- fmt.Errorf("reader %d: read: %w", g, err)
					return
				}
				if _, err := s.Append(ctx, dst, eventstore.ExpectedVersion(r.Version-1), eventstore.Event{Type: r.Type}); err != nil {
					errs <- fmt.Errorf("reader %d: append of event %d inside the read: %w", g, r.Version, err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(45 * time.Second):
		t.Fatal("readers appending inside their loop did not finish within 45s")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for g := range readers {
		info, err := s.Info(t.Context(), fmt.Sprint("dst-", g))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(uint64(n), info.Version); diff != "" {
			t.Errorf("dst-%d version (-want +got):\n%s", g, diff)
		}
	}
}

// TestReadPages: reads spanning many pages (fetched ahead from the large
// ones on), forwards and backwards, with and without a limit, yield each
// event once, in order.
func TestReadPages(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	const n = 6000
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = evt("x")
	}
	if _, err := s.Append(t.Context(), "s", eventstore.NoStream, evs...); err != nil {
		t.Fatal(err)
	}
	waitAnnounced(t, s)                  // its connection is not the reads'
	seq := func(from, to int) []uint64 { // from..to inclusive, either way
		var out []uint64
		for v := from; ; {
			out = append(out, uint64(v))
			if v == to {
				return out
			}
			if from < to {
				v++
			} else {
				v--
			}
		}
	}
	for _, tc := range []struct {
		name   string
		stream string
		opts   eventstore.ReadOptions
		want   []uint64
	}{
		{"forwards", "s", eventstore.ReadOptions{}, seq(1, n)},
		{"forwards from", "s", eventstore.ReadOptions{From: eventstore.After(99)}, seq(100, n)},
		{"forwards limit", "s", eventstore.ReadOptions{From: eventstore.After(1), Limit: 5000}, seq(2, 5001)},
		{"backwards", "s", eventstore.ReadOptions{Backwards: true}, seq(n, 1)},
		{"backwards from limit", "s", eventstore.ReadOptions{Backwards: true, From: eventstore.After(5501), Limit: 4000}, seq(5500, 1501)},
		{"all", eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(6)}, seq(7, n)},
		{"all backwards", eventstore.AllStreams, eventstore.ReadOptions{Backwards: true}, seq(n, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := eventstore.Collect(s.Read(t.Context(), tc.stream, tc.opts))
			if err != nil {
				t.Fatal(err)
			}
			keys := make([]uint64, len(got))
			for i, r := range got {
				keys[i] = r.Version
				if tc.stream == eventstore.AllStreams {
					keys[i] = r.Position
				}
			}
			if diff := cmp.Diff(tc.want, keys); diff != "" {
				t.Errorf("keys read (-want +got):\n%s", diff)
			}
		})
	}
	// Leaving a read inside a page fetched ahead ends its goroutine
	// (goleak checks) and releases every connection.
	k := 0
	for _, err := range s.Read(t.Context(), "s", eventstore.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if k++; k == 2000 {
			break
		}
	}
	if got := s.d.pool.Stat().AcquiredConns(); got != 0 {
		t.Errorf("after break: %d connections acquired, want 0", got)
	}
}
