package postgres

import (
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// TestOwnAppendsWakeOnlyTheirStreams: the store's own appends wake the
// watchers of the streams they wrote, never those of other streams, even
// once the listener has received the appends' own NOTIFYs (which it must
// not take for another process's appends); another store's append wakes
// everyone.
func TestOwnAppendsWakeOnlyTheirStreams(t *testing.T) {
	schema := freshSchema(t)
	s := openStore(t, schema)
	select {
	case <-s.listening:
	case <-time.After(waitTimeout):
		t.Fatal("the listener did not subscribe")
	}
	na, releaseA := s.notifiers.Watch("a")
	defer releaseA()
	nb, releaseB := s.notifiers.Watch("b")
	defer releaseB()
	closed := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}

	const appends = 20
	notes := s.notes.Load()
	chB := nb.Changed()
	for i := range appends {
		chA := na.Changed()
		if _, err := s.Append(t.Context(), "a", eventstore.Exact(uint64(i)), evt("x")); err != nil {
			t.Fatal(err)
		}
		if !closed(chA) {
			t.Fatalf("append %d to a did not wake a's watchers", i)
		}
	}
	waitFor(t, "the listener to receive the appends' notifications", func() (bool, error) {
		return s.notes.Load() >= notes+appends, nil
	})
	if closed(chB) {
		t.Fatal("appends to a woke the watchers of b")
	}

	other := openStore(t, schema, WithoutListen(), WithPollInterval(0))
	if _, err := other.Append(t.Context(), "c", eventstore.Any, evt("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-chB:
	case <-time.After(waitTimeout):
		t.Fatal("another store's append did not wake the watchers of b")
	}
}
