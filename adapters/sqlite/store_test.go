package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
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

// storeKinds are the two kinds of store Open makes, for the tests that run
// on both: open returns a new, empty store, closed at cleanup; openPair
// returns two stores on one new database, as two processes would open it,
// and is nil for an in-memory database, which is private to its Store.
var storeKinds = []struct {
	name     string
	open     func(t *testing.T) *sqlite.Store
	openPair func(t *testing.T) (eventstore.Store, eventstore.Store)
}{
	{name: "Memory", open: func(t *testing.T) *sqlite.Store { return openMemory(t) }},
	{
		name: "File",
		open: func(t *testing.T) *sqlite.Store { return openFile(t, filepath.Join(t.TempDir(), "events.db")) },
		openPair: func(t *testing.T) (eventstore.Store, eventstore.Store) {
			path := filepath.Join(t.TempDir(), "events.db")
			return openFile(t, path), openFile(t, path)
		},
	},
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
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

// TestOptionsRefused: Open refuses an option given a value it cannot take
// with ErrInvalidInput naming the option, before it creates the file.
func TestOptionsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "never.db")
	for _, opt := range []sqlite.Option{
		sqlite.WithMaxEventSize(0), sqlite.WithReaders(0), sqlite.WithPollInterval(0),
		sqlite.WithPollInterval(-time.Second), sqlite.WithBusyTimeout(-1), sqlite.WithMaxGroupSize(0),
	} {
		s, err := sqlite.Open(t.Context(), path, opt)
		if err == nil {
			_ = s.Close()
		}
		if !errors.Is(err, eventstore.ErrInvalidInput) || !strings.Contains(err.Error(), "sqlite: With") {
			t.Errorf("Open with a bad option: %v, want ErrInvalidInput naming the option", err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused Opens left a file behind (stat: %v)", err)
	}
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

// TestDriverClosed calls every driver method after the driver's Close, as
// a call that passed the front's closed check just before Close would:
// each answers ErrClosed. A read page whose query had a full page before
// takes the raw-rows path, checked too.
func TestDriverClosed(t *testing.T) {
	for _, path := range []string{":memory:", "file"} {
		t.Run(path, func(t *testing.T) {
			if path == "file" {
				path = filepath.Join(t.TempDir(), "closed.db")
			}
			ctx := testCtx(t)
			d, err := sqlite.OpenDriver(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			d.Listen(newRecorder())
			events := make([]eventstore.Event, 100)
			for i := range events {
				events[i] = eventstore.Event{Type: "t"}
			}
			if _, err := d.Append(ctx, &driver.Batch{StreamID: "s", Expected: eventstore.NoStream, Events: events}); err != nil {
				t.Fatal(err)
			}
			warm := &driver.Query{StreamID: "s"}
			if _, err := d.ReadPage(ctx, warm, driver.Range{From: 1, To: 10, Limit: 10}, nil); err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			all := driver.Range{From: 1, To: math.MaxInt64, Limit: 100}
			calls := map[string]func() error{
				"Append": func() error {
					_, err := d.Append(ctx, &driver.Batch{StreamID: "s", Expected: eventstore.Any, Events: events[:1]})
					return err
				},
				"ReadPage": func() error {
					_, err := d.ReadPage(ctx, &driver.Query{StreamID: "s"}, all, nil)
					return err
				},
				"ReadPageRaw": func() error {
					_, err := d.ReadPage(ctx, warm, all, nil)
					return err
				},
				"Head": func() error {
					_, err := d.Head(ctx, "s")
					return err
				},
				"Info": func() error {
					_, err := d.Info(ctx, eventstore.AllStreams)
					return err
				},
				"SaveSnapshot": func() error {
					return d.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "s", Name: "n", Version: 1})
				},
				"LoadSnapshot": func() error {
					_, err := d.LoadSnapshot(ctx, "s", "n")
					return err
				},
				"FindEvent": func() error {
					_, err := d.FindEvent(ctx, "id")
					return err
				},
			}
			for name, call := range calls {
				if err := call(); !errors.Is(err, eventstore.ErrClosed) {
					t.Errorf("%s after Close: %v, want ErrClosed", name, err)
				}
			}
		})
	}
}
