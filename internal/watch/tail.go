package watch

import (
	"bytes"
	"context"
	"iter"
	"maps"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/esv2/esv2/eventstore"
)

// What a Tail keeps of the pages it read: its last pages up to
// TailWindowEvents events and TailWindowBytes bytes (the newest page is
// kept whatever its size). A watcher whose cursor falls before what is
// kept has fallen behind and reads alone until it reaches the head again;
// nothing waits for it.
const (
	TailWindowEvents = 4 * FollowPageSize
	TailWindowBytes  = 2 * eventstore.PageBytes
)

// TailSource is how a Tail reads its stream (or AllStreams).
type TailSource struct {
	// Head returns the key of the last event committed: a Tail starts
	// there. Every event that commits after Head returned must get a
	// higher key (driver.Driver.Head's rule).
	Head func(ctx context.Context) (uint64, error)
	// NewRead returns the page function of one run of the Tail: up to
	// limit events after a key, every event of the stream (no filter),
	// in key order. A run calls its function from one goroutine, one
	// call at a time.
	NewRead func() PageFunc
	// Key is an event's cursor: its Version in a stream, its Position in
	// AllStreams.
	Key func(eventstore.Recorded) uint64
	// Size is the row limit of a page.
	Size int
}

// Tail is the shared head of one watched stream (or of AllStreams) of a
// store: the watchers that are at the head get new events from one read
// per change, not one each. Before issue 13, 10,000 watchers of one stream
// made 10,000 queries per append, and the last of them got the event
// 124–306 ms after Append returned, against 6–11 ms for waking 10,000
// goroutines with one channel close.
//
// A Tail's goroutine starts when the first watcher reaches the head: it
// reads Head, then, each time the store's Notifier reports a change and
// some watcher waits for more, reads the next page and publishes it in an
// immutable window (the last pages, bounded: TailWindowEvents,
// TailWindowBytes) that replaces the previous one and wakes its waiters
// by closing a channel. Each watcher keeps its own cursor, takes from the
// window what lies after it, applies its filter there (in memory, see
// Match), and waits for the next window. A watcher whose cursor falls
// before the window, because it was slow or joined late, leaves and reads
// alone (see FollowTail), so no watcher holds back the others or a
// writer. A failed read ends the run: its watchers read alone, and the
// next one to reach the head starts another run.
//
// Every window holds every event with a key in (lo, hi]: the Tail starts
// at a head and reads each page after the last key it read, and a key
// allocated in commit order makes that gap-free; a watcher at key c with
// lo <= c has missed nothing, and takes only keys above c, so it gets no
// duplicate.
type Tail struct {
	n   *Notifier
	src TailSource

	cur    atomic.Pointer[window] // nil until the first run
	wanted atomic.Bool            // a watcher waits past the current window
	poke   chan struct{}          // tells the run that wanted became true

	mu      sync.Mutex // serialises publishing and starting runs
	stopped bool
	ctx     context.Context // ends the runs: at stop and shutdown
	cancel  context.CancelFunc
}

// NewTail returns a Tail of the stream whose changes n reports; no
// goroutine runs until a watcher joins it.
func NewTail(n *Notifier, src TailSource) *Tail {
	// The runs' reads belong to no caller: they end with the Tail.
	ctx, cancel := context.WithCancel(context.Background())
	return &Tail{n: n, src: src, poke: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
}

type windowState uint8

const (
	live    windowState = iota // lo and hi hold
	pending                    // a run reads its first head
	failed                     // the run ended with a read error
	closed                     // the store was closed
)

// segment is one page the Tail read: every event with a key in (lo, hi].
type segment struct {
	lo, hi uint64
	events []eventstore.Recorded
	bytes  int
}

// window is what a Tail has published: immutable, so that watchers read
// it with no lock. It holds every event with a key in (lo, hi].
type window struct {
	state  windowState
	lo, hi uint64
	segs   []*segment
	events int
	bytes  int
	// next is closed when a newer window replaces this one.
	next chan struct{}
}

// ended is the next channel of the final windows (failed, closed): closed
// already, nothing replaces them within their run.
var ended = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// extend returns the window with page appended, the oldest pages dropped
// beyond the bounds.
func (w *window) extend(page []eventstore.Recorded, key func(eventstore.Recorded) uint64) *window {
	s := &segment{lo: w.hi, hi: key(page[len(page)-1]), events: page}
	for i := range page {
		s.bytes += eventstore.EventSize(page[i].Event)
	}
	old := w.segs
	events, size := w.events+len(page), w.bytes+s.bytes
	for len(old) > 0 && (events > TailWindowEvents || size > TailWindowBytes) {
		events, size = events-len(old[0].events), size-old[0].bytes
		old = old[1:]
	}
	segs := make([]*segment, 0, len(old)+1)
	segs = append(append(segs, old...), s)
	return &window{state: live, lo: segs[0].lo, hi: s.hi, segs: segs, events: events, bytes: size, next: make(chan struct{})}
}

// publish makes w the current window and wakes the watchers of the
// previous one; it reports false, publishing nothing, once the Tail has
// stopped.
func (t *Tail) publish(w *window) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	t.publishLocked(w)
	return true
}

func (t *Tail) publishLocked(w *window) {
	old := t.cur.Load()
	// Every waiter of old is woken below, and asks again if it still
	// wants more.
	t.wanted.Store(false)
	t.cur.Store(w)
	if old != nil && old.next != ended {
		close(old.next)
	}
}

// join returns the current window, starting a run if none is under way;
// nil once the Tail has stopped.
func (t *Tail) join() *window {
	if w := t.cur.Load(); w != nil && (w.state == live || w.state == pending) {
		return w
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return nil
	}
	if w := t.cur.Load(); w != nil && (w.state == live || w.state == pending) {
		return w
	}
	w := &window{state: pending, next: make(chan struct{})}
	t.publishLocked(w)
	go t.run()
	return w
}

// want tells the run that a watcher waits past the current window.
func (t *Tail) want() {
	if t.wanted.Load() {
		return
	}
	if !t.wanted.Swap(true) {
		select {
		case t.poke <- struct{}{}:
		default:
		}
	}
}

// end publishes a final window: the run is over.
func (t *Tail) end(state windowState) {
	t.publish(&window{state: state, next: ended})
}

// run is one run of the Tail, from its head until a read fails, the
// Notifier closes or the Tail stops.
func (t *Tail) run() {
	ctx := t.ctx
	// Taken before the head is read: whatever commits after the read
	// closes it, so nothing committed after the head goes unread.
	ch := t.n.Changed()
	if t.n.Closed() {
		t.end(closed)
		return
	}
	h, err := t.src.Head(ctx)
	if err != nil {
		t.end(failed)
		return
	}
	if !t.publish(&window{state: live, lo: h, hi: h, next: make(chan struct{})}) {
		return
	}
	read := t.src.NewRead()
	dirty := false // a change was reported since the last read began
	for {
		// A read needs both a change and a watcher that waits for it:
		// changes while every watcher is busy with the window cost one
		// read when the first of them comes back, not one each.
		if !dirty || !t.wanted.Load() {
			var notified <-chan struct{}
			if !dirty {
				notified = ch
			}
			select {
			case <-ctx.Done():
				return
			case <-notified:
				if t.n.Closed() {
					t.end(closed)
					return
				}
				dirty = true
			case <-t.poke:
			}
			continue
		}
		ch = t.n.Changed()
		if t.n.Closed() {
			t.end(closed)
			return
		}
		dirty = false
		w := t.cur.Load()
		page, err := read(ctx, w.hi, t.src.Size)
		if err != nil {
			if ctx.Err() == nil {
				t.end(failed)
			}
			return
		}
		if len(page) == 0 {
			continue
		}
		if PageFull(page, t.src.Size) {
			dirty = true // more may follow at once
		}
		if !t.publish(w.extend(page, t.src.Key)) {
			return
		}
	}
}

// stop ends the Tail when its last watcher has gone: the run ends, and
// no other starts.
func (t *Tail) stop() {
	t.mu.Lock()
	t.stopped = true
	t.mu.Unlock()
	t.cancel()
}

// shutdown ends the Tail when its store closes: its watchers get
// eventstore.ErrClosed.
func (t *Tail) shutdown() {
	t.mu.Lock()
	if !t.stopped {
		t.publishLocked(&window{state: closed, next: ended})
		t.stopped = true
	}
	t.mu.Unlock()
	t.cancel()
}

// tailResult is how a watcher left a Tail.
type tailResult uint8

const (
	tailEnded  tailResult = iota // the iteration is over
	tailBehind                   // read alone from the cursor returned
)

// follow yields, to a watcher whose every event up to cursor was
// examined, the events of the Tail's windows after cursor that match
// passes (all of them when match is nil), waiting for new windows, until
// the watcher falls behind, the run fails, or the iteration ends.
func (t *Tail) follow(ctx context.Context, cursor uint64, match func(eventstore.Recorded) bool, yield func(eventstore.Recorded, error) bool) (uint64, tailResult) {
	w := t.join()
	if w == nil {
		return cursor, tailBehind
	}
	key := t.src.Key
	for {
		switch {
		case w.state == closed:
			yield(eventstore.Recorded{}, eventstore.ErrClosed)
			return cursor, tailEnded
		case w.state == failed:
			return cursor, tailBehind
		case w.state == pending || cursor >= w.hi:
			t.want()
			select {
			case <-ctx.Done():
				return cursor, tailEnded
			case <-w.next:
				w = t.cur.Load()
			}
			continue
		case cursor < w.lo:
			return cursor, tailBehind
		}
		for _, s := range w.segs {
			if s.hi <= cursor {
				continue
			}
			i := sort.Search(len(s.events), func(i int) bool { return key(s.events[i]) > cursor })
			for _, e := range s.events[i:] {
				if match == nil || match(e) {
					if !yield(own(e), nil) {
						return cursor, tailEnded
					}
				}
				cursor = key(e)
			}
			cursor = s.hi
		}
		// The loop body may have taken long: on to the newest window.
		w = t.cur.Load()
	}
}

// own returns r with Data and Metadata of its own: the window's events
// are shared by every watcher of the Tail, and one watcher's loop body
// must not change what the others get (a watcher reading alone had its
// own copies too).
func own(r eventstore.Recorded) eventstore.Recorded {
	r.Data = bytes.Clone(r.Data)
	r.Metadata = maps.Clone(r.Metadata)
	return r
}

// FollowTail is Follow over a shared Tail: the watcher catches up alone
// with page, as Follow does, and each time a page shows it has reached
// the head it follows t instead of waiting on n, until it falls behind
// and reads alone again. scanned, if not nil, returns the key up to which
// page has examined every event (a filtered watch's Bounded.Scanned);
// match, if not nil, is the watch's filter, applied to the Tail's pages
// in memory (see Match). A nil t makes it Follow.
//
// The iteration ends quietly when ctx ends and yields eventstore.ErrClosed when n is
// closed; any other error is yielded once and ends it.
func FollowTail(ctx context.Context, n *Notifier, t *Tail, after uint64, page PageFunc, scanned func() uint64, match func(eventstore.Recorded) bool, key func(eventstore.Recorded) uint64, size int) iter.Seq2[eventstore.Recorded, error] {
	return func(yield func(eventstore.Recorded, error) bool) {
		// A watcher the Tail sent away (behind, or the run failed) tries
		// it again only once its own reads have moved it on: otherwise
		// a cursor the Tail cannot take would go back and forth without
		// a wait.
		refused, tried := uint64(0), false
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
				// Cleared once yielded, as in Follow.
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
			cursor := after
			if scanned != nil {
				cursor = max(cursor, scanned())
			}
			if t != nil && (!tried || cursor != refused) {
				next, res := t.follow(ctx, cursor, match, yield)
				if res == tailEnded {
					return
				}
				after, refused, tried = next, next, true
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
