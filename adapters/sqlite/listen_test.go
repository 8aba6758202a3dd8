package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
)

// TestMultiProcessWatch starts a second OS process appending to the same
// file while this process appends too and watches all streams: every event
// arrives once, in position order, and the child's in version order.
func TestMultiProcessWatch(t *testing.T) {
	const childEvents, ownEvents = 200, 50
	path := filepath.Join(t.TempDir(), "shared.db")
	s := openFile(t, path, sqlite.WithPollInterval(2*time.Millisecond))
	ctx := testCtx(t)

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	type seen struct {
		got []eventstore.Recorded
		err error
	}
	done := make(chan seen, 1)
	go func() {
		var out seen
		for r, err := range s.Watch(watchCtx, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()}) {
			if err != nil {
				out.err = err
				break
			}
			out.got = append(out.got, r)
			if len(out.got) == childEvents+ownEvents {
				break
			}
		}
		done <- out
	}()

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envAppendPath+"="+path, envAppendCount+"="+strconv.Itoa(childEvents))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting appender process: %v", err)
	}
	for i := range ownEvents {
		if _, err := s.Append(ctx, "parent", eventstore.Exact(uint64(i)), eventstore.Event{Type: "parent"}); err != nil {
			t.Errorf("parent append %d: %v", i, err)
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("appender process: %v", err)
	}

	var out seen
	select {
	case out = <-done:
	case <-ctx.Done():
		t.Fatal("watcher did not receive every event before the deadline")
	}
	if out.err != nil {
		t.Fatalf("watch: %v", out.err)
	}
	var child []string
	var parent int
	for i, r := range out.got {
		if r.Position != uint64(i+1) {
			t.Fatalf("event %d has position %d, want %d (gap, duplicate or disorder)", i, r.Position, i+1)
		}
		switch r.StreamID {
		case "child":
			child = append(child, string(r.Data))
			if r.Version != uint64(len(child)) {
				t.Errorf("child event %d has version %d", len(child), r.Version)
			}
		case "parent":
			parent++
		}
	}
	var want []string
	for i := range childEvents {
		want = append(want, strconv.Itoa(i+1))
	}
	if diff := cmp.Diff(want, child); diff != "" {
		t.Errorf("child events (-want +got):\n%s", diff)
	}
	if parent != ownEvents {
		t.Errorf("got %d parent events, want %d", parent, ownEvents)
	}
}

// TestManyWatchersOtherStore has a thousand watchers on one Store wait for
// an append made through another Store on the same file (as another
// process would): the single poller wakes them all.
func TestManyWatchersOtherStore(t *testing.T) {
	const watchers = 1000
	path := filepath.Join(t.TempDir(), "many.db")
	s := openFile(t, path)
	other := openFile(t, path)
	ctx := testCtx(t)
	var g errgroup.Group
	for range watchers {
		g.Go(func() error {
			for r, err := range s.Watch(ctx, "s", eventstore.WatchOptions{From: eventstore.FromStart()}) {
				if err != nil {
					return err
				}
				if r.Version != 1 || r.Type != "hello" {
					return fmt.Errorf("got %s@%d, want hello@1", r.Type, r.Version)
				}
				return nil
			}
			return ctx.Err()
		})
	}
	if _, err := other.Append(ctx, "s", eventstore.NoStream, eventstore.Event{Type: "hello"}); err != nil {
		t.Fatal(err)
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestWatchLargeForeignBatch has another store append more events at once
// than the poller reads after a change: the watcher still gets them all.
func TestWatchLargeForeignBatch(t *testing.T) {
	const n = 5000
	path := filepath.Join(t.TempDir(), "bulk.db")
	s := openFile(t, path)
	other := openFile(t, path)
	ctx := testCtx(t)
	got := make(chan int, 1)
	go func() {
		count := 0
		for r, err := range s.Watch(ctx, "w", eventstore.WatchOptions{From: eventstore.FromStart()}) {
			if err != nil || r.Version != uint64(count+1) {
				break
			}
			if count++; count == n+1 {
				break
			}
		}
		got <- count
	}()
	batch := make([]eventstore.Event, n)
	for i := range batch {
		batch[i] = eventstore.Event{Type: "t"}
	}
	if _, err := other.Append(ctx, "other", eventstore.NoStream, batch...); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Append(ctx, "w", eventstore.NoStream, batch...); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Append(ctx, "w", eventstore.Exact(n), eventstore.Event{Type: "last"}); err != nil {
		t.Fatal(err)
	}
	select {
	case count := <-got:
		if count != n+1 {
			t.Fatalf("watcher got %d events in order, want %d", count, n+1)
		}
	case <-ctx.Done():
		t.Fatal("watcher did not get every event")
	}
}

// TestPollerWakeAfterLargeBatch lands another process's commit in the
// poller's window of issue 9 item 6: after it woke every watcher for a
// large foreign batch (PollBatch events), before it recorded what it had
// seen. A watcher that read before that commit must still be woken for it:
// the driver must report the commit's stream (or a change of every
// stream) after that window. Before the fix the poller read the head after
// waking, counted the commit as seen, and never reported it.
func TestPollerWakeAfterLargeBatch(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "poll.db")
	d, err := sqlite.OpenDriver(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	other := openFile(t, path) // stands for another process

	rec := newRecorder()
	type hooked struct {
		mark int
		err  error
	}
	inWindow := make(chan hooked, 1)
	d.SetAfterWakeAll(func() {
		// A watcher of "late" that has just read (the stream is still
		// empty) waits for the next notice from here on. Then the other
		// process commits.
		mark := rec.len()
		_, err := other.Append(ctx, "late", eventstore.NoStream, eventstore.Event{Type: "t"})
		d.SetAfterWakeAll(nil)
		inWindow <- hooked{mark, err}
	})
	d.Listen(rec)

	batch := make([]eventstore.Event, sqlite.PollBatch)
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
	if !rec.waitFor(wait, h.mark, "late") {
		t.Fatal(`the driver never reported the commit to "late" that landed while the poller woke everyone`)
	}
}

// TestListenReportsStreams appends through another store on the same file
// (as another process would): the driver reports the streams that got
// events, by name, not as a change of everything.
func TestListenReportsStreams(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "listen.db")
	d, err := sqlite.OpenDriver(ctx, path, sqlite.WithPollInterval(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	other := openFile(t, path)
	rec := newRecorder()
	d.Listen(rec)
	for _, id := range []string{"x", "y"} {
		if _, err := other.Append(ctx, id, eventstore.NoStream, eventstore.Event{Type: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"x", "y"} {
		if !rec.waitFor(ctx, 0, id) {
			t.Fatalf("no notice for stream %s", id)
		}
	}
	if n := rec.changes(); n != 0 {
		t.Errorf("%d notices of a change to every stream, want the streams named", n)
	}
}

// recorder is a driver.Notices that records what it is told.
type recorder struct {
	mu      sync.Mutex
	notices [][]string // nil for Changed
	signal  chan struct{}
}

func newRecorder() *recorder { return &recorder{signal: make(chan struct{}, 1)} }

func (r *recorder) Appended(streamIDs ...string) {
	// The driver may reuse its slice once Appended returns.
	r.add(append([]string{}, streamIDs...))
}

func (r *recorder) Changed() { r.add(nil) }

func (r *recorder) add(n []string) {
	r.mu.Lock()
	r.notices = append(r.notices, n)
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.notices)
}

func (r *recorder) changes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ids := range r.notices {
		if ids == nil {
			n++
		}
	}
	return n
}

// covers reports whether a notice from the mark-th on wakes the watchers
// of stream.
func (r *recorder) covers(mark int, stream string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ids := range r.notices[min(mark, len(r.notices)):] {
		if ids == nil || slices.Contains(ids, stream) {
			return true
		}
	}
	return false
}

// waitFor waits until a notice from the mark-th on covers stream, or ctx
// ends.
func (r *recorder) waitFor(ctx context.Context, mark int, stream string) bool {
	for !r.covers(mark, stream) {
		select {
		case <-r.signal:
		case <-ctx.Done():
			return false
		}
	}
	return true
}
