package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// TestGroupCommit appends from 64 goroutines to 64 streams at once: each
// caller gets its own right version, and the writer needed fewer commits
// than there were appends.
func TestGroupCommit(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			const writers, perWriter = 64, 20
			s := k.open(t)
			ctx := testCtx(t)
			start := make(chan struct{})
			var g errgroup.Group
			for w := range writers {
				g.Go(func() error {
					<-start
					stream := fmt.Sprintf("stream-%d", w)
					for i := range perWriter {
						res, err := s.Append(ctx, stream, eventstore.Exact(uint64(i)),
							eventstore.Event{Type: "t", Data: []byte(strconv.Itoa(i))})
						if err != nil {
							return fmt.Errorf("%s append %d: %w", stream, i, err)
						}
						if res.Version != uint64(i+1) || res.Appended != 1 {
							return fmt.Errorf("%s append %d: got version %d, appended %d; want %d, 1", stream, i, res.Version, res.Appended, i+1)
						}
					}
					return nil
				})
			}
			close(start)
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
			st := s.Stats()
			if st.Appends != writers*perWriter || st.Events != writers*perWriter {
				t.Errorf("Stats: %+v; want Appends and Events %d", st, writers*perWriter)
			}
			if st.Commits >= st.Appends {
				t.Errorf("Stats: %d commits for %d appends; want fewer commits (group commit)", st.Commits, st.Appends)
			}
			info, err := s.Info(ctx, eventstore.AllStreams)
			if err != nil {
				t.Fatal(err)
			}
			if info.Count != writers*perWriter || info.Position != writers*perWriter {
				t.Errorf("Info($all) = %+v; want count and head %d", info, writers*perWriter)
			}
			for w := range writers {
				got, err := eventstore.Collect(s.Read(ctx, fmt.Sprintf("stream-%d", w), eventstore.ReadOptions{}))
				if err != nil {
					t.Fatal(err)
				}
				for i, r := range got {
					if string(r.Data) != strconv.Itoa(i) || r.Version != uint64(i+1) {
						t.Fatalf("stream-%d event %d: version %d data %q", w, i, r.Version, r.Data)
					}
				}
				if len(got) != perWriter {
					t.Fatalf("stream-%d has %d events, want %d", w, len(got), perWriter)
				}
			}
		})
	}
}

// TestGroupIsolation puts a conflicting append in the same group as good
// ones: only the conflicting one fails.
func TestGroupIsolation(t *testing.T) {
	s := openMemory(t)
	ctx := testCtx(t)
	if _, err := s.Append(ctx, "a", eventstore.NoStream, eventstore.Event{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	var g errgroup.Group
	errs := make([]error, 16)
	for i := range errs {
		g.Go(func() error {
			expected := eventstore.Any
			stream := fmt.Sprintf("ok-%d", i)
			if i%2 == 0 {
				stream, expected = "a", eventstore.NoStream // always a conflict
			}
			_, errs[i] = s.Append(ctx, stream, expected, eventstore.Event{Type: "t"})
			return nil
		})
	}
	_ = g.Wait()
	for i, err := range errs {
		if i%2 == 0 && !errors.Is(err, eventstore.ErrConcurrency) {
			t.Errorf("append %d: %v, want a conflict", i, err)
		}
		if i%2 == 1 && err != nil {
			t.Errorf("append %d: %v, want success", i, err)
		}
	}
	info, err := s.Info(ctx, eventstore.AllStreams)
	if err != nil {
		t.Fatal(err)
	}
	if info.Count != 1+8 {
		t.Errorf("store holds %d events, want 9", info.Count)
	}
}

// holdWriteLock takes the file's write lock on a connection of its own,
// which the caller releases with ROLLBACK; the connection is closed at the
// end of the test.
func holdWriteLock(ctx context.Context, t *testing.T, path string) *sql.Conn {
	t.Helper()
	locker, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = locker.Close() })
	lc, err := locker.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lc.Close() })
	if _, err := lc.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	return lc
}

// TestAppendWithdrawnWhileQueued: a caller whose context ends while its
// request waits in the queue gets the context error and nothing of it is
// written, even though the request is still in the queue (the rule of
// driver.Driver.Append).
func TestAppendWithdrawnWhileQueued(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "w.db")
	d, err := sqlite.OpenDriver(ctx, path, sqlite.WithMaxGroupSize(1), sqlite.WithBusyTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	// Another connection holds the write lock, so the writer blocks in
	// BEGIN IMMEDIATE with the first request taken.
	lc := holdWriteLock(ctx, t, path)

	taken, aDone := d.StartAppend(ctx, "a", eventstore.Event{Type: "t"})
	waitFor(ctx, t, "the writer to take the first request", taken)

	bctx, bcancel := context.WithCancel(ctx)
	bErr := make(chan error, 1)
	go func() {
		_, err := d.Append(bctx, &driver.Batch{StreamID: "b", Expected: eventstore.Any, Events: []eventstore.Event{{Type: "t"}}})
		bErr <- err
	}()
	waitFor(ctx, t, "the second request to be queued", func() bool { return d.Queued() == 1 })
	bcancel()
	select {
	case err := <-bErr:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("withdrawn append returned %v, want context.Canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("withdrawn append did not return")
	}

	if _, err := lc.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-aDone:
		if err != nil {
			t.Fatalf("first append: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("first append did not finish")
	}
	// One more append through the writer proves it has passed b.
	if _, err := d.Append(ctx, &driver.Batch{StreamID: "c", Expected: eventstore.Any, Events: []eventstore.Event{{Type: "t"}}}); err != nil {
		t.Fatal(err)
	}
	for stream, want := range map[string]uint64{"a": 1, "b": 0, "c": 1} {
		v, err := d.Head(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		if v != want {
			t.Errorf("stream %s at version %d, want %d (b was withdrawn)", stream, v, want)
		}
	}
}

// TestAppendTakenOutlivesContext: once the writer has taken an append, a
// context that ends does not undo it: the caller gets the real outcome
// (the other half of driver.Driver.Append's rule).
func TestAppendTakenOutlivesContext(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "t.db")
	d, err := sqlite.OpenDriver(ctx, path, sqlite.WithBusyTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	lc := holdWriteLock(ctx, t, path)
	actx, acancel := context.WithCancel(ctx)
	taken, done := d.StartAppend(actx, "a", eventstore.Event{Type: "t"})
	waitFor(ctx, t, "the writer to take the request", taken)
	acancel()
	if _, err := lc.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("append taken before its context ended: %v, want its real outcome (success)", err)
		}
	case <-ctx.Done():
		t.Fatal("append did not finish")
	}
	if v, err := d.Head(ctx, "a"); err != nil || v != 1 {
		t.Fatalf("Head(a) = %d, %v; want 1", v, err)
	}
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
