package postgres

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
)

// TestGroupCommit: 64 goroutines appending one event each, to their own
// streams, all at once, share a few transactions instead of 64 serialised
// ones, and each gets its own result.
func TestGroupCommit(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	const goroutines, rounds = 64, 10
	start := make(chan struct{})
	var ready sync.WaitGroup
	var g errgroup.Group
	for i := range goroutines {
		ready.Add(1)
		g.Go(func() error {
			stream := fmt.Sprintf("g%d", i)
			ready.Done()
			<-start
			for r := range rounds {
				res, err := s.Append(t.Context(), stream, eventstore.Exact(uint64(r)), evt("x"))
				if err != nil {
					return err
				}
				if res.Version != uint64(r+1) || res.Appended != 1 {
					return fmt.Errorf("append %d to %s: %+v", r, stream, res)
				}
			}
			return nil
		})
	}
	ready.Wait()
	before := s.Stats()
	began := time.Now()
	close(start)
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(began)
	after := s.Stats()
	groups := after.Commits - before.Commits
	appends := uint64(goroutines * rounds)
	if got := after.Appends - before.Appends; got != appends {
		t.Errorf("Stats: %d appends counted, want %d", got, appends)
	}
	t.Logf("%d appends from %d goroutines in %d transactions, %v (%.0f appends/s)",
		appends, goroutines, groups, elapsed, float64(appends)/elapsed.Seconds())
	if groups > appends/4 {
		t.Errorf("%d appends took %d transactions; want grouping (at most %d)", appends, groups, appends/4)
	}
	info, err := s.Info(t.Context(), eventstore.AllStreams)
	if err != nil {
		t.Fatal(err)
	}
	if info.Count != appends {
		t.Errorf("store holds %d events, want %d", info.Count, appends)
	}
}

// TestReadBreakReleasesConnection: leaving a read early gives its
// connection back to the pool.
func TestReadBreakReleasesConnection(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	evs := make([]eventstore.Event, 100)
	for i := range evs {
		evs[i] = evt("x")
	}
	if _, err := s.Append(t.Context(), "s", eventstore.NoStream, evs...); err != nil {
		t.Fatal(err)
	}
	waitAnnounced(t, s)
	n := 0
	for _, err := range s.Read(t.Context(), "s", eventstore.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			// Read pages: no connection is held while the loop runs.
			if got := s.d.pool.Stat().AcquiredConns(); got != 0 {
				t.Errorf("during the read: %d connections acquired, want 0", got)
			}
			break
		}
	}
	if got := s.d.pool.Stat().AcquiredConns(); got != 0 {
		t.Errorf("after break: %d connections acquired, want 0", got)
	}
}

// TestLingerWaitsForTheGroupsCallers: after a group of n appends, the
// writer waits until n more appends are queued (its callers, appending
// again) or its time is up, so that the callers of a busy store do not
// split into two cohorts taking turns; after a lone append it does not
// wait at all.
func TestLingerWaitsForTheGroupsCallers(t *testing.T) {
	w := newWriter(&pgDriver{cfg: config{groupEvents: 100}})
	start := time.Now()
	w.linger(1, time.Minute)
	if d := time.Since(start); d > time.Second {
		t.Errorf("linger after a lone append took %v, want no wait", d)
	}

	w.queue = []*appendReq{{}} // one queued while the group committed
	done := make(chan struct{})
	go func() {
		w.linger(2, time.Minute)
		close(done)
	}()
	for i := range 2 {
		select {
		case <-done:
			t.Fatalf("linger after a group of 2 ended with %d of its callers' appends queued", i)
		case <-time.After(50 * time.Millisecond):
		}
		if err := w.submit(&appendReq{}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("linger did not end once the group's callers had appended again")
	}

	w.queue = nil
	start = time.Now()
	w.linger(5, 50*time.Millisecond)
	if d := time.Since(start); d < 50*time.Millisecond || d > waitTimeout {
		t.Errorf("linger with no append coming took %v, want its 50ms", d)
	}
}

// waitAnnounced waits until the store's announcer has sent the NOTIFY of
// its last commit, and so holds no connection of the pool.
func waitAnnounced(t *testing.T, s *Store) {
	t.Helper()
	waitFor(t, "the announcer to send its NOTIFY", func() (bool, error) {
		return s.d.announced.Load() >= s.d.announceTop.Load(), nil
	})
}
