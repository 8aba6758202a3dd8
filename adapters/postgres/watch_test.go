package postgres

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
)

// TestWatchAcrossStores: a watcher on one store sees appends made through
// another store on the same schema (another process, in effect) by
// LISTEN/NOTIFY alone; the poll is off.
func TestWatchAcrossStores(t *testing.T) {
	schema := freshSchema(t)
	a := openStore(t, schema, WithoutPoll())
	b := openStore(t, schema, WithoutListen(), WithoutPoll())
	waitListening(t, a)
	w := startWatch(t, a, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()})

	var lat []time.Duration
	for i := range 20 {
		start := time.Now()
		if _, err := b.Append(t.Context(), "s", eventstore.Exact(uint64(i)), evt("x")); err != nil {
			t.Fatal(err)
		}
		got := w.next(t, 1)[0]
		lat = append(lat, time.Since(start))
		if got.Version != uint64(i+1) {
			t.Fatalf("watch yielded s@%d, want s@%d", got.Version, i+1)
		}
	}
	slices.Sort(lat)
	t.Logf("append-to-watch latency across stores (append included): median %v, worst %v", lat[len(lat)/2], lat[len(lat)-1])
	w.expectNothingBut(t, b)
}

// TestListenerReconnects: when the LISTEN connection is killed, the store
// reconnects and wakes its watchers, so an append made meanwhile by
// another store is delivered without the poll (which is off here).
func TestListenerReconnects(t *testing.T) {
	schema := freshSchema(t)
	a := openStore(t, schema, WithoutPoll())
	b := openStore(t, schema, WithoutListen(), WithoutPoll())
	waitListening(t, a)
	w := startWatch(t, a, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()})

	if _, err := b.Append(t.Context(), "s", eventstore.NoStream, evt("before")); err != nil {
		t.Fatal(err)
	}
	w.next(t, 1)

	pid := a.d.listenerPID.Load()
	if pid == 0 {
		t.Fatal("listener PID unknown")
	}
	var killed bool
	if err := b.d.pool.QueryRow(t.Context(), "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, killed, err)
	}
	// Appended while the listener is down (or before it notices): its
	// NOTIFY reaches no one.
	if _, err := b.Append(t.Context(), "s", eventstore.Exact(1), evt("during")); err != nil {
		t.Fatal(err)
	}
	waitListening(t, a)
	if got := a.Stats().ListenerConnects; got != 2 {
		t.Errorf("Stats().ListenerConnects = %d after one reconnection, want 2", got)
	}
	if got := a.d.listenerPID.Load(); got == pid || got == 0 {
		t.Errorf("listener PID after reconnect = %d, want a new one (old %d)", got, pid)
	}
	// Nothing else is appended and the poll is off: only the listener's
	// wake-up after reconnecting can deliver this one.
	if diff := cmp.Diff([]string{"s@2"}, streamsOf(w.next(t, 1))); diff != "" {
		t.Errorf("watch after reconnect (-want +got):\n%s", diff)
	}
	if _, err := b.Append(t.Context(), "s", eventstore.Exact(2), evt("after")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"s@3"}, streamsOf(w.next(t, 1))); diff != "" {
		t.Errorf("watch of a NOTIFY after reconnect (-want +got):\n%s", diff)
	}
	w.expectNothingBut(t, b)
}

// TestPollWithoutListen: with LISTEN off, the poll alone carries appends
// of another store to watchers.
func TestPollWithoutListen(t *testing.T) {
	schema := freshSchema(t)
	a := openStore(t, schema, WithoutListen(), WithPollInterval(20*time.Millisecond))
	b := openStore(t, schema, WithoutListen(), WithoutPoll())
	w := startWatch(t, a, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()})
	if _, err := b.Append(t.Context(), "s", eventstore.NoStream, evt("x"), evt("y")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"s@1", "s@2"}, streamsOf(w.next(t, 2))); diff != "" {
		t.Errorf("watch (-want +got):\n%s", diff)
	}
}

// TestCloseEndsWatchers: Close ends watchers with ErrClosed, refuses
// further calls, and is idempotent.
func TestCloseEndsWatchers(t *testing.T) {
	s := newTestStore(t)
	w := startWatch(t, s, "s", eventstore.WatchOptions{})
	waitListening(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-w.errs:
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("watch ended with %v, want ErrClosed", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("watch did not end after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Append(t.Context(), "s", eventstore.Any, evt("x")); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Info(t.Context(), "s"); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Info after Close: %v, want ErrClosed", err)
	}
}

// TestWatchFiltered: a filtered watch of all streams, running while
// writers append matching events among others, yields every matching
// event once, in order, and nothing else: the same as a filtered read
// afterwards.
func TestWatchFiltered(t *testing.T) {
	s := newTestStore(t)
	filter := eventstore.Filter{Types: []string{"match"}, StreamPrefix: "w-"}
	w := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart(), Filter: filter})
	const writers, perWriter = 4, 60
	var g errgroup.Group
	for i := range writers {
		g.Go(func() error {
			for j := range perWriter {
				typ := "other"
				if j%3 == 0 {
					typ = "match"
				}
				if _, err := s.Append(t.Context(), fmt.Sprintf("w-%d", i), eventstore.Any, evt(typ)); err != nil {
					return err
				}
				if _, err := s.Append(t.Context(), fmt.Sprintf("x-%d", i), eventstore.Any, evt("match")); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	want, err := eventstore.Collect(s.Read(t.Context(), eventstore.AllStreams, eventstore.ReadOptions{Filter: filter}))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != writers*perWriter/3 {
		t.Fatalf("filtered read returned %d events, want %d", len(want), writers*perWriter/3)
	}
	got := w.next(t, len(want))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("filtered watch vs filtered read (-read +watch):\n%s", diff)
	}
	// A matching event after many that do not match still arrives, alone.
	for range 10 {
		if _, err := s.Append(t.Context(), "w-late", eventstore.Any, evt("other")); err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.Append(t.Context(), "w-late", eventstore.Any, evt("match"))
	if err != nil {
		t.Fatal(err)
	}
	if last := w.next(t, 1)[0]; last.Position != res.Position {
		t.Errorf("watch yielded %s@%d at %d, want w-late@%d at %d", last.StreamID, last.Version, last.Position, res.Version, res.Position)
	}
}

// TestPollWakesOnlyOnChange: the poll reports a change when another store
// moved the head, and not on the polls in between.
func TestPollWakesOnlyOnChange(t *testing.T) {
	schema := freshSchema(t)
	a := openStore(t, schema, WithoutListen(), WithPollInterval(5*time.Millisecond))
	b := openStore(t, schema, WithoutListen(), WithoutPoll())
	waitPolls := func(n uint64) {
		t.Helper()
		target := a.d.polls.Load() + n
		waitFor(t, "polls", func() (bool, error) { return a.d.polls.Load() >= target, nil })
	}
	waitPolls(1)
	changes := a.d.changes.Load()
	waitPolls(5)
	if got := a.d.changes.Load(); got != changes {
		t.Fatalf("the poll reported %d changes although the head did not move", got-changes)
	}
	if _, err := b.Append(t.Context(), "s", eventstore.Any, evt("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the poll reports the other store's append", func() (bool, error) {
		return a.d.changes.Load() > changes, nil
	})
}
