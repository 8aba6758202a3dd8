package watch_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/watch"
)

func TestPageFull(t *testing.T) {
	sized := func(sizes ...int) []eventstore.Recorded {
		out := make([]eventstore.Recorded, len(sizes))
		for i, n := range sizes {
			out[i].Data = make([]byte, n)
		}
		return out
	}
	const b = eventstore.PageBytes
	for _, c := range []struct {
		name   string
		events []eventstore.Recorded
		limit  int
		want   bool
	}{
		{"Empty", nil, 10, false},
		{"ShortAndSmall", sized(1, 2, 3), 10, false},
		{"AtLimit", sized(1, 2, 3), 3, true},
		{"JustUnderBudget", sized(b/2, b/2-1), 10, false},
		{"AtBudget", sized(b/2, b/2), 10, true},
		{"OneEventOverBudget", sized(b + 1), 10, true},
		{"MetadataCounts", []eventstore.Recorded{{Event: eventstore.Event{Data: make([]byte, b-2), Metadata: map[string]string{"k": "v"}}}}, 10, true},
	} {
		if got := watch.PageFull(c.events, c.limit); got != c.want {
			t.Errorf("%s: PageFull = %v, want %v", c.name, got, c.want)
		}
	}
}

// bigLog is a log of large events whose pages end at
// eventstore.PageBytes, as an adapter's do.
type bigLog struct {
	mu     sync.Mutex
	events []eventstore.Recorded
	afters []uint64
	last   []eventstore.Recorded // the page last returned
}

func newBigLog(n, size int) *bigLog {
	l := &bigLog{}
	for i := range n {
		v := uint64(i + 1)
		l.events = append(l.events, eventstore.Recorded{Event: eventstore.Event{Type: "t", Data: make([]byte, size)}, StreamID: "s", Version: v, Position: v})
	}
	return l
}

// read returns the events with versions lo to hi (0: no bound), up to
// limit or eventstore.PageBytes, whichever comes first.
func (l *bigLog) read(_ context.Context, lo, hi uint64, limit int) ([]eventstore.Recorded, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.afters = append(l.afters, lo-1)
	var out []eventstore.Recorded
	size := 0
	for _, r := range l.events {
		if r.Version < lo || (hi > 0 && r.Version > hi) {
			continue
		}
		if len(out) == limit || size >= eventstore.PageBytes {
			break
		}
		out = append(out, r)
		size += eventstore.EventSize(r.Event)
	}
	l.last = out
	return out, nil
}

func (l *bigLog) page(ctx context.Context, after uint64, limit int) ([]eventstore.Recorded, error) {
	return l.read(ctx, after+1, 0, limit)
}

// TestFollowReadsOnAfterPageCutByBytes: a page that ends at PageBytes is
// not the end; Follow reads the next at once, without a Notify (issue 9
// item 3).
func TestFollowReadsOnAfterPageCutByBytes(t *testing.T) {
	const size = 1 << 20 // four to a page
	l := newBigLog(10, size)
	n := watch.NewNotifier()
	f := follow(t.Context(), n, 0, l.page)
	if diff := cmp.Diff(seq(1, 10), f.next(t, 10)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	l.mu.Lock()
	calls := append([]uint64(nil), l.afters...)
	l.mu.Unlock()
	if diff := cmp.Diff([]uint64{0, 4, 8}, calls[:3]); diff != "" {
		t.Errorf("page calls (-want +got):\n%s", diff)
	}
}

// TestFollowClearsYieldedEvents: the page does not keep an event alive once
// Follow has yielded it, so a slow consumer of large events holds what it
// keeps, not the page (issue 9 item 3).
func TestFollowClearsYieldedEvents(t *testing.T) {
	l := newBigLog(3, 10)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	k := 0
	for r, err := range watch.Follow(ctx, watch.NewNotifier(), 0, l.page, version, watch.FollowPageSize) {
		if err != nil {
			t.Fatal(err)
		}
		l.mu.Lock()
		page := l.last
		l.mu.Unlock()
		for i := range k { // the events yielded before r
			if page[i].Data != nil || page[i].Version != 0 {
				t.Errorf("while yielding version %d, the page still holds version %d", r.Version, page[i].Version)
			}
		}
		if k++; k == 3 {
			break
		}
	}
}

// TestHeadBoundedPageCutByBytes: a filtered page cut short by bytes does
// not mark the range up to the head as scanned; the next page starts after
// its last event.
func TestHeadBoundedPageCutByBytes(t *testing.T) {
	l := newBigLog(10, 1<<20)
	page := watch.HeadBounded(func(context.Context) (uint64, error) { return 10, nil }, l.read)
	var got []uint64
	after := uint64(0)
	for range 4 {
		events, err := page(t.Context(), after, 512)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range events {
			got = append(got, r.Version)
			after = r.Version
		}
	}
	if diff := cmp.Diff(seq(1, 10), got); diff != "" {
		t.Errorf("events over four pages (-want +got):\n%s", diff)
	}
}

func TestErrorSeq(t *testing.T) {
	boom := errors.New("boom")
	var errs []error
	for r, err := range watch.ErrorSeq(boom) {
		if err == nil {
			t.Errorf("ErrorSeq yielded %+v without an error", r)
		}
		errs = append(errs, err)
	}
	if len(errs) != 1 || !errors.Is(errs[0], boom) {
		t.Errorf("ErrorSeq yielded %v, want [%v]", errs, boom)
	}
	if _, err := eventstore.Collect(watch.ErrorSeq(boom)); !errors.Is(err, boom) {
		t.Errorf("Collect(ErrorSeq) = %v, want %v", err, boom)
	}
}
