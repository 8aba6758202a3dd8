package postgres

import (
	"sync"

	"github.com/esv2/esv2/eventstore"
)

// notifiers wakes watchers. Watchers of AllStreams wait on one Notifier
// (Store.notifier); watchers of a stream wait on that stream's Notifier,
// which exists while someone watches the stream. The store's own commits
// wake the watchers of the streams they wrote (and of AllStreams), not
// every watcher of the store: with a thousand watchers on a hundred
// streams, waking them all made each append cost a thousand queries, and
// cmd/esbench's watch_latency p99 was 199 ms. Changes whose streams are
// unknown (another process's, seen by LISTEN or the poll) wake everyone.
// The same design as adapters/sqlite's.
type notifiers struct {
	all *eventstore.Notifier

	mu      sync.Mutex
	streams map[string]*streamNotifier
	closed  bool
}

type streamNotifier struct {
	n    *eventstore.Notifier
	refs int
}

func newNotifiers(all *eventstore.Notifier) *notifiers {
	return &notifiers{all: all, streams: make(map[string]*streamNotifier)}
}

// watch returns the Notifier to wait on for streamID and a release
// function to call when the watch ends. After close it returns a closed
// Notifier.
func (ns *notifiers) watch(streamID string) (*eventstore.Notifier, func()) {
	if streamID == eventstore.AllStreams {
		return ns.all, func() {}
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.closed {
		n := eventstore.NewNotifier()
		n.Close()
		return n, func() {}
	}
	sn := ns.streams[streamID]
	if sn == nil {
		sn = &streamNotifier{n: eventstore.NewNotifier()}
		ns.streams[streamID] = sn
	}
	sn.refs++
	return sn.n, func() {
		ns.mu.Lock()
		defer ns.mu.Unlock()
		if sn.refs--; sn.refs == 0 && ns.streams[streamID] == sn {
			delete(ns.streams, streamID)
		}
	}
}

// notify wakes the watchers of the given streams and of AllStreams.
func (ns *notifiers) notify(streamIDs []string) {
	ns.mu.Lock()
	for _, id := range streamIDs {
		if sn := ns.streams[id]; sn != nil {
			sn.n.Notify()
		}
	}
	ns.mu.Unlock()
	ns.all.Notify()
}

// notifyEvery wakes every watcher, for changes whose streams are unknown.
func (ns *notifiers) notifyEvery() {
	ns.mu.Lock()
	for _, sn := range ns.streams {
		sn.n.Notify()
	}
	ns.mu.Unlock()
	ns.all.Notify()
}

// close ends every watch with ErrClosed, present and future.
func (ns *notifiers) close() {
	ns.mu.Lock()
	ns.closed = true
	for _, sn := range ns.streams {
		sn.n.Close()
	}
	ns.mu.Unlock()
	ns.all.Close()
}
