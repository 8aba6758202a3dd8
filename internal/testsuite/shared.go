package testsuite

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
)

// PairFactory returns two stores open on one new, empty database, as two
// processes of an application would each open it. Both are closed in
// t.Cleanup by the factory.
type PairFactory = func(t *testing.T) (a, b eventstore.Store)

func sharedTests(newPair PairFactory) []test {
	pair := func(fn func(t *testing.T, a, b eventstore.Store)) func(t *testing.T, _ Factory) {
		return func(t *testing.T, _ Factory) {
			t.Helper()
			a, b := newPair(t)
			if a == nil || b == nil {
				t.Fatal("pair factory returned a nil store")
			}
			fn(t, a, b)
		}
	}
	return []test{
		{"IdempotencyAcrossStores", pair(testSharedIdempotency)},
		{"ConflictAcrossStores", pair(testSharedConflict)},
		{"WatchWokenByOtherStore", pair(testSharedWatch)},
		{"ConcurrentWritersOneOrder", pair(testSharedOrder)},
		{"Snapshots", pair(testSharedSnapshots)},
	}
}

// testSharedIdempotency checks that idempotency is the database's, not a
// cache of one store: another store sees the IDs too.
func testSharedIdempotency(t *testing.T, a, b eventstore.Store) {
	batch := []eventstore.Event{evID("id-1", "t"), evID("id-2", "t")}
	mustAppend(t, a, "s", eventstore.NoStream, batch...)
	res, err := b.Append(ctxTimeout(t), "s", eventstore.NoStream, batch...)
	if err != nil {
		t.Fatalf("retry through the other store: %v", err)
	}
	want := eventstore.AppendResult{Version: 2, Duplicates: []eventstore.Duplicate{{Index: 0, ID: "id-1", Version: 1}, {Index: 1, ID: "id-2", Version: 2}}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("retry through the other store: result mismatch (-want +got):\n%s", diff)
	}
	_, err = b.Append(ctxTimeout(t), "other", eventstore.Any, evID("id-3", "t"), evID("id-1", "t"))
	if !errors.Is(err, eventstore.ErrIdempotency) {
		t.Errorf("ID stored through one store, appended to another stream through the other: %v, want ErrIdempotency", err)
	}
	wantVersion(t, a, "other", 0)
	wantVersion(t, b, "s", 2)
}

func testSharedConflict(t *testing.T, a, b eventstore.Store) {
	mustAppend(t, a, "s", eventstore.NoStream, ev("t", "a1"))
	_, err := b.Append(ctxTimeout(t), "s", eventstore.NoStream, ev("t", "b1"))
	wantConflict(t, err, "s", eventstore.NoStream, 1)
	mustAppend(t, b, "s", eventstore.Exact(1), ev("t", "b2"))
	_, err = a.Append(ctxTimeout(t), "s", eventstore.Exact(1), ev("t", "a2"))
	wantConflict(t, err, "s", eventstore.Exact(1), 2)

	// Racing writers, one per store: exactly one wins each round.
	stores := []eventstore.Store{a, b}
	for round := range 5 {
		at := uint64(2 + round)
		start := make(chan struct{})
		results := make([]error, len(stores)) // one slot per writer
		g, ctx := errgroup.WithContext(ctxTimeout(t))
		for i, s := range stores {
			g.Go(func() error {
				<-start
				_, err := s.Append(ctx, "s", eventstore.Exact(at), ev("t", fmt.Sprint("round ", round, " store ", i)))
				if err != nil && !errors.Is(err, eventstore.ErrConcurrency) {
					return fmt.Errorf("store %d: %w", i, err)
				}
				results[i] = err
				return nil
			})
		}
		close(start)
		if err := g.Wait(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if (results[0] == nil) == (results[1] == nil) {
			t.Fatalf("round %d at Exact(%d): errors %v, want exactly one winner", round, at, results)
		}
	}
	wantVersion(t, a, "s", 7)
}

// testSharedWatch checks that a watch is woken by appends made through
// another store only (by the notifier's own detection: polling, LISTEN ...).
func testSharedWatch(t *testing.T, a, b eventstore.Store) {
	mustAppend(t, a, "s", eventstore.NoStream, ev("t", "1"))
	from := eventstore.WatchOptions{From: eventstore.FromStart()}
	for _, c := range []struct {
		name           string
		writer, reader eventstore.Store
	}{
		{"a to b", a, b},
		{"b to a", b, a},
	} {
		ws := []*watcher{startWatch(t, c.reader, "s", from), startWatch(t, c.reader, eventstore.AllStreams, from)}
		info := info(t, c.reader, "s")
		for _, w := range ws {
			w.next(t, int(info.Version)) // caught up, now live
		}
		for i := range 3 {
			mustAppend(t, c.writer, "s", eventstore.Any, ev("t", fmt.Sprint(c.name, " ", i)))
		}
		read := readAll(t, c.reader, "s", eventstore.ReadOptions{From: info.Version + 1})
		for _, w := range ws {
			wantSame(t, c.name+": "+w.name, read, w.next(t, len(read)))
			w.stop(t)
		}
	}
}

// testSharedOrder has writers on both stores and checks that both see one
// global order, the same through reads and watches.
func testSharedOrder(t *testing.T, a, b eventstore.Store) {
	const appends = 30
	from := eventstore.WatchOptions{From: eventstore.FromStart()}
	wa, wb := startWatch(t, a, eventstore.AllStreams, from), startWatch(t, b, eventstore.AllStreams, from)
	// Both watchers are live before the writers start.
	mustAppend(t, a, "marker", eventstore.NoStream, ev("t", "marker"))
	marks := append(wa.next(t, 1), wb.next(t, 1)...)
	g, ctx := errgroup.WithContext(ctxTimeout(t))
	for i, s := range []eventstore.Store{a, a, b, b} {
		g.Go(func() error {
			for j := range appends {
				if _, err := s.Append(ctx, fmt.Sprint("w", i), eventstore.Any, numbered(1+j%2, "t", fmt.Sprint(i, "/", j))...); err != nil {
					return fmt.Errorf("writer %d: %w", i, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	readA := readAll(t, a, eventstore.AllStreams, eventstore.ReadOptions{})
	checkPositions(t, readA, false)
	wantSame(t, "Read(AllStreams) through the other store", readA, readAll(t, b, eventstore.AllStreams, eventstore.ReadOptions{}))
	wantSame(t, "markers", []eventstore.Recorded{readA[0], readA[0]}, marks)
	readA = readA[1:]
	wantSame(t, "watch through a", readA, wa.next(t, len(readA)))
	wantSame(t, "watch through b", readA, wb.next(t, len(readA)))
	wa.stop(t)
	wb.stop(t)
}

func testSharedSnapshots(t *testing.T, a, b eventstore.Store) {
	grow(t, a, "s", 4)
	snap := eventstore.Snapshot{StreamID: "s", Name: "m", Version: 4, Schema: "v1", Data: []byte("state")}
	save(t, a, snap)
	wantSnapshot(t, b, "s", "m", snap)
	if err := b.SaveSnapshot(ctxTimeout(t), eventstore.Snapshot{StreamID: "s", Name: "m", Version: 3}); err != nil {
		t.Fatalf("SaveSnapshot of an older version: %v", err)
	}
	wantSnapshot(t, a, "s", "m", snap)
}
