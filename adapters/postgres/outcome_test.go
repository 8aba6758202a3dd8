package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esv2/esv2/eventstore"
)

// These tests land a connection fault in the window where the writer
// cannot see from the connection whether a group committed (issue 9 item
// 1), through the store's fault hooks, and check that no caller is told
// anything but the truth: never a second copy, never a conflict for a
// stored append.

// noID is an event without an ID: only the writer's own bookkeeping can
// keep it from being stored twice.
func noID(data string) eventstore.Event {
	return eventstore.Event{Type: "t", Data: []byte(data)}
}

// lossyStore opens a store on a fresh schema that loses every cancel
// request once loseCancels has been called. pgx sends a cancel request,
// over a new connection, for the session of a connection it closes
// broken; losing it (a partition, a pooler that no longer knows the
// session) leaves the old server session running, which is the case the
// fence exists for. Only cancel requests are lost, told by their message
// code: failing "the next dial" instead was flaky, as a look-up could
// take that dial first.
func lossyStore(t *testing.T, opts ...Option) (s *Store, schema string, loseCancels func()) {
	t.Helper()
	schema = freshSchema(t)
	cfg, err := pgxpool.ParseConfig(testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	var lose atomic.Bool
	var d net.Dialer
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &cancelLoser{Conn: c, lose: &lose}, nil
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err = New(t.Context(), pool, append([]Option{WithSchema(schema), WithMigrate(), WithoutListen(), WithoutPoll()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeOK(t, s) })
	return s, schema, func() { lose.Store(true) }
}

// cancelLoser is a connection that, once lose is set, drops a cancel
// request (the first message of a connection, with code 80877102).
type cancelLoser struct {
	net.Conn
	lose    *atomic.Bool
	started bool
}

func (c *cancelLoser) Write(b []byte) (int, error) {
	if !c.started {
		c.started = true
		if c.lose.Load() && len(b) >= 8 && binary.BigEndian.Uint32(b[4:8]) == 80877102 {
			_ = c.Close()
			return 0, errors.New("test: cancel request lost")
		}
	}
	return c.Conn.Write(b)
}

// sessionAlive reports whether the server session pid still exists.
func sessionAlive(t *testing.T, s *Store, pid uint32) bool {
	t.Helper()
	var n int
	if err := s.d.pool.QueryRow(context.WithoutCancel(t.Context()), "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", int32(pid)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// submitGroup commits reqs as one group on the calling goroutine, the way
// the writer does, and returns each request's answer.
func submitGroup(s *Store, reqs ...*appendReq) []appendResp {
	for _, r := range reqs {
		r.ctx = context.Background()
		r.done = make(chan appendResp, 1)
	}
	s.d.commitGroup(reqs)
	out := make([]appendResp, len(reqs))
	for i, r := range reqs {
		out[i] = <-r.done
	}
	return out
}

// copies counts the stored events of stream whose data is data.
func copies(t *testing.T, s *Store, stream, data string) int {
	t.Helper()
	var n int
	err := s.d.pool.QueryRow(t.Context(), "SELECT count(*) FROM "+s.d.schema+".events WHERE stream_id = $1 AND data = $2", stream, []byte(data)).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// terminateBackend ends the server session pid from another connection and
// waits until it is gone.
func terminateBackend(t *testing.T, s *Store, pid uint32) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	if _, err := s.d.pool.Exec(ctx, "SELECT pg_terminate_backend($1)", int32(pid)); err != nil {
		t.Errorf("terminate backend %d: %v", pid, err)
		return
	}
	waitFor(t, "the terminated backend is gone", func() (bool, error) {
		var n int
		err := s.d.pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", int32(pid)).Scan(&n)
		return n == 0, err
	})
}

// TestCommittedGroupNotRunAgain: the server delivers COMMIT's success and
// then ends the session (pg_terminate_backend, or a fast shutdown, landing
// just after the commit): pgx reports FATAL 57P01 when the batch is
// closed. The group is committed and each caller gets its result; before
// issue 9 the writer took the FATAL for "nothing written" and ran each
// append of the group again, storing events without IDs twice.
func TestCommittedGroupNotRunAgain(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	s.d.hooks = &faultHooks{committed: func(pc *pgconn.PgConn, closeErr error) error {
		terminateBackend(t, s, pc.PID())
		// pgx closes a connection that reported FATAL; so does this one.
		_ = pc.Close(context.WithoutCancel(t.Context()))
		if closeErr != nil {
			return closeErr
		}
		// What the batch's Close reports when the termination lands
		// between COMMIT's result and the end of the pipeline.
		return &pgconn.PgError{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "57P01",
			Message: "terminating connection due to administrator command"}
	}}
	got := submitGroup(s,
		&appendReq{stream: "a", expected: eventstore.NoStream, events: []eventstore.Event{noID("a1")}},
		&appendReq{stream: "b", expected: eventstore.Any, events: []eventstore.Event{noID("b1"), noID("b2")}},
	)
	for i, want := range []eventstore.AppendResult{{Version: 1, Position: 1, Appended: 1}, {Version: 2, Position: 3, Appended: 2}} {
		if got[i].err != nil || got[i].res.Version != want.Version || got[i].res.Position != want.Position || got[i].res.Appended != want.Appended {
			t.Errorf("append %d: %+v, %v; want %+v", i, got[i].res, got[i].err, want)
		}
	}
	for _, d := range []struct{ stream, data string }{{"a", "a1"}, {"b", "b1"}, {"b", "b2"}} {
		if n := copies(t, s, d.stream, d.data); n != 1 {
			t.Errorf("%s %s stored %d times, want once", d.stream, d.data, n)
		}
	}
}

// TestLostCommitResultLookedUp: the connection is lost after the server
// committed the group and before its result reached the client. The
// writer looks the group's outcome up on another connection and hands
// each caller its real result (before issue 9, an error: for an Exact
// append the caller's retry then met a conflict for its own events).
func TestLostCommitResultLookedUp(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	if _, err := s.Append(ctx, "b", eventstore.NoStream, eventstore.Event{ID: "b-1", Type: "t"}); err != nil {
		t.Fatal(err)
	}
	s.d.hooks = &faultHooks{sent: func(pc *pgconn.PgConn) {
		// The server commits (its rows become visible), and then the
		// client's side of the connection breaks before it reads a byte.
		waitFor(t, "the group is committed", func() (bool, error) {
			return copies(t, s, "a", "a1") == 1, nil
		})
		_ = pc.Conn().Close()
	}}
	got := submitGroup(s,
		&appendReq{stream: "a", expected: eventstore.NoStream, events: []eventstore.Event{noID("a1")}},
		// A retry of a stored ID plus a new event: its duplicates come
		// back through the outcome row too.
		&appendReq{stream: "b", expected: eventstore.Exact(1), events: []eventstore.Event{{ID: "b-1", Type: "t"}, noID("b2")}},
		&appendReq{stream: "a", expected: eventstore.NoStream, events: []eventstore.Event{noID("conflict")}},
		&appendReq{stream: "c", expected: eventstore.Any, events: []eventstore.Event{{ID: "b-1", Type: "t"}}},
	)
	if r := got[0]; r.err != nil || r.res.Version != 1 || r.res.Position != 2 || r.res.Appended != 1 {
		t.Errorf("append to a: %+v, %v; want version 1, position 2, 1 appended", r.res, r.err)
	}
	wantDup := []eventstore.Duplicate{{Index: 0, ID: "b-1", Version: 1}}
	if r := got[1]; r.err != nil || r.res.Version != 2 || r.res.Position != 3 || r.res.Appended != 1 ||
		len(r.res.Duplicates) != 1 || r.res.Duplicates[0] != wantDup[0] {
		t.Errorf("append to b: %+v, %v; want version 2, position 3, 1 appended, duplicates %+v", r.res, r.err, wantDup)
	}
	var conflict *eventstore.ConflictError
	if r := got[2]; !errors.As(r.err, &conflict) || conflict.Actual != 1 {
		t.Errorf("second NoStream append to a: %+v, %v; want a conflict at version 1", r.res, r.err)
	}
	var idem *eventstore.IdempotencyError
	if r := got[3]; !errors.As(r.err, &idem) || idem.EventID != "b-1" || idem.StoredIn != "b" {
		t.Errorf("append of b's ID to c: %+v, %v; want an IdempotencyError naming b", r.res, r.err)
	}
	if n := copies(t, s, "a", "a1"); n != 1 {
		t.Errorf("a1 stored %d times, want once", n)
	}
	if st := s.Stats(); st.OutcomeChecks != 1 || st.UnknownOutcomes != 0 {
		t.Errorf("Stats: %+v; want 1 outcome check, 0 unknown", st)
	}
}

// TestLostGroupFencedAndRunOnce: the connection is lost while the group
// waits for the append lock, before anything commits. The server session
// is still alive (PostgreSQL notices a vanished client only when it next
// talks to it) and would go on to commit once it gets the lock. The
// look-up fences the group's token, the writer runs the group again, and
// the old session, when it gets the lock, fails at its outcome row: the
// events are stored exactly once.
func TestLostGroupFencedAndRunOnce(t *testing.T) {
	s, _, loseCancels := lossyStore(t)
	ctx := t.Context()
	holder, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.WithoutCancel(ctx))
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock($1)", s.d.lockKey); err != nil {
		t.Fatal(err)
	}
	var zombie, second atomic.Uint32
	s.d.hooks = &faultHooks{sent: func(pc *pgconn.PgConn) {
		if !zombie.CompareAndSwap(0, pc.PID()) {
			second.Store(pc.PID())
			return // the second run
		}
		waitFor(t, "the group waits for the append lock", func() (bool, error) {
			n, err := lockWaiters(ctx, s)
			return n == 1, err
		})
		loseCancels()
		_ = pc.Conn().Close()
	}}
	done := make(chan []appendResp, 1)
	go func() {
		done <- submitGroup(s,
			&appendReq{stream: "a", expected: eventstore.NoStream, events: []eventstore.Event{noID("a1")}},
			&appendReq{stream: "b", expected: eventstore.Any, events: []eventstore.Event{noID("b1")}},
		)
	}()
	// The second run waits for the lock in turn (the old session too,
	// unless something else ended it meanwhile: either way it must not
	// commit).
	waitFor(t, "the group runs again after the look-up", func() (bool, error) {
		pid := second.Load()
		if pid == 0 {
			return false, nil
		}
		var waiting bool
		err := s.d.pool.QueryRow(ctx, "SELECT count(*) > 0 FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND NOT granted", int32(pid)).Scan(&waiting)
		return waiting, err
	})
	if !sessionAlive(t, s, zombie.Load()) {
		t.Fatal("the old session ended before the lock was released: the test does not exercise the fence")
	}
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_unlock($1)", s.d.lockKey); err != nil {
		t.Fatal(err)
	}
	var got []appendResp
	select {
	case got = <-done:
	case <-time.After(waitTimeout):
		t.Fatal("the group did not finish")
	}
	for i, stream := range []string{"a", "b"} {
		if r := got[i]; r.err != nil || r.res.Version != 1 || r.res.Appended != 1 {
			t.Errorf("append to %s: %+v, %v; want version 1, 1 appended", stream, r.res, r.err)
		}
	}
	// The old session gets the lock in turn, fails at its outcome row
	// (ES001) and ends, its client being gone.
	waitFor(t, "the old session has ended", func() (bool, error) {
		return !sessionAlive(t, s, zombie.Load()), nil
	})
	for _, d := range []struct{ stream, data string }{{"a", "a1"}, {"b", "b1"}} {
		if n := copies(t, s, d.stream, d.data); n != 1 {
			t.Errorf("%s %s stored %d times, want once", d.stream, d.data, n)
		}
	}
}

// TestUnknownOutcome: when the outcome cannot be looked up within the
// store's bound, the callers get ErrUnknownOutcome: not a conflict, not
// success, and the group is not run again.
func TestUnknownOutcome(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	s.d.cfg.resolveTimeout = 300 * time.Millisecond
	ctx := t.Context()
	if _, err := s.Append(ctx, "a", eventstore.NoStream, noID("a1")); err != nil { // creates the writer's outcome row
		t.Fatal(err)
	}
	// One session holds the append lock, so the group waits; another
	// holds the writer's outcome row, so the look-up cannot run.
	holder, err := s.d.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(context.WithoutCancel(ctx))
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", s.d.lockKey); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, "SELECT 1 FROM "+s.d.schema+".append_outcomes WHERE writer_id = $1 FOR UPDATE", s.d.writerID); err != nil {
		t.Fatal(err)
	}
	s.d.hooks = &faultHooks{sent: func(pc *pgconn.PgConn) {
		waitFor(t, "the group waits for the append lock", func() (bool, error) {
			n, err := lockWaiters(ctx, s)
			return n == 1, err
		})
		_ = pc.Conn().Close()
	}}
	got := submitGroup(s, &appendReq{stream: "a", expected: eventstore.Exact(1), events: []eventstore.Event{noID("a2")}})
	err = got[0].err
	if !errors.Is(err, eventstore.ErrUnknownOutcome) || errors.Is(err, eventstore.ErrConcurrency) {
		t.Fatalf("append whose outcome cannot be looked up: %+v, %v; want ErrUnknownOutcome", got[0].res, err)
	}
	t.Logf("unknown outcome: %v", err)
	if st := s.Stats(); st.OutcomeChecks != 1 || st.UnknownOutcomes != 1 {
		t.Errorf("Stats: %+v; want 1 outcome check, 1 unknown", st)
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The old session is still alive and commits now: "may or may not
	// have been stored" was the truth, and it is stored once at most.
	s.d.hooks = nil
	waitFor(t, "the old session settles", func() (bool, error) {
		var n int
		err := s.d.pool.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").Scan(&n)
		return n == 0, err
	})
	if n := copies(t, s, "a", "a2"); n > 1 {
		t.Errorf("a2 stored %d times, want at most once", n)
	}
}

// closeWhileBlocked opens a store on a fresh schema with a 1 s close
// timeout and one event, locks its events table from another session,
// runs call (which must come to wait on that lock, in a statement whose
// text matches like), closes the store and checks that Close returns in
// bounded time and call with ErrClosed. It returns the schema once the
// lock is released.
func closeWhileBlocked(t *testing.T, what, like string, call func(context.Context, *Store) error) string {
	t.Helper()
	schema := freshSchema(t)
	s, err := Open(t.Context(), testDSN(t), WithSchema(schema), WithMigrate(), WithoutListen(), WithCloseTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := s.Append(ctx, "s", eventstore.NoStream, noID("1")); err != nil {
		t.Fatal(err)
	}
	tx := lockEvents(t, adminConn(t), schema)
	defer tx.Rollback(context.WithoutCancel(ctx))
	watch := adminConn(t) // not the locking session: its transaction would see one snapshot of pg_stat_activity
	done := make(chan error, 1)
	go func() { done <- call(context.WithoutCancel(ctx), s) }()
	waitFor(t, what+" waits on the table lock", func() (bool, error) {
		var n int
		err := watch.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
			"%"+schema+like).Scan(&n)
		return n == 1, err
	})
	closed := make(chan struct{})
	go func() {
		closeOK(t, s)
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second): // 2 x 1 s, with room for a loaded machine
		t.Fatalf("Close blocked while %s waited for a lock (timeout 1s)", what)
	}
	select {
	case err := <-done:
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("%s cut short by Close: %v, want ErrClosed", what, err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("%s did not return after Close", what)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	return schema
}

// TestCloseBounded: Close returns within its timeout while a group waits
// for a lock another session holds (issue 9 item 4: it blocked until the
// lock was released), and the waiting append gets ErrClosed.
func TestCloseBounded(t *testing.T) {
	schema := closeWhileBlocked(t, "an append", "%append_batch%", func(ctx context.Context, s *Store) error {
		_, err := s.Append(ctx, "s", eventstore.Exact(1), noID("2"))
		return err
	})
	var n int
	if err := adminConn(t).QueryRow(t.Context(), fmt.Sprintf("SELECT count(*) FROM %s.events", pgx.Identifier{schema}.Sanitize())).Scan(&n); err != nil || n != 1 {
		t.Errorf("events stored: %d, %v; want 1 (the cancelled append wrote nothing)", n, err)
	}
}

// TestCloseBoundedWithReadWaiting: Close returns while a Read (whose own
// context never ends) waits for a lock another session holds; the pool's
// Close would otherwise wait for the read's connection. The read gets
// ErrClosed.
func TestCloseBoundedWithReadWaiting(t *testing.T) {
	closeWhileBlocked(t, "a read", "%.events%", func(ctx context.Context, s *Store) error {
		_, err := eventstore.Collect(s.Read(ctx, "s", eventstore.ReadOptions{}))
		return err
	})
}

// TestCloseKeepsFence: a group whose connection broke while it waited for
// a lock is fenced by its look-up; Close then cancels the group's second
// run (its caller gets ErrClosed: nothing stored). The old server session
// of the first run is still alive, its cancel request lost, and gets the
// lock after Close: it must not commit. Close used to delete the writer's
// outcome row, the fence, and the old session then committed (found in
// review).
func TestCloseKeepsFence(t *testing.T) {
	s, schema, loseCancels := lossyStore(t, WithCloseTimeout(500*time.Millisecond))
	ctx := t.Context()
	if _, err := s.Append(ctx, "s", eventstore.NoStream, noID("1")); err != nil {
		t.Fatal(err)
	}
	admin := adminConn(t)
	tx := lockEvents(t, admin, schema)
	// Another connection for pg_stat_activity: admin's transaction would
	// see one snapshot of it.
	watch := adminConn(t)
	defer tx.Rollback(context.WithoutCancel(ctx))
	var first, second atomic.Uint32
	s.d.hooks = &faultHooks{sent: func(pc *pgconn.PgConn) {
		if !first.CompareAndSwap(0, pc.PID()) {
			second.Store(pc.PID())
			return
		}
		waitFor(t, "the group waits on the table lock", func() (bool, error) {
			var n int
			err := watch.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'", int32(pc.PID())).Scan(&n)
			return n == 1, err
		})
		loseCancels()
		_ = pc.Conn().Close()
	}}
	appended := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "s", eventstore.Exact(1), noID("2"))
		appended <- err
	}()
	waitFor(t, "the second run waits on the table lock", func() (bool, error) {
		pid := second.Load()
		if pid == 0 {
			return false, nil
		}
		var n int
		err := watch.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'", int32(pid)).Scan(&n)
		return n == 1, err
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err := <-appended
	if !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("append cancelled by Close: %v, want ErrClosed", err)
	}
	var alive int
	if err := watch.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", int32(first.Load())).Scan(&alive); err != nil {
		t.Fatal(err)
	}
	if alive != 1 {
		t.Fatal("the first run's session ended before the lock was released: the test does not exercise the fence")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first run's session has ended", func() (bool, error) {
		var n int
		err := watch.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", int32(first.Load())).Scan(&n)
		return n == 0, err
	})
	var n int
	if err := watch.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s.events", pgx.Identifier{schema}.Sanitize())).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d events stored after an append answered ErrClosed, want 1", n)
	}
}
