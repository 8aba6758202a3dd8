package postgres

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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
