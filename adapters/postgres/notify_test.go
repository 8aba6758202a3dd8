package postgres

import (
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// TestOwnAppendsNotReportedAsOthers: the store's own appends are never
// reported to the front as appends of others (which wakes every watcher
// of the store, not only those of the streams written), even once the
// listener has received the appends' own NOTIFYs; another store's append
// is. The front wakes the watchers of its own appends itself: a watch of
// the stream written sees them all.
func TestOwnAppendsNotReportedAsOthers(t *testing.T) {
	schema := freshSchema(t)
	s := openStore(t, schema, WithoutPoll())
	waitListening(t, s)
	w := startWatch(t, s, "a", eventstore.WatchOptions{From: eventstore.FromStart()})

	const appends = 20
	notes, changes := s.d.notes.Load(), s.d.changes.Load()
	for i := range appends {
		if _, err := s.Append(t.Context(), "a", eventstore.Exact(uint64(i)), evt("x")); err != nil {
			t.Fatal(err)
		}
	}
	w.next(t, appends)
	waitFor(t, "the listener to receive the appends' notifications", func() (bool, error) {
		return s.d.notes.Load() >= notes+appends, nil
	})
	if got := s.d.changes.Load(); got != changes {
		t.Fatalf("%d own appends reported %d changes by others, want none", appends, got-changes)
	}

	other := openStore(t, schema, WithoutListen(), WithoutPoll())
	if _, err := other.Append(t.Context(), "c", eventstore.Any, evt("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "another store's append reported", func() (bool, error) {
		return s.d.changes.Load() > changes, nil
	})
}

// waitListening waits until s's listener has (re)subscribed.
func waitListening(t *testing.T, s *Store) {
	t.Helper()
	select {
	case <-s.d.listening:
	case <-time.After(waitTimeout):
		t.Fatalf("listener not subscribed within %v", waitTimeout)
	}
}
