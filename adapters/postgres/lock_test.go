package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

// tally is the aggregate of the stream-lock tests: a count of Updates.
type tally struct{ N int64 }

type tallyEvent interface{ isTallyEvent() }

type counted struct{}

func (counted) isTallyEvent() {}

func newTallyRepo(t *testing.T, s *Store, maxAttempts int) *aggregate.Repository[tally, tallyEvent] {
	t.Helper()
	reg := codec.New[tallyEvent]()
	if err := codec.Register[counted](reg, "tally.counted"); err != nil {
		t.Fatal(err)
	}
	repo, err := aggregate.NewRepository(s, aggregate.Config[tally, tallyEvent]{
		Evolve:      func(s tally, _ tallyEvent) tally { s.N++; return s },
		Codec:       reg,
		MaxAttempts: maxAttempts,
	})
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func count(tally) ([]tallyEvent, error) { return []tallyEvent{counted{}}, nil }

// streamLockSessions counts the sessions holding (granted) and awaiting
// stream's lock.
func streamLockSessions(ctx context.Context, s *Store, stream string) (granted, waiting int, err error) {
	key := uint64(s.d.streamLockKey(stream))
	err = s.d.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted) FROM pg_locks
		WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1`,
		int64(key>>32), int64(key&0xffffffff)).Scan(&granted, &waiting)
	return granted, waiting, err
}

// waitLockSessions waits until stream's lock has the given numbers of
// holders and waiters.
func waitLockSessions(t *testing.T, s *Store, stream string, granted, waiting int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d holding and %d awaiting the lock of %q", granted, waiting, stream), func() (bool, error) {
		g, w, err := streamLockSessions(t.Context(), s, stream)
		return g == granted && w == waiting, err
	})
}

// Two Repositories over two stores (two pools: two processes, as far as
// the database can tell) update one aggregate from many goroutines each,
// with 3 attempts. Without the stream lock, each attempt is a coin flip
// between the stores and about one Update in eight gives up; with it, an
// Update under the lock loses at most once (to the other store's Update
// already saving without it when it took the lock), so none may give up.
func TestUpdateTakesTurnsAcrossStores(t *testing.T) {
	schema := freshSchema(t)
	stores := []*Store{openStore(t, schema), openStore(t, schema)}
	const goroutines, per = 12, 10
	var gaveUp atomic.Int64
	var g errgroup.Group
	for _, s := range stores {
		repo := newTallyRepo(t, s, 3)
		for range goroutines {
			g.Go(func() error {
				for range per {
					_, err := repo.Update(t.Context(), "hot", count)
					if errors.Is(err, aggregate.ErrGaveUp) {
						gaveUp.Add(1)
					} else if err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := gaveUp.Load(); n != 0 {
		t.Errorf("%d of %d Updates gave up after 3 attempts", n, 2*goroutines*per)
	}
	a, err := newTallyRepo(t, stores[0], 0).Load(t.Context(), "hot")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.State().N, int64(2*goroutines*per)-gaveUp.Load(); got != want || a.Version() != uint64(want) {
		t.Errorf("counted %d at version %d, want %d: an acknowledged Update is missing or doubled", got, a.Version(), want)
	}
	for _, s := range stores {
		if g, w, err := streamLockSessions(t.Context(), s, "hot"); err != nil || g+w != 0 {
			t.Errorf("after the Updates: %d sessions hold and %d await the stream's lock (%v)", g, w, err)
		}
	}
}

// A LockStream whose context ends while it waits returns at once, and
// its session neither keeps waiting nor takes the lock when the holder
// lets go.
func TestLockStreamCancelledWait(t *testing.T) {
	schema := freshSchema(t)
	holder, waiter := openStore(t, schema), openStore(t, schema)
	unlock, err := holder.LockStream(t.Context(), "s")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		u, err := waiter.LockStream(ctx, "s")
		if u != nil {
			err = errors.Join(errors.New("LockStream took the lock the holder has"), u(context.Background()))
		}
		done <- err
	}()
	waitLockSessions(t, holder, "s", 1, 1)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled LockStream: %v, want context.Canceled", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("LockStream did not return after its context ended")
	}
	waitLockSessions(t, holder, "s", 1, 0)
	if err := unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitLockSessions(t, holder, "s", 0, 0)
	if locked, err := waiter.StreamLocked(t.Context(), "s"); err != nil || locked {
		t.Fatalf("StreamLocked after the unlock = %v, %v; want false", locked, err)
	}
}

// An Update waiting for the stream's lock, held by another process, ends
// promptly when its context ends, and leaves the lock to the others.
func TestUpdateCancelledWhileWaitingForStreamLock(t *testing.T) {
	schema := freshSchema(t)
	other, s := openStore(t, schema), openStore(t, schema)
	repo := newTallyRepo(t, s, 0)
	unlock, err := other.LockStream(t.Context(), "acct")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := repo.Update(ctx, "acct", count)
		done <- err
	}()
	waitLockSessions(t, s, "acct", 1, 1) // asked StreamLocked, found it held, waits
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Update: %v, want context.Canceled", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Update did not return after its context ended")
	}
	waitLockSessions(t, s, "acct", 1, 0)
	if err := unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitLockSessions(t, s, "acct", 0, 0)
	a, err := repo.Update(t.Context(), "acct", count)
	if err != nil || a.State().N != 1 {
		t.Fatalf("Update after the cancelled one: %v (N=%v), want N=1", err, a)
	}
	waitLockSessions(t, s, "acct", 0, 0)
}

// The session holding an Update's stream lock is killed before the Update
// unlocks: the Update still reports its save (acknowledged, stored once),
// the dead connection is not handed back, and the lock is free at once.
func TestUpdateSurvivesLockConnectionKilled(t *testing.T) {
	schema := freshSchema(t)
	other, s := openStore(t, schema), openStore(t, schema)
	repo := newTallyRepo(t, s, 0)
	unlock, err := other.LockStream(t.Context(), "acct")
	if err != nil {
		t.Fatal(err)
	}
	var killOnce sync.Once
	var killErr error
	kill := func(st tally) ([]tallyEvent, error) {
		killOnce.Do(func() {
			// The Update holds the lock now: end its session.
			var pids []int32
			key := uint64(s.d.streamLockKey("acct"))
			rows, err := s.d.pool.Query(t.Context(), `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
				AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1`, int64(key>>32), int64(key&0xffffffff))
			if err == nil {
				for rows.Next() {
					var pid int32
					if err = rows.Scan(&pid); err != nil {
						break
					}
					pids = append(pids, pid)
				}
				rows.Close()
				err = errors.Join(err, rows.Err())
			}
			if err == nil && len(pids) != 1 {
				err = fmt.Errorf("%d sessions hold the lock, want the Update's", len(pids))
			}
			if err == nil {
				_, err = s.d.pool.Exec(t.Context(), "SELECT pg_terminate_backend($1)", pids[0])
			}
			killErr = err
		})
		return count(st)
	}
	done := make(chan error, 1)
	go func() {
		_, err := repo.Update(t.Context(), "acct", kill)
		done <- err
	}()
	waitLockSessions(t, s, "acct", 1, 1)
	if err := unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Update whose lock session was killed: %v, want its save reported", err)
	}
	if killErr != nil {
		t.Fatalf("killing the lock's session: %v", killErr)
	}
	waitLockSessions(t, s, "acct", 0, 0)
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	u, err := other.LockStream(ctx, "acct")
	if err != nil {
		t.Fatalf("LockStream after the killed session: %v", err)
	}
	if err := u(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The next Update (contended: it takes the lock from the first
	// attempt) gets a live connection, and both Updates are stored.
	a, err := repo.Update(t.Context(), "acct", count)
	if err != nil {
		t.Fatal(err)
	}
	if a.State().N != 2 || a.Version() != 2 {
		t.Fatalf("after two Updates: N=%d at version %d, want 2 and 2", a.State().N, a.Version())
	}
}

// Close does not wait for the stream locks still held or awaited: it ends
// their sessions (the locks go with them) and their waits, and a later
// unlock says the store closed.
func TestCloseEndsStreamLocks(t *testing.T) {
	schema := freshSchema(t)
	other := openStore(t, schema)
	s, err := Open(t.Context(), testDSN(t), WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := s.LockStream(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	otherUnlock, err := other.LockStream(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() {
		u, err := s.LockStream(t.Context(), "b")
		if u != nil {
			err = errors.Join(errors.New("LockStream took a lock another store holds"), u(context.Background()))
		}
		waiting <- err
	}()
	waitLockSessions(t, other, "b", 1, 1)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close waited for a held stream lock")
	}
	if err := <-waiting; !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("LockStream waiting when the store closed: %v, want ErrClosed", err)
	}
	if err := unlock(t.Context()); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("unlock after Close: %v, want ErrClosed", err)
	}
	waitLockSessions(t, other, "a", 0, 0)
	waitLockSessions(t, other, "b", 1, 0)
	if err := otherUnlock(t.Context()); err != nil {
		t.Fatal(err)
	}
}
