package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/eventstore"
)

// waitTimeout bounds every wait on something asynchronous. It is a failure
// deadline, not a pause.
const waitTimeout = 15 * time.Second

// watcher collects what a Watch yields on a channel; it stops when the
// test ends.
type watcher struct {
	events chan eventstore.Recorded
	errs   chan error
}

func startWatch(t *testing.T, s eventstore.Store, stream string, opts eventstore.WatchOptions) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	w := &watcher{events: make(chan eventstore.Recorded, 100_000), errs: make(chan error, 1)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for r, err := range s.Watch(ctx, stream, opts) {
			if err != nil {
				w.errs <- err
				return
			}
			w.events <- r
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return w
}

// next returns the next n events the watcher yields, failing the test
// after waitTimeout.
func (w *watcher) next(t *testing.T, n int) []eventstore.Recorded {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	out := make([]eventstore.Recorded, 0, n)
	for len(out) < n {
		select {
		case r := <-w.events:
			out = append(out, r)
		case err := <-w.errs:
			t.Fatalf("watch ended with %v after %d of %d events", err, len(out), n)
		case <-deadline.C:
			t.Fatalf("watch yielded %d of %d events within %v: %+v", len(out), n, waitTimeout, out)
		}
	}
	return out
}

// expectNothingBut appends a sentinel event through s and checks that it
// is the next thing the watcher yields: nothing was delivered twice or
// late before it.
func (w *watcher) expectNothingBut(t *testing.T, s eventstore.Store) {
	t.Helper()
	res, err := s.Append(t.Context(), "sentinel", eventstore.Any, eventstore.Event{Type: "sentinel"})
	if err != nil {
		t.Fatalf("append sentinel: %v", err)
	}
	got := w.next(t, 1)[0]
	if got.StreamID != "sentinel" || got.Position != res.Position {
		t.Errorf("after the expected events the watch yielded %s@%d (position %d), want only the sentinel at position %d",
			got.StreamID, got.Version, got.Position, res.Position)
	}
}

// checkIncreasing checks that positions strictly increase.
func checkIncreasing(t *testing.T, what string, got []eventstore.Recorded) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if got[i].Position <= got[i-1].Position {
			t.Errorf("%s: position %d (%s@%d) after %d: not strictly increasing", what,
				got[i].Position, got[i].StreamID, got[i].Version, got[i-1].Position)
		}
	}
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
// It is for conditions only the database can tell (a backend waiting on a
// lock), which no channel signals.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v", what, waitTimeout)
		}
		<-tick.C
	}
}

// rawAppend does, in tx, exactly what an append does (the same
// append_batch call), so a test can hold it uncommitted.
func rawAppend(ctx context.Context, s *Store, tx pgx.Tx, stream string, events ...eventstore.Event) (eventstore.AppendResult, error) {
	req := &appendReq{stream: stream, expected: eventstore.Any, events: events}
	rows, err := s.d.callAppend(ctx, tx, []*appendReq{req})
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	r := rows[0].result(req)
	return r.res, r.err
}

// lockWaiters counts backends waiting for the store's append lock.
func lockWaiters(ctx context.Context, s *Store) (int, error) {
	key := uint64(s.d.lockKey)
	var n int
	err := s.d.pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND NOT granted AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1`,
		int64(key>>32), int64(key&0xffffffff)).Scan(&n)
	return n, err
}

func evt(typ string) eventstore.Event { return eventstore.Event{Type: typ, Data: []byte(typ)} }

func streamsOf(rs []eventstore.Recorded) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s@%d", r.StreamID, r.Version)
	}
	return out
}
