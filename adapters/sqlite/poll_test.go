package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// TestPollerWakeAfterLargeBatch lands another process's commit in the
// poller's window of issue 9 item 6: after it woke every watcher for a
// large foreign batch (pollBatch events), before it recorded what it had
// seen. A watcher that read before that commit must still be woken for it.
// Before the fix the poller read the head after waking, counted the commit
// as seen, and never woke anyone for it.
func TestPollerWakeAfterLargeBatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "poll.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := Open(ctx, path) // stands for another process
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	n, release := s.notifiers.Watch("late")
	defer release()
	type hooked struct {
		changed <-chan struct{}
		err     error
	}
	inWindow := make(chan hooked, 1)
	hook := func() {
		// A watcher of "late" that has just read (the stream is still
		// empty) and waits again: it takes Changed before its read, as
		// eventstore.Follow does. Then the other process commits.
		changed := n.Changed()
		_, err := other.Append(ctx, "late", eventstore.NoStream, eventstore.Event{Type: "t"})
		s.poller.afterWakeAll.Store(nil)
		inWindow <- hooked{changed, err}
	}
	s.poller.afterWakeAll.Store(&hook)

	batch := make([]eventstore.Event, pollBatch)
	for i := range batch {
		batch[i] = eventstore.Event{Type: "t"}
	}
	if _, err := other.Append(ctx, "bulk", eventstore.NoStream, batch...); err != nil {
		t.Fatal(err)
	}
	var h hooked
	select {
	case h = <-inWindow:
	case <-ctx.Done():
		t.Fatal("the poller never woke every watcher for the large batch")
	}
	if h.err != nil {
		t.Fatalf("append in the window: %v", h.err)
	}
	wait, stop := context.WithTimeout(ctx, 5*time.Second) // a thousand poll intervals
	defer stop()
	select {
	case <-h.changed:
	case <-wait.Done():
		t.Fatal(`the watcher of "late" was never woken for the commit that landed while the poller woke everyone`)
	}
}
