package watch_test

import (
	"context"
	"errors"
	"testing"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/watch"
)

// Hub.Notify and NotifyAll close the channels before they return, so the
// tests check at once (isClosed), with no wait.
func TestHubNotifyWakesOnlyNamedStreamsAndAll(t *testing.T) {
	h := watch.NewHub()
	na, releaseA := h.Watch("a")
	defer releaseA()
	nb, releaseB := h.Watch("b")
	defer releaseB()
	all, releaseAll := h.Watch(eventstore.AllStreams)
	defer releaseAll()
	if all != h.All() {
		t.Fatal("Watch(AllStreams) is not All()")
	}
	ca, cb, call := na.Changed(), nb.Changed(), all.Changed()

	h.Notify([]string{"a", "unwatched"})
	if !isClosed(ca) || !isClosed(call) {
		t.Fatal("Notify(a) did not wake the watchers of a and of AllStreams")
	}
	if isClosed(cb) {
		t.Fatal("Notify(a) woke the watchers of b")
	}

	h.NotifyAll()
	if !isClosed(cb) {
		t.Fatal("NotifyAll did not wake the watchers of b")
	}
}

func TestHubSharesAStreamNotifierWhileWatched(t *testing.T) {
	h := watch.NewHub()
	n1, release1 := h.Watch("s")
	n2, release2 := h.Watch("s")
	if n1 != n2 {
		t.Fatal("two watches of one stream got different Notifiers")
	}
	release1()
	release2()
	n3, release3 := h.Watch("s")
	defer release3()
	if n3 == n1 {
		t.Fatal("a stream's Notifier outlived its last watch")
	}
}

func TestHubCloseEndsPresentAndFutureWatches(t *testing.T) {
	h := watch.NewHub()
	n, release := h.Watch("s")
	defer release()
	h.Close()
	if !n.Closed() || !h.All().Closed() {
		t.Fatal("Close left a Notifier open")
	}
	later, releaseLater := h.Watch("t")
	defer releaseLater()
	if !later.Closed() {
		t.Fatal("Watch after Close returned an open Notifier")
	}
	_, err := eventstore.Collect(watch.Follow(t.Context(), later, 0, func(_ context.Context, _ uint64, _ int) ([]eventstore.Recorded, error) {
		return nil, nil
	}, func(r eventstore.Recorded) uint64 { return r.Version }, watch.FollowPageSize))
	if !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Follow on a closed hub ended with %v, want ErrClosed", err)
	}
}

func TestHubReleaseTwiceKeepsOtherWatches(t *testing.T) {
	h := watch.NewHub()
	_, releaseA := h.Watch("s")
	nb, releaseB := h.Watch("s")
	defer releaseB()
	releaseA()
	releaseA() // a second call must not drop B's reference
	changed := nb.Changed()
	h.Notify([]string{"s"})
	if !isClosed(changed) {
		t.Fatal("a double release dropped another watch of the stream: Notify no longer wakes it")
	}
}
