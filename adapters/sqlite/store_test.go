package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
)

// Environment of the appender child process (see TestMultiProcessWatch).
const (
	envAppendPath  = "ESV2_SQLITE_TEST_APPEND_PATH"
	envAppendCount = "ESV2_SQLITE_TEST_APPEND_COUNT"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envAppendPath); path != "" {
		os.Exit(runAppender(path, os.Getenv(envAppendCount)))
	}
	goleak.VerifyTestMain(m)
}

// runAppender is the child process of TestMultiProcessWatch: it appends
// count events, one per append, to stream "child" of the file at path.
func runAppender(path, count string) int {
	n, err := strconv.Atoi(count)
	if err != nil {
		fmt.Fprintln(os.Stderr, "appender:", err)
		return 2
	}
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "appender:", err)
		return 1
	}
	defer s.Close()
	for i := range n {
		if _, err := s.Append(ctx, "child", eventstore.Exact(uint64(i)), eventstore.Event{Type: "child", Data: []byte(strconv.Itoa(i + 1))}); err != nil {
			fmt.Fprintln(os.Stderr, "appender:", err)
			return 1
		}
	}
	return 0
}

func openMemory(t *testing.T, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), ":memory:", opts...)
	if err != nil {
		t.Fatalf("Open(:memory:): %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openFile(t *testing.T, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, opts...)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestMultiProcessWatch starts a second OS process appending to the same
// file while this process appends too and watches all streams: every event
// arrives once, in position order, and the child's in version order.
func TestMultiProcessWatch(t *testing.T) {
	const childEvents, ownEvents = 200, 50
	path := filepath.Join(t.TempDir(), "shared.db")
	s := openFile(t, path, sqlite.WithPollInterval(2*time.Millisecond))
	ctx := testCtx(t)

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	type seen struct {
		got []eventstore.Recorded
		err error
	}
	done := make(chan seen, 1)
	go func() {
		var out seen
		for r, err := range s.Watch(watchCtx, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()}) {
			if err != nil {
				out.err = err
				break
			}
			out.got = append(out.got, r)
			if len(out.got) == childEvents+ownEvents {
				break
			}
		}
		done <- out
	}()

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envAppendPath+"="+path, envAppendCount+"="+strconv.Itoa(childEvents))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting appender process: %v", err)
	}
	for i := range ownEvents {
		if _, err := s.Append(ctx, "parent", eventstore.Exact(uint64(i)), eventstore.Event{Type: "parent"}); err != nil {
			t.Errorf("parent append %d: %v", i, err)
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("appender process: %v", err)
	}

	var out seen
	select {
	case out = <-done:
	case <-ctx.Done():
		t.Fatal("watcher did not receive every event before the deadline")
	}
	if out.err != nil {
		t.Fatalf("watch: %v", out.err)
	}
	var child []string
	var parent int
	for i, r := range out.got {
		if r.Position != uint64(i+1) {
			t.Fatalf("event %d has position %d, want %d (gap, duplicate or disorder)", i, r.Position, i+1)
		}
		switch r.StreamID {
		case "child":
			child = append(child, string(r.Data))
			if r.Version != uint64(len(child)) {
				t.Errorf("child event %d has version %d", len(child), r.Version)
			}
		case "parent":
			parent++
		}
	}
	var want []string
	for i := range childEvents {
		want = append(want, strconv.Itoa(i+1))
	}
	if diff := cmp.Diff(want, child); diff != "" {
		t.Errorf("child events (-want +got):\n%s", diff)
	}
	if parent != ownEvents {
		t.Errorf("got %d parent events, want %d", parent, ownEvents)
	}
}

// TestGroupCommit appends from 64 goroutines to 64 streams at once: each
// caller gets its own right version, and the writer needed fewer commits
// than there were appends.
func TestGroupCommit(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *sqlite.Store
	}{
		{"Memory", func(t *testing.T) *sqlite.Store { return openMemory(t) }},
		{"File", func(t *testing.T) *sqlite.Store { return openFile(t, filepath.Join(t.TempDir(), "g.db")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const writers, perWriter = 64, 20
			s := tc.open(t)
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
			if info.Count != writers*perWriter || info.Version != writers*perWriter {
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

func TestSchemaVersionRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(t.Context(), path)
	if !errors.Is(err, sqlite.ErrSchemaVersion) {
		if s != nil {
			_ = s.Close()
		}
		t.Fatalf("Open of a database with schema version 99: %v, want ErrSchemaVersion", err)
	}
	t.Log(err)
}

func TestNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	junk := make([]byte, 8192)
	for i := range junk {
		junk[i] = "this is not a database "[i%23]
	}
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(t.Context(), path)
	if !errors.Is(err, sqlite.ErrNotDatabase) {
		if s != nil {
			_ = s.Close()
		}
		t.Fatalf("Open of a text file: %v, want ErrNotDatabase", err)
	}
	t.Log(err)
}

func TestMemoryStoresIndependent(t *testing.T) {
	ctx := testCtx(t)
	a := openMemory(t)
	b, err := sqlite.Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if _, err := a.Append(ctx, "s", eventstore.NoStream, eventstore.Event{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, "s", eventstore.NoStream, eventstore.Event{Type: "u"}, eventstore.Event{Type: "u"}); err != nil {
		t.Fatalf("second memory store sees the first one's stream: %v", err)
	}
	for _, tc := range []struct {
		s    *sqlite.Store
		want uint64
	}{{a, 1}, {b, 2}} {
		info, err := tc.s.Info(ctx, eventstore.AllStreams)
		if err != nil {
			t.Fatal(err)
		}
		if info.Count != tc.want {
			t.Errorf("store holds %d events, want %d", info.Count, tc.want)
		}
	}
	// A new memory store after Close starts empty too.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	c := openMemory(t)
	info, err := c.Info(ctx, eventstore.AllStreams)
	if err != nil {
		t.Fatal(err)
	}
	if info.Count != 0 {
		t.Errorf("new memory store holds %d events", info.Count)
	}
}

// TestCloseEndsWatchers closes a store while watchers wait: each ends with
// ErrClosed, and later calls fail with ErrClosed.
func TestCloseEndsWatchers(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *sqlite.Store
	}{
		{"Memory", func(t *testing.T) *sqlite.Store { return openMemory(t) }},
		{"File", func(t *testing.T) *sqlite.Store { return openFile(t, filepath.Join(t.TempDir(), "c.db")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			ctx := testCtx(t)
			streams := []string{"a", "b", eventstore.AllStreams}
			ready := make(chan struct{}, len(streams))
			ends := make(chan error, len(streams))
			var wg sync.WaitGroup
			for _, id := range streams {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var last error
					first := true
					for _, err := range s.Watch(ctx, id, eventstore.WatchOptions{From: eventstore.FromStart()}) {
						if err != nil {
							last = err
							break
						}
						if first {
							ready <- struct{}{}
							first = false
						}
					}
					ends <- last
				}()
			}
			for _, id := range []string{"a", "b"} {
				if _, err := s.Append(ctx, id, eventstore.Any, eventstore.Event{Type: "t"}); err != nil {
					t.Fatal(err)
				}
			}
			for range streams {
				select {
				case <-ready:
				case <-ctx.Done():
					t.Fatal("watchers did not start")
				}
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			wg.Wait()
			close(ends)
			for err := range ends {
				if !errors.Is(err, eventstore.ErrClosed) {
					t.Errorf("watcher ended with %v, want ErrClosed", err)
				}
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := s.Append(ctx, "a", eventstore.Any, eventstore.Event{Type: "t"}); !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("Append after Close: %v, want ErrClosed", err)
			}
			if _, err := eventstore.Collect(s.Read(ctx, "a", eventstore.ReadOptions{})); !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("Read after Close: %v, want ErrClosed", err)
			}
			if _, err := s.Info(ctx, "a"); !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("Info after Close: %v, want ErrClosed", err)
			}
			if _, err := s.LoadSnapshot(ctx, "a", ""); !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("LoadSnapshot after Close: %v, want ErrClosed", err)
			}
			if err := s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "a", Version: 1}); !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("SaveSnapshot after Close: %v, want ErrClosed", err)
			}
		})
	}
}

// TestCloseWithPendingAppends closes while appends are in flight: every
// append returns its result or ErrClosed, none hangs.
func TestCloseWithPendingAppends(t *testing.T) {
	s := openMemory(t)
	ctx := testCtx(t)
	var g errgroup.Group
	for w := range 32 {
		g.Go(func() error {
			for i := 0; ; i++ {
				_, err := s.Append(ctx, fmt.Sprintf("s-%d", w), eventstore.Exact(uint64(i)), eventstore.Event{Type: "t"})
				if errors.Is(err, eventstore.ErrClosed) {
					return nil
				}
				if err != nil {
					return err
				}
			}
		})
	}
	// Let some appends through before closing.
	for s.Stats().Appends < 100 {
		select {
		case <-ctx.Done():
			t.Fatal("no appends went through")
		default:
			runtime.Gosched()
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestReadPages reads more events than one page holds, forwards,
// backwards and with limits, and appends from inside the loop body.
func TestReadPages(t *testing.T) {
	const n = 2500
	s := openMemory(t)
	ctx := testCtx(t)
	batch := make([]eventstore.Event, n)
	for i := range batch {
		batch[i] = eventstore.Event{Type: "t", Data: []byte(strconv.Itoa(i + 1))}
	}
	if _, err := s.Append(ctx, "big", eventstore.NoStream, batch...); err != nil {
		t.Fatal(err)
	}
	versions := func(opts eventstore.ReadOptions, stream string) []uint64 {
		t.Helper()
		var out []uint64
		for r, err := range s.Read(ctx, stream, opts) {
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Data) != strconv.FormatUint(r.Version, 10) {
				t.Fatalf("event %d has data %q", r.Version, r.Data)
			}
			out = append(out, r.Version)
		}
		return out
	}
	seq := func(from, to uint64) []uint64 {
		var out []uint64
		if from <= to {
			for v := from; v <= to; v++ {
				out = append(out, v)
			}
		} else {
			for v := from; v >= to; v-- {
				out = append(out, v)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		opts eventstore.ReadOptions
		want []uint64
	}{
		{"Forwards", eventstore.ReadOptions{}, seq(1, n)},
		{"ForwardsFrom", eventstore.ReadOptions{From: 1000}, seq(1000, n)},
		{"ForwardsLimit", eventstore.ReadOptions{From: 10, Limit: 2000}, seq(10, 2009)},
		{"Backwards", eventstore.ReadOptions{Backwards: true}, seq(n, 1)},
		{"BackwardsFrom", eventstore.ReadOptions{Backwards: true, From: 1500}, seq(1500, 1)},
		{"BackwardsLimit", eventstore.ReadOptions{Backwards: true, Limit: 1100}, seq(n, n-1099)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, versions(tc.opts, "big")); diff != "" {
				t.Errorf("versions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, versions(tc.opts, eventstore.AllStreams)); diff != "" {
				t.Errorf("positions (-want +got):\n%s", diff)
			}
		})
	}
	// A projection that appends while it reads must not deadlock.
	count := 0
	for r, err := range s.Read(ctx, "big", eventstore.ReadOptions{Limit: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, "projection", eventstore.Any, eventstore.Event{Type: "seen", Data: r.Data}); err != nil {
			t.Fatalf("append inside a read loop: %v", err)
		}
		count++
	}
	if count != 3 {
		t.Errorf("read %d events, want 3", count)
	}
}

// TestMetadataFilterKeys filters on metadata keys that need quoting in a
// JSON path.
func TestMetadataFilterKeys(t *testing.T) {
	s := openMemory(t)
	ctx := testCtx(t)
	keys := []string{`a"b`, `x.y`, `c\d`, `$`, `it's`, `[0]`, "é"}
	for i, k := range keys {
		md := map[string]string{k: "v" + strconv.Itoa(i), "other": "x"}
		if _, err := s.Append(ctx, "m", eventstore.Any, eventstore.Event{Type: "t", Metadata: md}); err != nil {
			t.Fatal(err)
		}
	}
	for i, k := range keys {
		for _, f := range []eventstore.MetadataFilter{
			eventstore.MetadataEquals(k, "v"+strconv.Itoa(i)),
			eventstore.MetadataOneOf(k, "nope", "v"+strconv.Itoa(i)),
			eventstore.MetadataHasPrefix(k, "v"),
		} {
			got, err := eventstore.Collect(s.Read(ctx, "m", eventstore.ReadOptions{Filter: eventstore.Filter{Metadata: []eventstore.MetadataFilter{f}}}))
			if err != nil {
				t.Fatalf("filter %+v: %v", f, err)
			}
			if len(got) != 1 || got[0].Version != uint64(i+1) {
				t.Errorf("filter %+v: got %d events %+v, want only version %d", f, len(got), got, i+1)
			}
		}
	}
}

// TestWatchFilteredLive watches all streams for one event type while
// writers append that type among many others: every matching event arrives
// once, in order, including those committed while a page was being read.
func TestWatchFilteredLive(t *testing.T) {
	const writers, perWriter = 4, 150
	s := openFile(t, filepath.Join(t.TempDir(), "w.db"))
	ctx := testCtx(t)
	want := writers * perWriter / 3
	done := make(chan []eventstore.Recorded, 1)
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		var got []eventstore.Recorded
		opts := eventstore.WatchOptions{From: eventstore.FromStart(), Filter: eventstore.Filter{Types: []string{"match"}, StreamPrefix: "w-"}}
		close(started)
		for r, err := range s.Watch(ctx, eventstore.AllStreams, opts) {
			if err != nil {
				errc <- err
				return
			}
			got = append(got, r)
			if len(got) == want {
				break
			}
		}
		done <- got
	}()
	<-started
	var g errgroup.Group
	for w := range writers {
		g.Go(func() error {
			for i := range perWriter {
				typ := "other"
				if i%3 == 0 {
					typ = "match"
				}
				if _, err := s.Append(ctx, fmt.Sprintf("w-%d", w), eventstore.Any, eventstore.Event{Type: typ}); err != nil {
					return err
				}
				if _, err := s.Append(ctx, fmt.Sprintf("x-%d", w), eventstore.Any, eventstore.Event{Type: "match"}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		for i, r := range got {
			if r.Type != "match" || r.StreamID[:2] != "w-" {
				t.Fatalf("event %d: %s in %s passed the filter", i, r.Type, r.StreamID)
			}
			if i > 0 && r.Position <= got[i-1].Position {
				t.Fatalf("event %d: position %d after %d", i, r.Position, got[i-1].Position)
			}
		}
	case err := <-errc:
		t.Fatalf("watch: %v", err)
	case <-ctx.Done():
		t.Fatal("watcher did not see every matching event")
	}
}

// TestManyWatchersOtherStore has a thousand watchers on one Store wait for
// an append made through another Store on the same file (as another
// process would): the single poller wakes them all.
func TestManyWatchersOtherStore(t *testing.T) {
	const watchers = 1000
	path := filepath.Join(t.TempDir(), "many.db")
	s := openFile(t, path)
	other := openFile(t, path)
	ctx := testCtx(t)
	var g errgroup.Group
	for range watchers {
		g.Go(func() error {
			for r, err := range s.Watch(ctx, "s", eventstore.WatchOptions{From: eventstore.FromStart()}) {
				if err != nil {
					return err
				}
				if r.Version != 1 || r.Type != "hello" {
					return fmt.Errorf("got %s@%d, want hello@1", r.Type, r.Version)
				}
				return nil
			}
			return ctx.Err()
		})
	}
	if _, err := other.Append(ctx, "s", eventstore.NoStream, eventstore.Event{Type: "hello"}); err != nil {
		t.Fatal(err)
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestReadDoesNotMaterialise reads a stream far larger than a page and
// checks that the live heap stays bounded by a page, not by the stream
// (10,000 events of 1 KiB would hold over 10 MB). The race detector makes
// the transpiled SQLite very slow, hence the modest count.
func TestReadDoesNotMaterialise(t *testing.T) {
	const n, size = 10_000, 1024
	path := filepath.Join(t.TempDir(), "large.db")
	openFile(t, path) // creates the schema
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Filled in SQL: appending them through the store is not
	// what this test is about.
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO events (stream_id, version, type, data, time)
			WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d)
			SELECT 'big', x, 't', zeroblob(%d), 0 FROM c`, n, size),
		fmt.Sprintf(`INSERT INTO streams (stream_id, version, last_time) VALUES ('big', %d, 0)`, n),
		fmt.Sprintf(`UPDATE head SET position = %d, count = %d`, n, n),
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	s := openFile(t, path)
	ctx := testCtx(t)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()
	var peak uint64
	count := 0
	for r, err := range s.Read(ctx, "big", eventstore.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		count++
		if r.Version != uint64(count) || len(r.Data) != size {
			t.Fatalf("event %d: version %d, %d bytes", count, r.Version, len(r.Data))
		}
		if count%1_000 == 0 {
			peak = max(peak, heap())
		}
	}
	if count != n {
		t.Fatalf("read %d events, want %d", count, n)
	}
	if grown := int64(peak) - int64(base); grown > 5<<20 {
		t.Errorf("live heap grew by %d bytes while reading; want it bounded by a page", grown)
	}
	t.Logf("live heap grew by at most %d KiB over %d events", (int64(peak)-int64(base))>>10, n)
}

// TestOpenPaths opens file names that need escaping in a URI, and URIs.
func TestOpenPaths(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{
		filepath.Join(dir, "with space?and#hash%.db"),
		"file:" + filepath.Join(dir, "uri.db"),
		"file:" + filepath.Join(dir, "uri-params.db") + "?cache=private",
	} {
		s := openFile(t, path)
		ctx := testCtx(t)
		if _, err := s.Append(ctx, "s", eventstore.NoStream, eventstore.Event{Type: "t"}); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openFile(t, path)
		info, err := s.Info(ctx, "s")
		if err != nil || info.Version != 1 {
			t.Errorf("%s reopened: %+v, %v; want version 1", path, info, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "with space?and#hash%.db")); err != nil {
		t.Errorf("file not created under its own name: %v", err)
	}
}

// TestWatchLargeForeignBatch has another store append more events at once
// than the poller reads after a change: the watcher still gets them all.
func TestWatchLargeForeignBatch(t *testing.T) {
	const n = 5000
	path := filepath.Join(t.TempDir(), "bulk.db")
	s := openFile(t, path)
	other := openFile(t, path)
	ctx := testCtx(t)
	got := make(chan int, 1)
	go func() {
		count := 0
		for r, err := range s.Watch(ctx, "w", eventstore.WatchOptions{From: eventstore.FromStart()}) {
			if err != nil || r.Version != uint64(count+1) {
				break
			}
			if count++; count == n+1 {
				break
			}
		}
		got <- count
	}()
	batch := make([]eventstore.Event, n)
	for i := range batch {
		batch[i] = eventstore.Event{Type: "t"}
	}
	if _, err := other.Append(ctx, "other", eventstore.NoStream, batch...); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Append(ctx, "w", eventstore.NoStream, batch...); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Append(ctx, "w", eventstore.Exact(n), eventstore.Event{Type: "last"}); err != nil {
		t.Fatal(err)
	}
	select {
	case count := <-got:
		if count != n+1 {
			t.Fatalf("watcher got %d events in order, want %d", count, n+1)
		}
	case <-ctx.Done():
		t.Fatal("watcher did not get every event")
	}
}
