package watch

import (
	"sync"

	"github.com/esv2/esv2/eventstore"
)

// Hub is the set of Notifiers of one store: one for the watchers of
// eventstore.AllStreams, and one per stream that is being watched, which exists while
// someone watches it. An append then wakes the watchers of its own streams
// and of eventstore.AllStreams, not every watcher of the store: with a thousand
// watchers spread over a hundred streams, waking them all made each append
// cost a thousand reads, nearly all finding nothing (cmd/esbench's
// watch_latency p99 was 188 ms on SQLite and 199 ms on PostgreSQL before
// this split). Changes whose streams are unknown (PostgreSQL's LISTEN and
// poll, or an error in SQLite's poller) wake everyone with NotifyAll. The zero value is not usable; call NewHub.
//
// Each entry also holds the shared Tail of its watchers (see Join), which
// lives as long as someone watches.
type Hub struct {
	all *Notifier

	mu       sync.Mutex
	allEntry hubEntry // the AllStreams watchers: its n is all
	streams  map[string]*hubEntry
	closed   bool
}

type hubEntry struct {
	n    *Notifier
	refs int
	tail *Tail // nil until a watcher of the entry asks Join for it
}

// NewHub returns a ready Hub.
func NewHub() *Hub {
	all := NewNotifier()
	return &Hub{all: all, allEntry: hubEntry{n: all}, streams: make(map[string]*hubEntry)}
}

// All returns the Notifier of the eventstore.AllStreams watchers, which every Notify
// and NotifyAll wakes.
func (h *Hub) All() *Notifier { return h.all }

// Watch returns the Notifier to wait on for streamID (eventstore.AllStreams included)
// and a release function to call when the watch ends (calling it again
// does nothing). After Close it
// returns a closed Notifier.
func (h *Hub) Watch(streamID string) (*Notifier, func()) {
	n, _, release := h.join(streamID, nil)
	return n, release
}

// Join is Watch for a watcher that follows the shared Tail of streamID's
// watchers: it returns that Tail too, made with src when the stream has
// none yet. The Tail stops when the last watcher of the stream releases;
// after Close, Join returns a closed Notifier and a nil Tail.
func (h *Hub) Join(streamID string, src func() TailSource) (*Notifier, *Tail, func()) {
	return h.join(streamID, src)
}

func (h *Hub) join(streamID string, src func() TailSource) (*Notifier, *Tail, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		n := h.all
		if streamID != eventstore.AllStreams {
			n = NewNotifier()
			n.Close()
		}
		return n, nil, func() {}
	}
	e := &h.allEntry
	if streamID != eventstore.AllStreams {
		e = h.streams[streamID]
		if e == nil {
			e = &hubEntry{n: NewNotifier()}
			h.streams[streamID] = e
		}
	}
	e.refs++
	if src != nil && e.tail == nil {
		e.tail = NewTail(e.n, src())
	}
	var once sync.Once
	return e.n, e.tail, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			// An entry leaves the map only when its last watch ends, so
			// the stream still maps to e here.
			if e.refs--; e.refs == 0 {
				if e.tail != nil {
					e.tail.stop()
					e.tail = nil
				}
				if e != &h.allEntry {
					delete(h.streams, streamID)
				}
			}
		})
	}
}

// Notify wakes the watchers of the given streams and of eventstore.AllStreams.
func (h *Hub) Notify(streamIDs []string) {
	h.mu.Lock()
	for _, id := range streamIDs {
		if e := h.streams[id]; e != nil {
			e.n.Notify()
		}
	}
	h.mu.Unlock()
	h.all.Notify()
}

// NotifyAll wakes every watcher, for changes whose streams are unknown.
func (h *Hub) NotifyAll() {
	h.mu.Lock()
	for _, e := range h.streams {
		e.n.Notify()
	}
	h.mu.Unlock()
	h.all.Notify()
}

// Close ends every watch with eventstore.ErrClosed, present and future.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	for _, e := range h.streams {
		e.n.Close()
		if e.tail != nil {
			e.tail.shutdown()
		}
	}
	h.all.Close()
	if t := h.allEntry.tail; t != nil {
		t.shutdown()
	}
	h.mu.Unlock()
}
