package driver_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// logDriver is an in-memory log of many streams that counts the queries
// the front makes (ReadPage and Head calls), and can fail the next
// ReadPage calls with an error that is not a lost connection. It filters
// by type and stream prefix, all the tests here need.
type logDriver struct {
	mu      sync.Mutex
	events  []eventstore.Recorded // position = index + 1
	streams map[string][]int
	queries int
	fails   int
}

func newLogDriver() *logDriver { return &logDriver{streams: make(map[string][]int)} }

func (d *logDriver) Append(_ context.Context, b *driver.Batch) (eventstore.AppendResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	list := d.streams[b.StreamID]
	if !b.Expected.Matches(uint64(len(list))) {
		return eventstore.AppendResult{}, &eventstore.ConflictError{StreamID: b.StreamID, Expected: b.Expected, Actual: uint64(len(list))}
	}
	for _, e := range b.Events {
		list = append(list, len(d.events))
		d.events = append(d.events, eventstore.Recorded{Event: e, StreamID: b.StreamID, Version: uint64(len(list)), Position: uint64(len(d.events) + 1)})
	}
	d.streams[b.StreamID] = list
	return eventstore.AppendResult{Version: uint64(len(list)), Position: uint64(len(d.events)), Appended: len(b.Events)}, nil
}

func (d *logDriver) ReadPage(_ context.Context, q *driver.Query, r driver.Range, page []eventstore.Recorded) ([]eventstore.Recorded, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queries++
	if d.fails > 0 {
		d.fails--
		return page, errors.New("logDriver: read failed")
	}
	var idx []int
	if q.StreamID == eventstore.AllStreams {
		for i := range d.events {
			idx = append(idx, i)
		}
	} else {
		idx = d.streams[q.StreamID]
	}
	for k, i := range idx {
		e := d.events[i]
		key := uint64(k + 1)
		if key < r.From || key > r.To || len(page) == r.Limit {
			continue
		}
		if !strings.HasPrefix(e.StreamID, q.Filter.StreamPrefix) || len(q.Filter.Types) > 0 && q.Filter.Types[0] != e.Type {
			continue
		}
		page = append(page, e)
	}
	return page, nil
}

func (d *logDriver) Head(_ context.Context, streamID string) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queries++
	if streamID == eventstore.AllStreams {
		return uint64(len(d.events)), nil
	}
	return uint64(len(d.streams[streamID])), nil
}

func (d *logDriver) Info(context.Context, string) (eventstore.StreamInfo, error) {
	return eventstore.StreamInfo{}, errors.ErrUnsupported
}

func (d *logDriver) SaveSnapshot(context.Context, eventstore.Snapshot) error {
	return errors.ErrUnsupported
}

func (d *logDriver) LoadSnapshot(context.Context, string, string) (eventstore.Snapshot, error) {
	return eventstore.Snapshot{}, eventstore.ErrNotFound
}

func (d *logDriver) Close() error { return nil }

// takeQueries returns the queries counted since the last call.
func (d *logDriver) takeQueries() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.queries
	d.queries = 0
	return n
}

// receipt is one event a test watcher got.
type receipt struct {
	watcher int
	r       eventstore.Recorded
}

// startWatchers starts one watcher per options, each sending what it gets
// to the returned channel; errs gets their errors. They end with ctx.
func startWatchers(ctx context.Context, t *testing.T, s eventstore.Store, watches []watchSpec) (<-chan receipt, <-chan error) {
	t.Helper()
	got := make(chan receipt, 16*len(watches))
	errs := make(chan error, len(watches))
	var wg sync.WaitGroup
	for i, w := range watches {
		wg.Go(func() {
			for r, err := range s.Watch(ctx, w.stream, w.opts) {
				if err != nil {
					errs <- fmt.Errorf("watcher %d (%q %+v): %w", i, w.stream, w.opts.Filter, err)
					return
				}
				select {
				case got <- receipt{i, r}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	t.Cleanup(wg.Wait)
	return got, errs
}

type watchSpec struct {
	stream string
	opts   eventstore.WatchOptions
}

// waitReceipts waits until every watcher got the event of stream s at
// version v, and checks that none got anything else.
func waitReceipts(t *testing.T, got <-chan receipt, errs <-chan error, watchers int, s string, v uint64) {
	t.Helper()
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	seen := make([]bool, watchers)
	for n := 0; n < watchers; {
		select {
		case rc := <-got:
			if rc.r.StreamID != s || rc.r.Version != v {
				t.Fatalf("watcher %d got %s@%d, want %s@%d", rc.watcher, rc.r.StreamID, rc.r.Version, s, v)
			}
			if seen[rc.watcher] {
				t.Fatalf("watcher %d got %s@%d twice", rc.watcher, s, v)
			}
			seen[rc.watcher] = true
			n++
		case err := <-errs:
			t.Fatal(err)
		case <-timer.C:
			t.Fatalf("%d of %d watchers got %s@%d within 20 s", n, watchers, s, v)
		}
	}
}

// headWatchers is 1,000 watchers at the head: of one stream, of
// AllStreams, filtered or not.
func headWatchers() []watchSpec {
	from := eventstore.FromStart()
	var ws []watchSpec
	for i := range 1000 {
		switch i % 4 {
		case 0:
			ws = append(ws, watchSpec{"s", eventstore.WatchOptions{From: from}})
		case 1:
			ws = append(ws, watchSpec{"s", eventstore.WatchOptions{From: from, Filter: eventstore.Filter{Types: []string{"a"}}}})
		case 2:
			ws = append(ws, watchSpec{eventstore.AllStreams, eventstore.WatchOptions{From: from}})
		case 3:
			ws = append(ws, watchSpec{eventstore.AllStreams, eventstore.WatchOptions{From: from, Filter: eventstore.Filter{StreamPrefix: "s"}}})
		}
	}
	return ws
}

// TestWatchersAtHeadShareOneRead (issue 13): 1,000 watchers at the head of
// one stream and of AllStreams (half of them filtered) cost at most two
// queries per append, one per watched key, not one per watcher.
func TestWatchersAtHeadShareOneRead(t *testing.T) {
	d := newLogDriver()
	f := driver.New(d, driver.Config{})
	defer f.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ws := headWatchers()
	got, errs := startWatchers(ctx, t, f, ws)
	// The first two appends bring every watcher to the head, catching up
	// alone; the rest are counted.
	const warmUp, counted = 2, 10
	for v := uint64(1); v <= warmUp+counted; v++ {
		if v == warmUp+1 {
			d.takeQueries()
		}
		if _, err := f.Append(ctx, "s", eventstore.Exact(v-1), eventstore.Event{Type: "a"}); err != nil {
			t.Fatal(err)
		}
		waitReceipts(t, got, errs, len(ws), "s", v)
	}
	q := d.takeQueries()
	t.Logf("%d appends with %d watchers at the head: %d queries", counted, len(ws), q)
	if q > 2*counted {
		t.Errorf("%d appends with %d watchers at the head cost %d queries (%.1f per append), want at most 2 per append", counted, len(ws), q, float64(q)/counted)
	}
	cancel()
}

// TestTailReadFailsWatchersReadAlone: when the shared tail's read fails,
// its watchers read alone, losing nothing and yielding no error (their own
// reads work), and the next append is shared again.
func TestTailReadFailsWatchersReadAlone(t *testing.T) {
	d := newLogDriver()
	f := driver.New(d, driver.Config{})
	defer f.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ws := headWatchers()[:100]
	got, errs := startWatchers(ctx, t, f, ws)
	for v := uint64(1); v <= 2; v++ {
		if _, err := f.Append(ctx, "s", eventstore.Exact(v-1), eventstore.Event{Type: "a"}); err != nil {
			t.Fatal(err)
		}
		waitReceipts(t, got, errs, len(ws), "s", v)
	}
	// Every watcher waits at a tail: the next read is a tail's. (One
	// failure only: the watchers of the tail that fails read alone at
	// once, perhaps before the other tail reads.)
	d.mu.Lock()
	d.fails = 1
	d.mu.Unlock()
	if _, err := f.Append(ctx, "s", eventstore.Exact(2), eventstore.Event{Type: "a"}); err != nil {
		t.Fatal(err)
	}
	waitReceipts(t, got, errs, len(ws), "s", 3)
	d.mu.Lock()
	fails := d.fails
	d.mu.Unlock()
	if fails != 0 {
		t.Fatal("the failure was left unused: no tail read")
	}
	for v := uint64(4); v <= 5; v++ {
		if _, err := f.Append(ctx, "s", eventstore.Exact(v-1), eventstore.Event{Type: "a"}); err != nil {
			t.Fatal(err)
		}
		waitReceipts(t, got, errs, len(ws), "s", v)
	}
	d.takeQueries()
	if _, err := f.Append(ctx, "s", eventstore.Exact(5), eventstore.Event{Type: "a"}); err != nil {
		t.Fatal(err)
	}
	waitReceipts(t, got, errs, len(ws), "s", 6)
	if q := d.takeQueries(); q > 2 {
		t.Errorf("an append after the tails recovered cost %d queries, want at most 2", q)
	}
	cancel()
}
