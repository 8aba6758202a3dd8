package testsuite

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

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
		{"CloseWhileAppending", pair(testSharedCloseWhileAppending)},
	}
}

// testSharedIdempotency checks that idempotency is the database's, not a
// cache of one store: another store sees the IDs too.
func testSharedIdempotency(t *testing.T, a, b eventstore.Store) {
	batch := []eventstore.Event{evID("id-1", "t"), evID("id-2", "t")}
	first := mustAppend(t, a, "s", eventstore.NoStream, batch...)
	res, err := b.Append(ctxTimeout(t), "s", eventstore.NoStream, batch...)
	if err != nil {
		t.Fatalf("retry through the other store: %v", err)
	}
	want := eventstore.AppendResult{Version: 2, Position: first.Position, Duplicates: []eventstore.Duplicate{{Index: 0, ID: "id-1", Version: 1}, {Index: 1, ID: "id-2", Version: 2}}}
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
		read := readAll(t, c.reader, "s", eventstore.ReadOptions{From: eventstore.After(info.Version)})
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

// testSharedCloseWhileAppending closes store a while writers append to it
// (events without IDs, so that no idempotency hides an append stored
// twice, with Exact and Any expectations) and watchers follow it, then
// checks everything through b, which stands for the store opened again
// after Close. Every append either succeeded and is stored once where its
// result says, or failed with ErrClosed and stored nothing (ErrUnknownOutcome:
// all of it or nothing); an append made after Close returned fails; every
// watcher ends with ErrClosed, having yielded stored events only, in
// order. (The close-while-busy check of internal/torture, issue 10.)
func testSharedCloseWhileAppending(t *testing.T, a, b eventstore.Store) {
	const (
		writers = 4
		// Each writer stops after this many appends if Close has not come
		// yet, so that no watcher's buffer fills on a fast store.
		maxAppends = 200
	)
	from := eventstore.WatchOptions{From: eventstore.FromStart()}
	watchers := []*watcher{startWatch(t, a, eventstore.AllStreams, from), startWatch(t, a, "w0", from)}
	type attempt struct {
		data       string
		afterClose bool // made after Close had returned
		res        eventstore.AppendResult
		err        error
	}
	logs := make([][]attempt, writers) // one per writer
	closed := make(chan struct{})
	started := make(chan struct{}, writers)
	ctx := ctxTimeout(t)
	var wg sync.WaitGroup // the writers' outcomes are in logs, checked below
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprint("w", w)
			var version uint64
			for j := 0; ; j++ {
				var afterClose bool
				if j == maxAppends {
					<-closed
				}
				select {
				case <-closed:
					afterClose = true
				default:
				}
				expected := eventstore.Any
				if j%2 == 0 {
					expected = eventstore.Exact(version)
				}
				data := fmt.Sprint(w, "/", j)
				res, err := a.Append(ctx, stream, expected, ev("t", data+" a"), ev("t", data+" b"))
				logs[w] = append(logs[w], attempt{data, afterClose, res, err})
				if j == 0 {
					started <- struct{}{}
				}
				if err != nil || afterClose {
					return
				}
				version = res.Version
			}
		})
	}
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for range writers {
		select {
		case <-started:
		case <-timeout.C:
			t.Fatalf("the writers did not make their first appends within %v", waitTimeout)
		}
	}
	if err := closeWithin(t, a); err != nil {
		t.Errorf("Close while appending: %v", err)
	}
	close(closed)
	wait := make(chan struct{})
	go func() {
		wg.Wait()
		close(wait)
	}()
	select {
	case <-wait:
	case <-timeout.C:
		t.Fatalf("the appends in flight did not end within %v of Close", waitTimeout)
	}

	stored := make(map[string][]eventstore.Recorded) // by data
	all := readAll(t, b, eventstore.AllStreams, eventstore.ReadOptions{})
	for _, r := range all {
		stored[string(r.Data)] = append(stored[string(r.Data)], r)
	}
	accounted := 0
	for w, log := range logs {
		for _, at := range log {
			first, second := stored[at.data+" a"], stored[at.data+" b"]
			what := fmt.Sprintf("writer %d, append %s", w, at.data)
			if at.afterClose {
				what += " (made after Close returned)"
			}
			switch {
			case at.err == nil && at.afterClose:
				t.Errorf("%s succeeded (%+v), want ErrClosed", what, at.res)
			case at.err == nil:
				if len(first) != 1 || len(second) != 1 {
					t.Errorf("%s succeeded (%+v), but its events are stored %d and %d times, want once", what, at.res, len(first), len(second))
					continue
				}
				if at.res.Version != second[0].Version || at.res.Position != second[0].Position || first[0].Version+1 != second[0].Version {
					t.Errorf("%s: result %+v, but its events are stored at versions %d, %d and positions %d, %d",
						what, at.res, first[0].Version, second[0].Version, first[0].Position, second[0].Position)
				}
			case errors.Is(at.err, eventstore.ErrClosed):
				if len(first)+len(second) != 0 {
					t.Errorf("%s failed with %v, but its events are stored (%d and %d times): ErrClosed must mean nothing was written", what, at.err, len(first), len(second))
				}
			case errors.Is(at.err, eventstore.ErrUnknownOutcome):
				if len(first) > 1 || len(first) != len(second) {
					t.Errorf("%s failed with %v, and its events are stored %d and %d times, want both once or neither", what, at.err, len(first), len(second))
				}
			default:
				t.Errorf("%s: %v, want success, ErrClosed or ErrUnknownOutcome", what, at.err)
			}
			accounted += min(len(first), 1) + min(len(second), 1)
		}
		got := versions(readAll(t, b, fmt.Sprint("w", w), eventstore.ReadOptions{}))
		if diff := cmp.Diff(span(1, uint64(len(got))), got); len(got) > 0 && diff != "" {
			t.Errorf("writer %d's stream: versions not dense from 1 (-want +got):\n%s", w, diff)
		}
	}
	if accounted != len(all) {
		t.Errorf("the store holds %d events, of which the writers' appends account for %d", len(all), accounted)
	}
	for i, w := range watchers {
		err := w.end(t)
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("%s ended with %v at Close, want ErrClosed", w.name, err)
		}
		got := w.drain()
		want := all
		if i == 1 {
			want = readAll(t, b, "w0", eventstore.ReadOptions{})
		}
		if len(got) > len(want) {
			t.Errorf("%s yielded %d events, but the store holds %d", w.name, len(got), len(want))
			continue
		}
		wantSame(t, w.name+" up to Close", want[:len(got)], got)
	}
	// The database is not harmed: the other store appends and reads on.
	res := mustAppend(t, b, "w0", eventstore.Any, ev("t", "after Close"))
	wantVersion(t, b, "w0", res.Version)
}
