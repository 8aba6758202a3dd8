package aggregate

import (
	"context"
	"sync"
	"time"
)

// streamLocks lets one Update at a time run against each aggregate of a
// Repository (issue 13 item 3). Goroutines of one process updating one
// aggregate used to race each other's loads and saves: with 64 of them,
// 6 to 240 of 1,280 commands gave up after 10 attempts (SQLite memory and
// file, PostgreSQL). In line, each runs against the state its predecessor
// saved and its save meets a conflict only when another process (or
// another Repository) wrote to the stream meanwhile.
//
// A waiter holds nothing but a channel receive, so its context still ends
// the wait; an aggregate nobody updates costs no entry.
type streamLocks struct {
	mu sync.Mutex
	m  map[string]*streamLock
	// hot holds, for each aggregate whose Updates met contention from
	// outside the Repository lately, until when its Updates take the
	// cross-process lock from their first attempt (see
	// Repository.Update); swept is its size at the last sweep.
	hot   map[string]time.Time
	swept int
}

// contendedFor is how long an aggregate stays contended after the last
// sign of it (a conflict, or another holder of its cross-process lock
// found by a lock-free Update): while it lasts, the Repository's Updates
// of it take the lock at once rather than first trying without it and
// conflicting. Past it they try without the lock again, asking first
// whether others hold it; a wrong guess costs one conflict, and the
// contention is seen again.
const contendedFor = time.Second

// streamLock is one aggregate's turn: a token in a channel of capacity 1,
// and the number of Updates holding or waiting for it, which says when
// the entry can go.
type streamLock struct {
	turn chan struct{}
	refs int
}

// lock waits for id's turn. It returns the function that hands the turn
// on, or ctx's error if ctx ends first.
func (l *streamLocks) lock(ctx context.Context, id string) (unlock func(), err error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]*streamLock)
	}
	e := l.m[id]
	if e == nil {
		e = &streamLock{turn: make(chan struct{}, 1)}
		l.m[id] = e
	}
	e.refs++
	l.mu.Unlock()
	select {
	case e.turn <- struct{}{}:
		return func() {
			<-e.turn
			l.release(id, e)
		}, nil
	case <-ctx.Done():
		l.release(id, e)
		return nil, ctx.Err()
	}
}

// release drops one reference to id's entry, and the entry with the last.
func (l *streamLocks) release(id string, e *streamLock) {
	l.mu.Lock()
	if e.refs--; e.refs == 0 {
		delete(l.m, id)
	}
	l.mu.Unlock()
}

// contended reports whether id met contention within contendedFor of now.
func (l *streamLocks) contended(id string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.hot[id]
	return ok && now.Before(until)
}

// markContended records a sign of contention on id at now. Entries past
// their time are swept whenever the map has doubled since the last sweep,
// so that aggregates contended once cost nothing for long.
func (l *streamLocks) markContended(id string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hot == nil {
		l.hot = make(map[string]time.Time)
	}
	l.hot[id] = now.Add(contendedFor)
	if len(l.hot) >= 2*max(l.swept, 32) {
		for k, until := range l.hot {
			if !now.Before(until) {
				delete(l.hot, k)
			}
		}
		l.swept = len(l.hot)
	}
}
