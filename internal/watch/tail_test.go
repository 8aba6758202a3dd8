package watch_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/watch"
)

// TestTailSlowWatcherFallsBehind: a watcher parked in its loop body while
// more than a Tail keeps is published leaves the Tail and reads alone from
// where it stopped, getting every event once, in order; the fast watcher
// beside it got every event meanwhile, from the Tail's reads only.
func TestTailSlowWatcherFallsBehind(t *testing.T) {
	n := watch.NewNotifier()
	tailLog := &fakeLog{} // the Tail's reads
	fastLog := &fakeLog{} // the watchers' own reads; fakeLogs share nothing, so
	slowLog := &fakeLog{} // each append goes to all three
	add := func(k int) {
		for _, l := range []*fakeLog{tailLog, fastLog, slowLog} {
			l.add(k)
		}
		n.Notify()
	}
	head := func(context.Context) (uint64, error) {
		tailLog.mu.Lock()
		defer tailLog.mu.Unlock()
		return uint64(len(tailLog.events)), nil
	}
	tail := watch.NewTail(n, watch.TailSource{Head: head, NewRead: func() watch.PageFunc { return tailLog.page }, Key: version, Size: watch.FollowPageSize})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	add(1)

	fast := make(chan uint64, 1<<14)
	fastDone := make(chan error, 1)
	go func() {
		for r, err := range watch.FollowTail(ctx, n, tail, 0, fastLog.page, nil, nil, version, watch.FollowPageSize) {
			if err != nil {
				fastDone <- err
				return
			}
			fast <- r.Version
		}
		fastDone <- nil
	}()
	parked, release := make(chan struct{}), make(chan struct{})
	var slow []uint64
	slowDone := make(chan struct{})
	const batches, batch = 3 * watch.TailWindowEvents / 500, 500 // more than the Tail keeps
	total := 2 + batches*batch
	go func() {
		defer close(slowDone)
		for r, err := range watch.FollowTail(ctx, n, tail, 0, slowLog.page, nil, nil, version, watch.FollowPageSize) {
			if err != nil {
				t.Errorf("slow watcher: %v", err)
				return
			}
			slow = append(slow, r.Version)
			if r.Version == 2 {
				close(parked)
				<-release
			}
			if len(slow) == total {
				return
			}
		}
	}()
	want := func(ch <-chan uint64, from, to uint64) {
		t.Helper()
		for v := from; v <= to; v++ {
			select {
			case got := <-ch:
				if got != v {
					t.Fatalf("fast watcher got version %d, want %d", got, v)
				}
			case <-time.After(waitTimeout):
				t.Fatalf("fast watcher did not get version %d within %v", v, waitTimeout)
			}
		}
	}
	want(fast, 1, 1)
	add(1) // the slow watcher parks at it, alone or from the Tail
	want(fast, 2, 2)
	select {
	case <-parked:
	case <-time.After(waitTimeout):
		t.Fatal("slow watcher did not get version 2")
	}
	fastCalls, slowCalls := len(fastLog.pageCalls()), len(slowLog.pageCalls())
	for range batches {
		add(batch)
	}
	want(fast, 3, uint64(total))
	if got := len(fastLog.pageCalls()); got != fastCalls {
		t.Errorf("the fast watcher read %d pages itself at the head, want none", got-fastCalls)
	}
	close(release)
	<-slowDone
	if !slices.Equal(slow, span(1, uint64(total))) {
		t.Errorf("slow watcher got %d events, not versions 1 to %d in order: %v", len(slow), total, slow)
	}
	// It read alone from version 2, where it fell behind.
	if calls := slowLog.pageCalls()[slowCalls:]; len(calls) == 0 || calls[0] != 2 {
		t.Errorf("slow watcher's own reads after its release started after %v, want after 2", calls)
	}
	cancel()
	if err := <-fastDone; err != nil {
		t.Errorf("fast watcher: %v", err)
	}
}

func span(from, to uint64) []uint64 {
	var s []uint64
	for v := from; v <= to; v++ {
		s = append(s, v)
	}
	return s
}

// TestMatch: the in-memory filter of watchers at a Tail's head.
func TestMatch(t *testing.T) {
	r := eventstore.Recorded{StreamID: "acc-12", Event: eventstore.Event{Type: "A", Metadata: map[string]string{"tenant": "t_1", "empty": ""}}}
	for _, c := range []struct {
		f    eventstore.Filter
		want bool
	}{
		{eventstore.Filter{}, true},
		{eventstore.Filter{StreamPrefix: "acc-1"}, true},
		{eventstore.Filter{StreamPrefix: "acc-2"}, false},
		{eventstore.Filter{StreamPrefix: "ACC-"}, false},
		{eventstore.Filter{Types: []string{"B", "A"}}, true},
		{eventstore.Filter{Types: []string{"a"}}, false},
		{eventstore.Filter{Metadata: []eventstore.MetadataFilter{eventstore.MetadataEquals("tenant", "t_1")}}, true},
		{eventstore.Filter{Metadata: []eventstore.MetadataFilter{eventstore.MetadataEquals("tenant", "t%1")}}, false},
		{eventstore.Filter{Metadata: []eventstore.MetadataFilter{eventstore.MetadataOneOf("tenant", "x", "t_1")}}, true},
		{eventstore.Filter{Metadata: []eventstore.MetadataFilter{eventstore.MetadataHasPrefix("tenant", "t_")}}, true},
		{eventstore.Filter{Metadata: []eventstore.MetadataFilter{eventstore.MetadataHasPrefix("tenant", "t%")}}, false},
		{eventstore.Filter{Metadata: []eventstore.MetadataFilter{eventstore.MetadataHasPrefix("empty", "")}}, true},
		{eventstore.Filter{Metadata: []eventstore.MetadataFilter{eventstore.MetadataHasPrefix("missing", "")}}, false},
		{eventstore.Filter{Types: []string{"A"}, Metadata: []eventstore.MetadataFilter{eventstore.MetadataEquals("tenant", "t1")}}, false},
	} {
		if got := watch.Match(c.f, r); got != c.want {
			t.Errorf("Match(%+v) = %v, want %v", c.f, got, c.want)
		}
	}
}
