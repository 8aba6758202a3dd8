package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/torture"
)

// TestBadInputTorture runs the torture package's bad-input checks (nil
// contexts, SQL-shaped IDs, expected version past the end, Close while
// watching with goleak).
func TestBadInputTorture(t *testing.T) {
	testDSN(t)
	torture.BadInput(t, func(t *testing.T) eventstore.Store { return newTestStore(t) })
}

// faultStore opens a store on a fresh schema whose server connections are
// tagged with the schema as application_name, so that a test can find and
// terminate them; extra DSN parameters (e.g. statement_timeout) are added.
func faultStore(t *testing.T, params string, opts ...Option) (*Store, string) {
	t.Helper()
	schema := freshSchema(t)
	dsn := testDSN(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	s, err := Open(t.Context(), dsn+sep+"application_name="+schema+params, append([]Option{WithSchema(schema), WithMigrate()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeOK(t, s) })
	return s, schema
}

func adminConn(t *testing.T) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(context.WithoutCancel(t.Context())); err != nil {
			t.Errorf("admin connection Close: %v", err)
		}
	})
	return c
}

// lockEvents takes an ACCESS EXCLUSIVE lock on the schema's events table
// in a transaction of admin, which blocks appends and reads until rollback.
func lockEvents(t *testing.T, admin *pgx.Conn, schema string) pgx.Tx {
	t.Helper()
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "LOCK TABLE "+pgx.Identifier{schema, "events"}.Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	return tx
}

func terminate(t *testing.T, admin *pgx.Conn, app, extra string) int {
	t.Helper()
	var n int
	if err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND pid <> pg_backend_pid() `+extra, app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFaultTerminateMidAppend terminates the server connection of an
// append while it waits inside its transaction, before its COMMIT: the
// writer cannot tell from the broken connection whether the group
// committed, looks its outcome up (it did not, and the look-up fences it),
// runs it again on a new connection, and the caller gets that run's
// result: stored once, never a conflict.
func TestFaultTerminateMidAppend(t *testing.T) {
	s, schema := faultStore(t, "")
	admin := adminConn(t)
	ctx := ctxT(t)
	if _, err := s.Append(ctx, "s", eventstore.NoStream, eventstore.Event{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	tx := lockEvents(t, admin, schema)
	done := make(chan appendResp, 1)
	go func() {
		res, err := s.Append(ctx, "s", eventstore.Exact(1), eventstore.Event{Type: "t"})
		done <- appendResp{res, err}
	}()
	// Wait (bounded) until the append waits on the lock, then terminate it.
	other := adminConn(t)
	deadline := time.Now().Add(waitTimeout)
	for terminate(t, other, schema, "AND wait_event_type = 'Lock'") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the append never waited on the lock")
		}
		select {
		case r := <-done:
			t.Fatalf("append ended before it was terminated: %+v, %v", r.res, r.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	// The run after the look-up waits on the lock in turn.
	waitFor(t, "the append runs again", func() (bool, error) {
		return s.Stats().OutcomeChecks == 1, nil
	})
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	var r appendResp
	select {
	case r = <-done:
	case <-time.After(waitTimeout):
		t.Fatal("the terminated append did not return")
	}
	if r.err != nil || r.res.Version != 2 || r.res.Appended != 1 {
		t.Fatalf("append whose connection was terminated before COMMIT: %+v, %v; want version 2, 1 appended", r.res, r.err)
	}
	if info, err := s.Info(ctx, "s"); err != nil || info.Version != 2 {
		t.Fatalf("Info after the terminated append: %+v, %v; want version 2 (stored once)", info, err)
	}
}

// TestFaultStatementTimeout runs a store under a short statement_timeout
// while its table is locked: appends and reads fail with the server's
// timeout error, nothing is written, and everything works once the lock
// is gone.
func TestFaultStatementTimeout(t *testing.T) {
	s, schema := faultStore(t, "&statement_timeout=200")
	admin := adminConn(t)
	ctx := ctxT(t)
	if _, err := s.Append(ctx, "s", eventstore.NoStream, eventstore.Event{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	tx := lockEvents(t, admin, schema)
	_, err := s.Append(ctx, "s", eventstore.Exact(1), eventstore.Event{ID: "late", Type: "t"})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Fatalf("append past the statement timeout: %v, want SQLSTATE 57014 (query_canceled)", err)
	}
	if _, err := eventstore.Collect(s.Read(ctx, "s", eventstore.ReadOptions{})); !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Fatalf("read past the statement timeout: %v, want SQLSTATE 57014", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := eventstore.Collect(s.Read(ctx, "s", eventstore.ReadOptions{}))
	if err != nil || len(got) != 1 {
		t.Fatalf("read after the timeouts: %d events, %v; want 1 (nothing written)", len(got), err)
	}
	if res, err := s.Append(ctx, "s", eventstore.Exact(1), eventstore.Event{ID: "late", Type: "t"}); err != nil || res.Version != 2 {
		t.Fatalf("append after the lock: %+v, %v", res, err)
	}
}

// TestFaultTerminateMidWatch terminates every server connection of a
// store (pool and LISTEN) while it watches a stream and all streams, and
// appends from another store before, during and after: each watcher,
// resumed after its last event when a watch ends with an error (as a
// consumer does), sees every event once, in order.
func TestFaultTerminateMidWatch(t *testing.T) {
	s, schema := faultStore(t, "", WithPollInterval(100*time.Millisecond))
	writer := openStore(t, schema)
	admin := adminConn(t)
	ctx := ctxT(t)

	type watchLog struct {
		mu     sync.Mutex
		seen   []eventstore.Recorded
		errors []error
	}
	logs := map[string]*watchLog{"s": {}, eventstore.AllStreams: {}}
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for stream, l := range logs {
		wg.Go(func() {
			var last uint64
			for wctx.Err() == nil {
				for r, err := range s.Watch(wctx, stream, eventstore.WatchOptions{From: eventstore.After(last)}) {
					if err != nil {
						l.mu.Lock()
						l.errors = append(l.errors, err)
						l.mu.Unlock()
						break
					}
					l.mu.Lock()
					l.seen = append(l.seen, r)
					l.mu.Unlock()
					last = r.Version
					if stream == eventstore.AllStreams {
						last = r.Position
					}
				}
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()

	const rounds, per = 5, 4
	terminated := 0
	for i := range rounds {
		for j := range per {
			stream := "s"
			if j%2 == 1 {
				stream = "o"
			}
			if _, err := writer.Append(ctx, stream, eventstore.Any, eventstore.Event{Type: "t"}); err != nil {
				t.Fatal(err)
			}
		}
		if i < rounds-1 {
			terminated += terminate(t, admin, schema, "")
		}
	}
	if terminated == 0 {
		t.Fatal("no connection of the watching store was terminated")
	}
	want, err := eventstore.Collect(writer.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	var wantS []uint64
	for _, r := range want {
		if r.StreamID == "s" {
			wantS = append(wantS, r.Position)
		}
	}
	wantAll := make([]uint64, len(want))
	for i, r := range want {
		wantAll[i] = r.Position
	}
	positions := func(l *watchLog) []uint64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		out := make([]uint64, len(l.seen))
		for i, r := range l.seen {
			out[i] = r.Position
		}
		return out
	}
	for stream, wantPos := range map[string][]uint64{"s": wantS, eventstore.AllStreams: wantAll} {
		waitFor(t, "watcher of "+stream+" caught up", func() (bool, error) {
			return len(positions(logs[stream])) >= len(wantPos), nil
		})
		if diff := cmp.Diff(wantPos, positions(logs[stream])); diff != "" {
			t.Errorf("watcher of %q: positions seen (-want +got):\n%s", stream, diff)
		}
	}
	cancel()
	wg.Wait()
	t.Logf("%d connections terminated; watch errors: %v ($all), %v (s)", terminated, logs[eventstore.AllStreams].errors, logs["s"].errors)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*waitTimeout)
	t.Cleanup(cancel)
	return ctx
}
