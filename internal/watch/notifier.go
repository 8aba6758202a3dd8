package watch

import (
	"context"
	"github.com/esv2/esv2/eventstore"
	"iter"
	"sync"
)

// Notifier wakes the watchers waiting on it when something was appended. A
// store keeps its Notifiers in a Hub (one for eventstore.AllStreams, one per watched
// stream), fed by the store's own appends and by its single
// change-detection goroutine (polling or LISTEN); watchers wait on one and
// then read what is new themselves. Waking is a channel close, so a
// thousand idle watchers cost nothing per poll and a slow watcher blocks
// no one. The zero value is not usable; call NewNotifier.
type Notifier struct {
	mu     sync.Mutex
	ch     chan struct{}
	closed bool
}

// NewNotifier returns a ready Notifier.
func NewNotifier() *Notifier { return &Notifier{ch: make(chan struct{})} }

// Changed returns a channel that is closed at the next Notify or at Close.
// Take it before reading, then wait on it, so that no change is missed.
func (n *Notifier) Changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

// Notify wakes everyone waiting on a channel from Changed.
func (n *Notifier) Notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	close(n.ch)
	n.ch = make(chan struct{})
}

// Close wakes every waiter for the last time; Closed reports true after it.
func (n *Notifier) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.closed = true
		close(n.ch)
	}
}

// Closed reports whether Close was called.
func (n *Notifier) Closed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// PageFunc reads up to limit events after the version or position after,
// in order, for Follow. It returns fewer than limit events when it reached
// the end of what is visible, or when its events reached [eventstore.PageBytes] (see
// [PageFull]; a page holds at least one event). Follow clears each element
// of the returned slice once it has yielded it.
type PageFunc func(ctx context.Context, after uint64, limit int) ([]eventstore.Recorded, error)

// HeadBounded returns the PageFunc of a filtered watch. Follow resumes
// after the last event it yielded, but with a selective filter that may
// lie far behind the head, and every wake would scan the gap again. So
// each page is bounded by the head as head reports it now (the current
// version or position), and once a page comes back short, later pages
// start after that head: each wake scans only what is new. read returns
// up to limit matching events with keys from lo to hi, in order. It is
// correct only for stores whose keys are allocated in commit order, so
// that whatever commits after head was read gets a higher key.
func HeadBounded(head func(ctx context.Context) (uint64, error), read func(ctx context.Context, lo, hi uint64, limit int) ([]eventstore.Recorded, error)) PageFunc {
	return NewBounded(head, read).Page
}

// Bounded is HeadBounded with its progress in view: a watcher that
// leaves its own reads for a shared [Tail] joins it at Scanned, not at the
// last event it yielded, which a selective filter may leave far behind.
type Bounded struct {
	head    func(ctx context.Context) (uint64, error)
	read    func(ctx context.Context, lo, hi uint64, limit int) ([]eventstore.Recorded, error)
	scanned uint64 // every key up to it was examined
}

// NewBounded returns the state of one filtered watch; see HeadBounded.
func NewBounded(head func(ctx context.Context) (uint64, error), read func(ctx context.Context, lo, hi uint64, limit int) ([]eventstore.Recorded, error)) *Bounded {
	return &Bounded{head: head, read: read}
}

// Page is the PageFunc; see HeadBounded.
func (b *Bounded) Page(ctx context.Context, after uint64, limit int) ([]eventstore.Recorded, error) {
	h, err := b.head(ctx)
	if err != nil {
		return nil, err
	}
	from := max(after, b.scanned)
	if from >= h {
		return nil, nil
	}
	events, err := b.read(ctx, from+1, h, limit)
	if err == nil && !PageFull(events, limit) {
		b.scanned = h
	}
	return events, err
}

// Scanned returns the key up to which every event was examined: the head
// of the last page that was not full.
func (b *Bounded) Scanned() uint64 { return b.scanned }

// FollowPageSize is the number of events a watch reads per page, at most,
// unless its driver caps pages lower; a page also ends at
// [eventstore.PageBytes].
const FollowPageSize = 512

// Follow is the front's Watch: it reads pages of up to size events after
// `after` and, when it reaches the end, waits on n before reading again. Rows are
// read into a page and released before anything is yielded, so a slow
// consumer holds no database connection. key returns the cursor of an event
// (Version for a stream, Position for eventstore.AllStreams).
//
// The iteration ends quietly when ctx ends and yields eventstore.ErrClosed when n is
// closed; any other error is yielded once and ends it.
func Follow(ctx context.Context, n *Notifier, after uint64, page PageFunc, key func(eventstore.Recorded) uint64, size int) iter.Seq2[eventstore.Recorded, error] {
	return func(yield func(eventstore.Recorded, error) bool) {
		for {
			changed := n.Changed()
			if n.Closed() {
				yield(eventstore.Recorded{}, eventstore.ErrClosed)
				return
			}
			events, err := page(ctx, after, size)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				yield(eventstore.Recorded{}, err)
				return
			}
			full := PageFull(events, size)
			for i := range events {
				// Cleared once yielded, so that a page of large events is
				// not held whole until its last event is consumed (issue
				// 9 item 3).
				r := events[i]
				events[i] = eventstore.Recorded{}
				if !yield(r, nil) {
					return
				}
				after = key(r)
			}
			if full {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
		}
	}
}
