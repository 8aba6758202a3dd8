package driver_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// flakyDriver is a one-stream log whose ReadPage fails with a lost
// connection a given number of times before it answers. The rest of the
// interface is the least a test needs.
type flakyDriver struct {
	mu        sync.Mutex
	events    []eventstore.Recorded
	fails     int // ReadPage calls still to fail
	headFails int // Head calls still to fail
	reads     int
}

func (d *flakyDriver) Append(_ context.Context, b *driver.Batch) (eventstore.AppendResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range b.Events {
		v := uint64(len(d.events) + 1)
		d.events = append(d.events, eventstore.Recorded{Event: e, StreamID: b.StreamID, Version: v, Position: v})
	}
	return eventstore.AppendResult{Version: uint64(len(d.events)), Position: uint64(len(d.events)), Appended: len(b.Events)}, nil
}

func (d *flakyDriver) ReadPage(_ context.Context, _ *driver.Query, r driver.Range, page []eventstore.Recorded) ([]eventstore.Recorded, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads++
	if d.fails > 0 {
		d.fails--
		return page, fmt.Errorf("read: connection reset: %w", driver.ErrConnectionLost)
	}
	for _, e := range d.events {
		if e.Version >= r.From && e.Version <= r.To && len(page) < r.Limit {
			page = append(page, e)
		}
	}
	return page, nil
}

func (d *flakyDriver) Head(context.Context, string) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.headFails > 0 {
		d.headFails--
		return 0, fmt.Errorf("head: connection reset: %w", driver.ErrConnectionLost)
	}
	return uint64(len(d.events)), nil
}

func (d *flakyDriver) Info(context.Context, string) (eventstore.StreamInfo, error) {
	return eventstore.StreamInfo{}, errors.ErrUnsupported
}

func (d *flakyDriver) SaveSnapshot(context.Context, eventstore.Snapshot) error {
	return errors.ErrUnsupported
}

func (d *flakyDriver) LoadSnapshot(context.Context, string, string) (eventstore.Snapshot, error) {
	return eventstore.Snapshot{}, eventstore.ErrNotFound
}

func (d *flakyDriver) Close() error { return nil }

// TestWatchRetriesLostConnection: a watch whose page fails with
// ErrConnectionLost reads it again and goes on, neither skipping nor
// repeating an event; a Read does not retry (its caller may).
func TestWatchRetriesLostConnection(t *testing.T) {
	d := &flakyDriver{}
	f := driver.New(d, driver.Config{})
	defer f.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := f.Append(ctx, "s", eventstore.Any, eventstore.Event{Type: "a"}, eventstore.Event{Type: "b"}); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.fails = 2
	d.mu.Unlock()
	var got []uint64
	for r, err := range f.Watch(ctx, "s", eventstore.WatchOptions{From: eventstore.FromStart()}) {
		if err != nil {
			t.Fatalf("watch ended with %v after %v, want the lost connection retried", err, got)
		}
		got = append(got, r.Version)
		if len(got) == 2 {
			break
		}
	}
	if fmt.Sprint(got) != "[1 2]" {
		t.Errorf("watched versions %v, want [1 2]", got)
	}
	if d.reads != 3 {
		t.Errorf("ReadPage called %d times, want 3 (two lost connections, then the page)", d.reads)
	}

	d.mu.Lock()
	d.fails = 1
	d.mu.Unlock()
	_, err := eventstore.Collect(f.Read(ctx, "s", eventstore.ReadOptions{}))
	if !errors.Is(err, driver.ErrConnectionLost) {
		t.Errorf("Read over a lost connection: err = %v, want ErrConnectionLost", err)
	}
}

// TestFrontChecksBeforeTheDriver: a closed front answers ErrClosed before
// it looks at the arguments, and never calls the driver.
func TestFrontChecksBeforeTheDriver(t *testing.T) {
	d := &flakyDriver{}
	f := driver.New(d, driver.Config{})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Append(t.Context(), eventstore.AllStreams, eventstore.Any, eventstore.Event{}); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Append of invalid input to a closed store: err = %v, want ErrClosed", err)
	}
	if _, err := eventstore.Collect(f.Read(t.Context(), "", eventstore.ReadOptions{Limit: -1})); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Read of invalid options on a closed store: err = %v, want ErrClosed", err)
	}
	if d.reads != 0 || len(d.events) != 0 {
		t.Errorf("the driver was called: %d reads, %d events", d.reads, len(d.events))
	}
}

// TestFilteredWatchRetriesLostHead: a filtered watch bounds its pages by
// the head, and a head lost with the connection is asked again too.
func TestFilteredWatchRetriesLostHead(t *testing.T) {
	d := &flakyDriver{}
	f := driver.New(d, driver.Config{})
	defer f.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := f.Append(ctx, "s", eventstore.Any, eventstore.Event{Type: "a"}); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.headFails = 2
	d.mu.Unlock()
	opts := eventstore.WatchOptions{From: eventstore.FromStart(), Filter: eventstore.Filter{Types: []string{"a"}}}
	for r, err := range f.Watch(ctx, "s", opts) {
		if err != nil {
			t.Fatalf("filtered watch ended with %v, want the lost head retried", err)
		}
		if r.Version != 1 {
			t.Errorf("watched version %d, want 1", r.Version)
		}
		break
	}
}

// TestTranslated: the store's own errors pass a driver's translation as
// they are, however wrapped; a database's errors do not.
func TestTranslated(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&eventstore.ConflictError{StreamID: "s"}, true},
		{fmt.Errorf("append: %w", &eventstore.IdempotencyError{EventID: "e"}), true},
		{&eventstore.ValidationError{Field: "f"}, true},
		{fmt.Errorf("x: %w", eventstore.ErrClosed), true},
		{eventstore.ErrNotFound, true},
		{eventstore.ErrUnknownOutcome, true},
		{context.Canceled, true},
		{fmt.Errorf("read: %w", context.DeadlineExceeded), true},
		{errors.New("sql: database is closed"), false},
		{fmt.Errorf("conn: %w", driver.ErrConnectionLost), false},
	} {
		if got := driver.Translated(c.err); got != c.want {
			t.Errorf("Translated(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// cappedDriver serves at most cap rows a page, as a driver that declares
// Config.MaxPageRows may, and counts its pages in q.Prepared, as drivers
// keep per-read state there.
type cappedDriver struct {
	flakyDriver
	cap int
}

func (d *cappedDriver) ReadPage(ctx context.Context, q *driver.Query, r driver.Range, page []eventstore.Recorded) ([]eventstore.Recorded, error) {
	n, _ := q.Prepared.(int)
	q.Prepared = n + 1
	r.Limit = min(r.Limit, d.cap)
	return d.flakyDriver.ReadPage(ctx, q, r, page)
}

// TestFrontHonoursMaxPageRows: the front never asks a driver for more rows
// than Config.MaxPageRows, on a Read's first page or a watch's, so a driver
// that caps its pages loses nothing (a short page is the end to the front).
func TestFrontHonoursMaxPageRows(t *testing.T) {
	d := &cappedDriver{cap: 8}
	f := driver.New(d, driver.Config{MaxPageRows: 8})
	defer f.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	events := make([]eventstore.Event, 100)
	for i := range events {
		events[i].Type = "t"
	}
	if _, err := f.Append(ctx, "s", eventstore.NoStream, events...); err != nil {
		t.Fatal(err)
	}
	got, err := eventstore.Collect(f.Read(ctx, "s", eventstore.ReadOptions{}))
	if err != nil || len(got) != 100 {
		t.Errorf("Read over a driver capped at 8 rows: %d events, %v; want 100", len(got), err)
	}
	n := 0
	for _, err := range f.Watch(ctx, "s", eventstore.WatchOptions{}) {
		if err != nil {
			t.Fatalf("Watch: %v after %d events", err, n)
		}
		if n++; n == 100 {
			break
		}
	}
}

// TestIteratorRangedConcurrently: one Read iterator ranged by several
// goroutines at once, and ranged again, gives each range the whole read:
// the per-read state drivers keep in the Query is per iteration (run with
// -race).
func TestIteratorRangedConcurrently(t *testing.T) {
	d := &cappedDriver{cap: 4}
	f := driver.New(d, driver.Config{MaxPageRows: 4})
	defer f.Close()
	ctx := t.Context()
	events := make([]eventstore.Event, 20)
	for i := range events {
		events[i].Type = "t"
	}
	if _, err := f.Append(ctx, "s", eventstore.NoStream, events...); err != nil {
		t.Fatal(err)
	}
	seq := f.Read(ctx, "s", eventstore.ReadOptions{})
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, err := range seq {
				if err != nil {
					t.Error(err)
					return
				}
				counts[i]++
			}
		}()
	}
	wg.Wait()
	for i, n := range counts {
		if n != 20 {
			t.Errorf("range %d got %d events, want 20", i, n)
		}
	}
}

// TestReadLimitIsOnePage: a Read with a Limit up to Config.MaxPageRows
// asks the driver for one page of that many rows, not a small first page
// and then the rest: a subscription reads each batch so, and paid two
// queries per batch of 100.
func TestReadLimitIsOnePage(t *testing.T) {
	d := &cappedDriver{cap: 1024}
	f := driver.New(d, driver.Config{})
	defer f.Close()
	ctx := t.Context()
	events := make([]eventstore.Event, 300)
	for i := range events {
		events[i].Type = "t"
	}
	if _, err := f.Append(ctx, "s", eventstore.NoStream, events...); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 100, 300} {
		d.mu.Lock()
		d.reads = 0
		d.mu.Unlock()
		got, err := eventstore.Collect(f.Read(ctx, "s", eventstore.ReadOptions{Limit: limit}))
		if err != nil || len(got) != limit {
			t.Fatalf("Read with Limit %d: %d events, %v", limit, len(got), err)
		}
		d.mu.Lock()
		reads := d.reads
		d.mu.Unlock()
		if reads != 1 {
			t.Errorf("Read with Limit %d: %d pages, want 1", limit, reads)
		}
	}
}

// aheadDriver reports the start of every page read on started and counts
// the reads under way.
type aheadDriver struct {
	flakyDriver
	started chan uint64
	running int // reads under way, under mu
}

func (d *aheadDriver) ReadPage(ctx context.Context, q *driver.Query, r driver.Range, page []eventstore.Recorded) ([]eventstore.Recorded, error) {
	d.mu.Lock()
	d.running++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.running--
		d.mu.Unlock()
	}()
	d.started <- r.From
	return d.flakyDriver.ReadPage(ctx, q, r, page)
}

// TestReadAheadTwoPages: with Config.ReadAhead, the two pages after the
// one the loop body is on are read while it runs (with one, the database
// sat idle whenever the loop body was the slower), every event comes
// once and in order, and a loop that breaks leaves no read under way
// when it returns.
func TestReadAheadTwoPages(t *testing.T) {
	d := &aheadDriver{started: make(chan uint64, 100)}
	f := driver.New(d, driver.Config{MaxPageRows: 8, ReadAhead: true})
	defer f.Close()
	ctx := t.Context()
	events := make([]eventstore.Event, 100)
	for i := range events {
		events[i].Type = "t"
	}
	if _, err := f.Append(ctx, "s", eventstore.NoStream, events...); err != nil {
		t.Fatal(err)
	}
	// The pages start at versions 1, 9, 17...: on the first event, the
	// pages at 9 and 17 are read before the loop body goes on.
	want := uint64(1)
	for e, err := range f.Read(ctx, "s", eventstore.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Version != want {
			t.Fatalf("event at version %d, want %d", e.Version, want)
		}
		want++
		if e.Version != 1 {
			continue
		}
		timeout := time.After(5 * time.Second)
		for _, from := range []uint64{1, 9, 17} {
			select {
			case got := <-d.started:
				if got != from {
					t.Fatalf("page read from %d, want %d", got, from)
				}
			case <-timeout:
				t.Fatalf("the page from %d was not read while the loop body ran on the first", from)
			}
		}
	}
	if want != 101 {
		t.Fatalf("read up to version %d, want 100", want-1)
	}
	for len(d.started) > 0 {
		<-d.started
	}
	for e, err := range f.Read(ctx, "s", eventstore.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Version == 20 {
			break
		}
	}
	d.mu.Lock()
	running := d.running
	d.mu.Unlock()
	if running != 0 {
		t.Errorf("%d page reads under way after the loop broke", running)
	}
	if n := len(d.started); n > 5 {
		t.Errorf("%d pages read for a loop that broke in the third, want at most 5", n)
	}
}
