package watch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/watch"
)

// waitTimeout is a failure deadline, never a pause.
const waitTimeout = 10 * time.Second

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestNotifierNotify(t *testing.T) {
	n := watch.NewNotifier()
	first := n.Changed()
	if isClosed(first) {
		t.Fatal("Changed is closed before any Notify")
	}
	if again := n.Changed(); again != first {
		t.Error("Changed returned another channel without a Notify in between")
	}
	n.Notify()
	if !isClosed(first) {
		t.Error("channel from Changed not closed by Notify")
	}
	second := n.Changed()
	if isClosed(second) {
		t.Error("channel taken after Notify is already closed")
	}
	n.Notify()
	n.Notify() // nobody waiting: no panic, nothing to do
	if !isClosed(second) {
		t.Error("second channel not closed by the next Notify")
	}
	if n.Closed() {
		t.Error("Closed() = true before Close")
	}
}

func TestNotifierWakesManyWaiters(t *testing.T) {
	n := watch.NewNotifier()
	const waiters = 100
	ready := make(chan struct{}, waiters)
	var g errgroup.Group
	for i := range waiters {
		ch := n.Changed()
		g.Go(func() error {
			ready <- struct{}{}
			select {
			case <-ch:
				return nil
			case <-time.After(waitTimeout):
				return fmt.Errorf("waiter %d not woken", i)
			}
		})
	}
	for range waiters {
		<-ready
	}
	n.Notify()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestNotifierClose(t *testing.T) {
	n := watch.NewNotifier()
	before := n.Changed()
	n.Close()
	if !n.Closed() {
		t.Error("Closed() = false after Close")
	}
	if !isClosed(before) {
		t.Error("Close did not wake a waiter")
	}
	if !isClosed(n.Changed()) {
		t.Error("Changed after Close returned an open channel; a waiter would block forever")
	}
	n.Notify() // after Close: no panic (no double close)
	n.Close()  // idempotent
	if !n.Closed() {
		t.Error("Closed() = false after a second Close")
	}
}

func TestNotifierConcurrentUse(t *testing.T) {
	n := watch.NewNotifier()
	var g errgroup.Group
	for range 4 {
		g.Go(func() error {
			for range 200 {
				n.Notify()
				_ = n.Changed()
			}
			return nil
		})
	}
	g.Go(func() error { n.Close(); return nil })
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if !n.Closed() {
		t.Error("Closed() = false after Close")
	}
}

// fakeLog is an append-only list of events that a PageFunc reads, the way
// an adapter's page query reads its table.
type fakeLog struct {
	mu     sync.Mutex
	events []eventstore.Recorded
	afters []uint64 // the after argument of each page call
	fail   error    // returned by the next page call when set
}

func (l *fakeLog) add(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		v := uint64(len(l.events) + 1)
		l.events = append(l.events, eventstore.Recorded{Event: eventstore.Event{Type: "t"}, StreamID: "s", Version: v, Position: v * 10})
	}
}

func (l *fakeLog) page(ctx context.Context, after uint64, limit int) ([]eventstore.Recorded, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.afters = append(l.afters, after)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if l.fail != nil {
		return nil, l.fail
	}
	var out []eventstore.Recorded
	for _, r := range l.events {
		if r.Version > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (l *fakeLog) pageCalls() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]uint64(nil), l.afters...)
}

func version(r eventstore.Recorded) uint64 { return r.Version }

// follower runs Follow in a goroutine and hands its results over a channel.
type follower struct {
	events chan eventstore.Recorded
	done   chan struct{}
	err    error // read after done
}

func follow(ctx context.Context, n *watch.Notifier, after uint64, page watch.PageFunc) *follower {
	f := &follower{events: make(chan eventstore.Recorded, 4096), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for r, err := range watch.Follow(ctx, n, after, page, version, watch.FollowPageSize) {
			if err != nil {
				f.err = err
				return
			}
			f.events <- r
		}
	}()
	return f
}

func (f *follower) next(t *testing.T, n int) []uint64 {
	t.Helper()
	var got []uint64
	timeout := time.After(waitTimeout)
	for len(got) < n {
		select {
		case r := <-f.events:
			got = append(got, r.Version)
		case <-f.done:
			t.Fatalf("Follow ended after %d of %d events: %v", len(got), n, f.err)
		case <-timeout:
			t.Fatalf("got %d of %d events within %v", len(got), n, waitTimeout)
		}
	}
	return got
}

func (f *follower) end(t *testing.T) error {
	t.Helper()
	select {
	case <-f.done:
		return f.err
	case <-time.After(waitTimeout):
		t.Fatalf("Follow did not end within %v", waitTimeout)
		return nil
	}
}

func seq(lo, hi uint64) []uint64 {
	var out []uint64
	for v := lo; v <= hi; v++ {
		out = append(out, v)
	}
	return out
}

func TestFollowPagesThenWaits(t *testing.T) {
	n := watch.NewNotifier()
	log := &fakeLog{}
	log.add(2*watch.FollowPageSize + 10)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f := follow(ctx, n, 5, log.page)
	if diff := cmp.Diff(seq(6, 2*watch.FollowPageSize+10), f.next(t, 2*watch.FollowPageSize+5)); diff != "" {
		t.Errorf("catch-up (-want +got):\n%s", diff)
	}
	// Full pages are followed at once by the next; a short page means the
	// end, so Follow waits for a Notify.
	wantCalls := []uint64{5, 5 + watch.FollowPageSize, 5 + 2*watch.FollowPageSize}
	if diff := cmp.Diff(wantCalls, log.pageCalls()[:3]); diff != "" {
		t.Errorf("page calls (-want +got):\n%s", diff)
	}
	log.add(3)
	n.Notify()
	last := uint64(2*watch.FollowPageSize + 10)
	if diff := cmp.Diff(seq(last+1, last+3), f.next(t, 3)); diff != "" {
		t.Errorf("live events (-want +got):\n%s", diff)
	}
	cancel()
	if err := f.end(t); err != nil {
		t.Errorf("Follow ended with %v after its context was cancelled, want no error", err)
	}
}

func TestFollowMissesNoNotify(t *testing.T) {
	// Appends land while Follow is between its page read and its wait; it
	// takes the channel before reading, so the Notify is not lost.
	n := watch.NewNotifier()
	log := &fakeLog{}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	page := func(ctx context.Context, after uint64, limit int) ([]eventstore.Recorded, error) {
		out, err := log.page(ctx, after, limit)
		if after == 0 && len(out) == 0 {
			log.add(1)
			n.Notify() // lands after the read, before the wait
		}
		return out, err
	}
	f := follow(ctx, n, 0, page)
	if diff := cmp.Diff([]uint64{1}, f.next(t, 1)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestFollowCancelEndsQuietly(t *testing.T) {
	n := watch.NewNotifier()
	log := &fakeLog{}
	log.add(1)
	ctx, cancel := context.WithCancel(t.Context())
	f := follow(ctx, n, 0, log.page)
	f.next(t, 1)
	cancel() // while waiting
	if err := f.end(t); err != nil {
		t.Errorf("Follow ended with %v, want no error", err)
	}

	// A page read that fails because the context ended also ends quietly.
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	if err := follow(ctx, n, 0, log.page).end(t); err != nil {
		t.Errorf("Follow with a cancelled context ended with %v, want no error", err)
	}
}

func TestFollowClosedNotifier(t *testing.T) {
	n := watch.NewNotifier()
	log := &fakeLog{}
	log.add(2)
	f := follow(t.Context(), n, 0, log.page)
	f.next(t, 2)
	n.Close() // while waiting
	if err := f.end(t); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Follow ended with %v at Close, want ErrClosed", err)
	}
	// Started on a closed notifier: ErrClosed before any read.
	calls := len(log.pageCalls())
	if err := follow(t.Context(), n, 0, log.page).end(t); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Follow on a closed notifier ended with %v, want ErrClosed", err)
	}
	if got := len(log.pageCalls()); got != calls {
		t.Errorf("Follow on a closed notifier read %d pages, want none", got-calls)
	}
}

func TestFollowErrorYieldedOnce(t *testing.T) {
	n := watch.NewNotifier()
	log := &fakeLog{fail: errors.New("disk on fire")}
	var errs []error
	for r, err := range watch.Follow(t.Context(), n, 0, log.page, version, watch.FollowPageSize) {
		if err == nil {
			t.Fatalf("yielded %+v, want only an error", r)
		}
		errs = append(errs, err)
		if len(errs) > 1 {
			break
		}
	}
	if len(errs) != 1 || !errors.Is(errs[0], log.fail) {
		t.Errorf("errors yielded: %v, want exactly [%v]", errs, log.fail)
	}
}

func TestFollowBreak(t *testing.T) {
	n := watch.NewNotifier()
	log := &fakeLog{}
	log.add(10)
	var got []uint64
	for r, err := range watch.Follow(t.Context(), n, 0, log.page, version, watch.FollowPageSize) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Version)
		if len(got) == 3 {
			break
		}
	}
	if diff := cmp.Diff([]uint64{1, 2, 3}, got); diff != "" {
		t.Errorf("events before the break (-want +got):\n%s", diff)
	}
	if calls := log.pageCalls(); len(calls) != 1 {
		t.Errorf("page calls %v, want one", calls)
	}
}

func TestHeadBoundedScansOnlyWhatIsNew(t *testing.T) {
	head := uint64(100)
	type call struct{ Lo, Hi uint64 }
	var calls []call
	page := watch.HeadBounded(
		func(context.Context) (uint64, error) { return head, nil },
		func(_ context.Context, lo, hi uint64, _ int) ([]eventstore.Recorded, error) {
			calls = append(calls, call{lo, hi})
			return []eventstore.Recorded{{Version: 7}}, nil // one match: a short page
		})
	ctx := t.Context()
	mustPage := func(after uint64) {
		t.Helper()
		if _, err := page(ctx, after, 10); err != nil {
			t.Fatal(err)
		}
	}
	mustPage(0)         // scans 1..100, finds one match (7): short, so 100 is scanned
	mustPage(7)         // Follow resumes after 7, but nothing up to 100 is new
	head = 150          // more was appended
	mustPage(7)         // scans only 101..150
	mustPage(1<<64 - 1) // after beyond every key: nothing, no wrap-around to 0
	want := []call{{1, 100}, {101, 150}}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("ranges read (-want +got):\n%s", diff)
	}
}
