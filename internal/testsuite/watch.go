package testsuite

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
)

func watchTests() []test {
	return []test{
		{"FromEnd", testWatchFromEnd},
		{"FromStart", testWatchFromStart},
		{"After", leaf(testWatchAfter)},
		{"AfterPastEnd", leaf(testWatchAfterPastEnd)},
		{"AllStreamsAfterPosition", leaf(testWatchAllAfter)},
		{"CatchUpThenLive", leaf(testWatchCatchUpThenLive)},
		{"Filter", leaf(testWatchFilter)},
		{"ManyWriters", leaf(testWatchManyWriters)},
		{"FilteredManyWriters", leaf(testWatchFilteredManyWriters)},
		{"FilteredWhileWriting", leaf(testWatchFilteredWhileWriting)},
		{"ContextCancelEnds", leaf(testWatchCancel)},
		{"BreakEarly", leaf(testWatchBreak)},
		{"CancelledContext", leaf(testWatchCancelled)},
		{"SlowWatcherBlocksNoOne", leaf(testWatchSlow)},
		{"ManyAtHead", leaf(testWatchManyAtHead)},
		{"SlowAtHeadFallsBehind", leaf(testWatchSlowAtHead)},
		{"FilteredAtHead", leaf(testWatchFilteredAtHead)},
		{"CloseEndsWatchers", leaf(testWatchClose)},
		{"InvalidInput", testWatchInvalid},
	}
}

// watcher ranges over a watch in its own goroutine and hands what it
// yields to the test through a channel.
type watcher struct {
	name    string
	events  chan eventstore.Recorded
	ranging chan struct{} // closed just before the range over the watch begins
	done    chan struct{} // closed when the iteration has ended
	err     error         // the error the watch yielded; read only after done
	cancel  context.CancelFunc
}

// watcherBuffer is large enough that no test's watcher ever waits on the
// test: these watchers are fast consumers.
const watcherBuffer = 1 << 14

func startWatch(t *testing.T, s eventstore.Store, stream string, opts eventstore.WatchOptions) *watcher {
	t.Helper()
	return startWatchAfter(t, s, stream, opts, nil)
}

// startWatchAfter is startWatch that runs before, if not nil, between the
// call to Watch and the start of the range over what it returned.
func startWatchAfter(t *testing.T, s eventstore.Store, stream string, opts eventstore.WatchOptions, before func()) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	w := &watcher{
		name:    fmt.Sprintf("Watch(%q, %+v)", stream, opts),
		events:  make(chan eventstore.Recorded, watcherBuffer),
		ranging: make(chan struct{}),
		done:    make(chan struct{}),
		cancel:  cancel,
	}
	seq := s.Watch(ctx, stream, opts)
	if before != nil {
		before()
	}
	go func() {
		defer close(w.done)
		close(w.ranging)
		for r, err := range seq {
			if err != nil {
				w.err = err
				return
			}
			select {
			case w.events <- r:
			default:
				w.err = errors.New("testsuite: watcher buffer full")
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.done:
		case <-time.After(waitTimeout):
			t.Errorf("%s did not end within %v of its context's end", w.name, waitTimeout)
		}
	})
	return w
}

// next returns the watcher's next n events, failing the test if they do
// not come within waitTimeout or the watch ends first.
func (w *watcher) next(t *testing.T, n int) []eventstore.Recorded {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	got := make([]eventstore.Recorded, 0, n)
	for len(got) < n {
		select {
		case r := <-w.events:
			got = append(got, r)
		case <-w.done:
			got = append(got, w.drain()...)
			if len(got) < n {
				t.Fatalf("%s ended after %d of %d events with error %v; events: %+v", w.name, len(got), n, w.err, got)
			}
		case <-timer.C:
			t.Fatalf("%s: got %d of %d events within %v: %+v", w.name, len(got), n, waitTimeout, got)
		}
	}
	if len(got) > n {
		t.Fatalf("%s: got %d events, want %d: %+v", w.name, len(got), n, got)
	}
	return got
}

// until returns the watcher's events up to and including the first for
// which last returns true.
func (w *watcher) until(t *testing.T, last func(eventstore.Recorded) bool) []eventstore.Recorded {
	t.Helper()
	var got []eventstore.Recorded
	for {
		r := w.next(t, 1)[0]
		got = append(got, r)
		if last(r) {
			return got
		}
	}
}

// drain returns the events already buffered.
func (w *watcher) drain() []eventstore.Recorded {
	var got []eventstore.Recorded
	for {
		select {
		case r := <-w.events:
			got = append(got, r)
		default:
			return got
		}
	}
}

// end waits for the watch to end by itself and returns its error.
func (w *watcher) end(t *testing.T) error {
	t.Helper()
	select {
	case <-w.done:
		return w.err
	case <-time.After(waitTimeout):
		t.Fatalf("%s did not end within %v", w.name, waitTimeout)
		return nil
	}
}

// stop cancels the watch, waits for it to end, and checks that it ended
// quietly and had yielded nothing the test did not take.
func (w *watcher) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	if err := w.end(t); err != nil {
		t.Errorf("%s ended with %v after its context was cancelled, want no error", w.name, err)
	}
	if extra := w.drain(); len(extra) != 0 {
		t.Errorf("%s yielded %d unexpected events: %+v", w.name, len(extra), extra)
	}
}

// wantSame checks that watched events are exactly what a read gives, Time
// and Position included.
func wantSame(t *testing.T, what string, read, watched []eventstore.Recorded) {
	t.Helper()
	if diff := cmp.Diff(read, watched, cmpBytes, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s: watched events differ from the read (-read +watched):\n%s", what, diff)
	}
}

func hasData(data string) func(eventstore.Recorded) bool {
	return func(r eventstore.Recorded) bool { return string(r.Data) == data }
}

func testWatchFromEnd(t *testing.T, newStore Factory) {
	for _, c := range []struct {
		name   string
		stream string
		empty  bool
	}{
		{"Stream", "s", false},
		{"NewStream", "s", true},
		{"AllStreams", eventstore.AllStreams, false},
		{"EmptyAllStreams", eventstore.AllStreams, true},
	} {
		stream := c.stream
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			if !c.empty {
				mustAppend(t, s, "s", eventstore.NoStream, numbered(3, "t", "before")...)
				mustAppend(t, s, "x", eventstore.NoStream, ev("t", "before-x"))
			}
			// The watch fixes "the present" when its iteration begins, a
			// moment the test cannot observe: append probes until one comes
			// through (the first probe through is the signal that the watch
			// is live). Correctness does not depend on the probe interval.
			// A probe whose append returned before the range began is part
			// of the present, and must not come through; on a stream with
			// events, the first one is always such a probe, appended between
			// Watch and the range.
			//
			// Each probe is a batch of two events. A batch is atomic, so the
			// present lies between batches, and the first event through must
			// be the first of its batch: a present off by one shows as a
			// second event first, however the probes and the start of the
			// iteration interleave (issue 9 item 10: checked only by the
			// early/late split, which a probe landing between the start of
			// the range and the moment the watch reads the present defeats,
			// the presentOffByOne mutant passed 1 run in 30).
			early := make(map[string]bool)
			appendProbe := func(name string) {
				mustAppend(t, s, "s", eventstore.Any, ev("t", name+"/first"), ev("t", name+"/second"))
			}
			w := startWatchAfter(t, s, stream, eventstore.WatchOptions{From: eventstore.FromEnd()}, func() {
				if !c.empty {
					appendProbe("probe-early")
					early["probe-early"] = true
				}
			})
			probe := func() {
				name := fmt.Sprint("probe-", len(early))
				appendProbe(name)
				select {
				case <-w.ranging:
					early[name] = false
				default:
					early[name] = true
				}
			}
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			deadline := time.NewTimer(waitTimeout)
			defer deadline.Stop()
			probe()
			var first eventstore.Recorded
		wait:
			for {
				select {
				case first = <-w.events:
					break wait
				case <-w.done:
					t.Fatalf("watch ended: %v", w.err)
				case <-tick.C:
					probe()
				case <-deadline.C:
					t.Fatalf("no probe came through the watch within %v", waitTimeout)
				}
			}
			name, part, _ := strings.Cut(string(first.Data), "/")
			if isEarly, ok := early[name]; !ok || isEarly || part != "first" {
				t.Fatalf("first event watched from the present: %+v, want the first event of a probe batch appended after the watch began (early probes %v)", first, early)
			}
			mustAppend(t, s, "s", eventstore.Any, numbered(3, "t", "real")...)
			mustAppend(t, s, "x", eventstore.Any, ev("t", "real-x"))
			last := "real-3"
			from := first.Version
			if stream == eventstore.AllStreams {
				last, from = "real-x", first.Position
			}
			got := append([]eventstore.Recorded{first}, w.until(t, hasData(last))...)
			wantSame(t, "from the present", readAll(t, s, stream, eventstore.ReadOptions{From: eventstore.After(from - 1)}), got)
			w.stop(t)
		})
	}
}

// testWatchFromStart: FromStart, and the zero value, which is the same
// deliberately (issue 10): a zero value that catches up can cost a replay,
// never a missed event.
func testWatchFromStart(t *testing.T, newStore Factory) {
	for _, c := range []struct {
		name   string
		stream string
		from   eventstore.Start
	}{
		{"Stream", "s", eventstore.FromStart()},
		{"AllStreams", eventstore.AllStreams, eventstore.FromStart()},
		{"ZeroValue", "s", eventstore.Start{}},
		{"AllStreamsZeroValue", eventstore.AllStreams, eventstore.Start{}},
	} {
		stream := c.stream
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			mustAppend(t, s, "s", eventstore.NoStream, numbered(3, "t", "s")...)
			w := startWatch(t, s, stream, eventstore.WatchOptions{From: c.from})
			// Once the watch has yielded the last stored event it has read
			// a short page, so it is live: the next events come through
			// the live path.
			got := w.next(t, 3)
			mustAppend(t, s, "s", eventstore.Exact(3), numbered(2, "t", "live")...)
			// Up to the last event rather than a count: a watch that loses
			// one fails the comparison at once instead of at a timeout.
			got = append(got, w.until(t, hasData("live-2"))...)
			wantSame(t, "from the start", readAll(t, s, stream, eventstore.ReadOptions{}), got)
			w.stop(t)
		})
	}
}

func testWatchAfter(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, numbered(5, "t", "s")...)
	mustAppend(t, s, "other", eventstore.NoStream, ev("t", "other"))
	after2 := startWatch(t, s, "s", eventstore.WatchOptions{From: eventstore.After(2)})
	after5 := startWatch(t, s, "s", eventstore.WatchOptions{From: eventstore.After(5)})
	after0 := startWatch(t, s, "s", eventstore.WatchOptions{From: eventstore.After(0)})
	// After(5) has nothing to catch up on: a marker shows when each watch
	// is live.
	mustAppend(t, s, "s", eventstore.Exact(5), ev("t", "marker"))
	wantSame(t, "after 2, catch-up", readAll(t, s, "s", eventstore.ReadOptions{From: eventstore.After(2)}), after2.until(t, hasData("marker")))
	wantSame(t, "after 5, catch-up", readAll(t, s, "s", eventstore.ReadOptions{From: eventstore.After(5)}), after5.until(t, hasData("marker")))
	wantSame(t, "after 0, catch-up", readAll(t, s, "s", eventstore.ReadOptions{}), after0.until(t, hasData("marker")))
	mustAppend(t, s, "s", eventstore.Exact(6), numbered(2, "t", "live")...)
	live := readAll(t, s, "s", eventstore.ReadOptions{From: eventstore.After(6)})
	wantSame(t, "after 2, live", live, after2.until(t, hasData("live-2")))
	wantSame(t, "after 5, live", live, after5.until(t, hasData("live-2")))
	wantSame(t, "after 0, live", live, after0.until(t, hasData("live-2")))
	for _, w := range []*watcher{after2, after5, after0} {
		w.stop(t)
	}
}

// testWatchAfterPastEnd watches after versions and positions no event can
// pass. Such a watch yields nothing and, like every watch, ends only when
// its context ends or the store closes (with ErrClosed). (Issue 9 item 9:
// on SQLite it ended at once, on PostgreSQL it waited.)
func testWatchAfterPastEnd(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, ev("keep", "1"), ev("t", "2"))
	var ws []*watcher
	for _, stream := range []string{"s", eventstore.AllStreams} {
		for _, after := range []uint64{math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64} {
			for _, f := range []eventstore.Filter{{}, {Types: []string{"keep"}}} {
				ws = append(ws, startWatch(t, s, stream, eventstore.WatchOptions{From: eventstore.After(after), Filter: f}))
			}
		}
	}
	mustAppend(t, s, "s", eventstore.Exact(2), ev("keep", "3"))
	for _, w := range ws {
		select {
		case <-w.done:
			t.Errorf("%s ended before Close with error %v, want it to wait like any watch", w.name, w.err)
		default:
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, w := range ws {
		if err := w.end(t); !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("%s ended with %v at Close, want ErrClosed", w.name, err)
		}
		if extra := w.drain(); len(extra) != 0 {
			t.Errorf("%s yielded %d events, want none: %+v", w.name, len(extra), extra)
		}
	}
}

func testWatchAllAfter(t *testing.T, s eventstore.Store) {
	want := interleaved(t, s)
	all := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	wantEvents(t, "Read(AllStreams)", want, all)
	if len(all) != len(want) {
		t.FailNow()
	}
	p := all[4].Position
	w := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.After(p)})
	wantSame(t, "catch-up", all[5:], w.next(t, len(all)-5))
	mustAppend(t, s, "z", eventstore.NoStream, ev("t", "z1"))
	mustAppend(t, s, "a", eventstore.Any, ev("t", "a-live"))
	wantSame(t, "live", readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(all[len(all)-1].Position)}), w.until(t, hasData("a-live")))
	w.stop(t)
}

// testWatchCatchUpThenLive appends while watchers are catching up on a
// backlog longer than one page, so that the hand-over from catch-up to live
// happens under load: they must see every event once, in order. Unlike the
// other watch cases it does not wait for the watchers to be live before it
// appends: the race between catch-up and appends is what it tests, and its
// checks hold however that race goes.
func testWatchCatchUpThenLive(t *testing.T, s eventstore.Store) {
	for i := range 2 {
		mustAppend(t, s, "s", eventstore.Any, numbered(300, "t", fmt.Sprint("backlog", i))...)
	}
	mustAppend(t, s, "t", eventstore.Any, numbered(50, "t", "backlog-t")...)
	ws := startWatch(t, s, "s", eventstore.WatchOptions{From: eventstore.FromStart()})
	wa := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()})
	g, ctx := errgroup.WithContext(ctxTimeout(t))
	for _, stream := range []string{"s", "t"} {
		g.Go(func() error {
			for i := range 40 {
				if _, err := s.Append(ctx, stream, eventstore.Any, numbered(1+i%3, "t", fmt.Sprintf("live-%s-%d", stream, i))...); err != nil {
					return fmt.Errorf("append to %s: %w", stream, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	readS := readAll(t, s, "s", eventstore.ReadOptions{})
	readA := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	wantSame(t, "stream watch", readS, ws.next(t, len(readS)))
	wantSame(t, "AllStreams watch", readA, wa.next(t, len(readA)))
	ws.stop(t)
	wa.stop(t)
}

func testWatchFilter(t *testing.T, s eventstore.Store) {
	keepAcc := eventstore.Filter{StreamPrefix: "acc-", Types: []string{"keep"}}
	byUser := eventstore.Filter{Metadata: []eventstore.MetadataFilter{eventstore.MetadataEquals("user", "ann")}}
	ann := map[string]string{"user": "ann"}
	// Catch-up part, stored before the watches begin: some events each
	// watcher wants among a long run it does not.
	mustAppend(t, s, "acc-1", eventstore.NoStream, ev("keep", "1"), eventstore.Event{Type: "drop", Data: []byte("2"), Metadata: ann})
	mustAppend(t, s, "other", eventstore.NoStream, ev("keep", "3"))
	for i := range 2 {
		mustAppend(t, s, "acc-2", eventstore.Any, numbered(300, "drop", fmt.Sprint("skip", i))...)
	}
	wAll := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart(), Filter: keepAcc})
	wUser := startWatch(t, s, "acc-1", eventstore.WatchOptions{From: eventstore.FromStart(), Filter: byUser})
	// A marker both watchers want. Once a watcher has yielded it, it has
	// read a short page up to the head and waits for new events: what is
	// appended next comes through the live path. (Issue 9 item 10: appended
	// while the watches might still be catching up, the live events were
	// sometimes read by the catch-up path, and a store that filters only
	// its catch-up passed.)
	mustAppend(t, s, "acc-1", eventstore.Any, eventstore.Event{Type: "keep", Data: []byte("marker"), Metadata: ann})
	gotAll := wAll.until(t, hasData("marker"))
	gotUser := wUser.until(t, hasData("marker"))
	// Live part: again a long run of events neither watcher wants, then
	// ones they do.
	for i := range 2 {
		mustAppend(t, s, "acc-2", eventstore.Any, numbered(300, "drop", fmt.Sprint("live-skip", i))...)
	}
	mustAppend(t, s, "acc-3", eventstore.NoStream, ev("keep", "4"), eventstore.Event{Type: "keep", Data: []byte("5"), Metadata: ann})
	mustAppend(t, s, "acc-1", eventstore.Any, ev("drop", "6"), eventstore.Event{Type: "keep", Data: []byte("7"), Metadata: ann})
	mustAppend(t, s, "xacc-1", eventstore.NoStream, ev("keep", "8"))
	mustAppend(t, s, "acc-1", eventstore.Any, eventstore.Event{Type: "keep", Data: []byte("last"), Metadata: ann})

	wantSame(t, "AllStreams watch with stream prefix and type",
		readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{Filter: keepAcc}), append(gotAll, wAll.until(t, hasData("last"))...))
	want := readAll(t, s, "acc-1", eventstore.ReadOptions{Filter: byUser})
	wantSame(t, "stream watch with metadata", want, append(gotUser, wUser.until(t, hasData("last"))...))
	if diff := cmp.Diff([]string{"2", "marker", "7", "last"}, datas(want)); diff != "" {
		t.Errorf("Read(acc-1, user=ann) (-want +got):\n%s", diff)
	}
	wAll.stop(t)
	wUser.stop(t)
}

func datas(rs []eventstore.Recorded) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Data)
	}
	return out
}

// testWatchManyWriters has writers append to several streams at once while
// a watcher on each stream and one on AllStreams check that they see every
// event exactly once and in order.
func testWatchManyWriters(t *testing.T, s eventstore.Store) {
	const writers, appends, streams = 8, 50, 4
	stream := func(w int) string { return fmt.Sprint("w-", w%streams) }
	from := eventstore.WatchOptions{From: eventstore.FromStart()}
	all := startWatch(t, s, eventstore.AllStreams, from)
	byStream := make([]*watcher, streams)
	for i := range byStream {
		byStream[i] = startWatch(t, s, stream(i), from)
	}
	// Every watcher is live before the writers start (a marker in each
	// stream, seen by its watchers), so that they follow the writers
	// rather than, at random, catch up after them.
	for i := range streams {
		mustAppend(t, s, stream(i), eventstore.NoStream, ev("marker", fmt.Sprint("marker ", i)))
	}
	marks := all.next(t, streams)
	for _, w := range byStream {
		w.next(t, 1)
	}
	g, ctx := errgroup.WithContext(ctxTimeout(t))
	for w := range writers {
		g.Go(func() error {
			for i := range appends {
				if _, err := s.Append(ctx, stream(w), eventstore.Any, ev("t", fmt.Sprintf("writer %d append %d", w, i))); err != nil {
					return fmt.Errorf("writer %d: %w", w, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	readA := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(marks[len(marks)-1].Position)})
	if len(readA) != writers*appends {
		t.Errorf("store holds %d events after the markers, want %d", len(readA), writers*appends)
	}
	checkPositions(t, readA, false)
	gotA := all.next(t, len(readA))
	wantSame(t, "AllStreams watch", readA, gotA)
	for i, w := range byStream {
		read := readAll(t, s, stream(i), eventstore.ReadOptions{From: eventstore.After(1)})
		if diff := cmp.Diff(span(2, 1+writers/streams*appends), versions(read)); diff != "" {
			t.Errorf("versions of %s after its marker (-want +got):\n%s", stream(i), diff)
		}
		wantSame(t, stream(i)+" watch", read, w.next(t, len(read)))
		w.stop(t)
	}
	all.stop(t)
	// Every writer's appends are in its own order in the global log.
	last := make(map[string]int)
	for _, r := range gotA {
		var w, i int
		if _, err := fmt.Sscanf(string(r.Data), "writer %d append %d", &w, &i); err != nil {
			t.Fatalf("event data %q: %v", r.Data, err)
		}
		key := fmt.Sprint(w)
		if prev, ok := last[key]; ok && i != prev+1 {
			t.Errorf("writer %d: append %d after append %d in the global log", w, i, prev)
		}
		last[key] = i
	}
}

func testWatchCancel(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"))
	for _, stream := range []string{"s", eventstore.AllStreams, "missing"} {
		w := startWatch(t, s, stream, eventstore.WatchOptions{From: eventstore.FromStart()})
		if stream != "missing" {
			w.next(t, 1) // live now: waiting for more
		}
		w.stop(t)
	}
	// The store still works, and watches still see appends.
	w := startWatch(t, s, "s", eventstore.WatchOptions{From: eventstore.After(0)})
	w.next(t, 1) // live
	mustAppend(t, s, "s", eventstore.Exact(1), ev("t", "2"))
	wantSame(t, "after cancelled watches", readAll(t, s, "s", eventstore.ReadOptions{From: eventstore.After(1)}), w.next(t, 1))
	w.stop(t)
}

func testWatchCancelled(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, stream := range []string{"s", eventstore.AllStreams} {
		for _, from := range []eventstore.Start{eventstore.FromEnd(), eventstore.FromStart()} {
			got, err := readErr(t, "Watch", s.Watch(ctx, stream, eventstore.WatchOptions{From: from}))
			if len(got) != 0 {
				t.Errorf("Watch(%q, %+v) with a cancelled context yielded %d events", stream, from, len(got))
			}
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Watch(%q, %+v) with a cancelled context: error %v, want none (or context.Canceled)", stream, from, err)
			}
		}
	}
}

// testWatchSlow parks one watcher inside its loop body and checks that
// appends and another watcher go on without it; once released, it catches
// up on everything.
func testWatchSlow(t *testing.T, s eventstore.Store) {
	const batches, batchSize = 3, 200 // more than one follow page
	total := 1 + batches*batchSize
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "first"))

	ctx, cancel := context.WithCancel(ctxTimeout(t))
	defer cancel()
	parked, release := make(chan struct{}), make(chan struct{})
	var g errgroup.Group
	g.Go(func() error {
		n := 0
		for r, err := range s.Watch(ctx, "s", eventstore.WatchOptions{From: eventstore.FromStart()}) {
			if err != nil {
				return fmt.Errorf("slow watcher: %w", err)
			}
			n++
			if r.Version != uint64(n) {
				return fmt.Errorf("slow watcher: event %d has version %d", n, r.Version)
			}
			if n == 1 {
				close(parked)
				select {
				case <-release:
				case <-ctx.Done():
					return fmt.Errorf("slow watcher: %w", ctx.Err())
				}
			}
			if n == total {
				return nil
			}
		}
		return fmt.Errorf("slow watcher ended after %d of %d events", n, total)
	})
	select {
	case <-parked:
	case <-time.After(waitTimeout):
		t.Fatalf("slow watcher did not get the first event within %v", waitTimeout)
	}
	fast := startWatch(t, s, "s", eventstore.WatchOptions{From: eventstore.FromStart()})
	got := fast.next(t, 1) // live
	for i := range batches {
		mustAppend(t, s, "s", eventstore.Any, numbered(batchSize, "t", fmt.Sprint("batch", i))...)
	}
	wantSame(t, "fast watcher beside a slow one", readAll(t, s, "s", eventstore.ReadOptions{}), append(got, fast.next(t, total-1)...))
	fast.stop(t)
	close(release)
	if err := g.Wait(); err != nil {
		t.Error(err)
	}
}

func testWatchClose(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "1"))
	from := eventstore.WatchOptions{From: eventstore.FromStart()}
	live := []*watcher{startWatch(t, s, "s", from), startWatch(t, s, eventstore.AllStreams, from)}
	for _, w := range live {
		w.next(t, 1)
	}
	others := []*watcher{
		startWatch(t, s, "s", eventstore.WatchOptions{From: eventstore.FromEnd()}),
		startWatch(t, s, "missing", from),
		startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{Filter: eventstore.Filter{Types: []string{"none"}}}),
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, w := range append(live, others...) {
		err := w.end(t)
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("%s ended with %v at Close, want ErrClosed", w.name, err)
		}
		if extra := w.drain(); len(extra) != 0 {
			t.Errorf("%s yielded %d unexpected events: %+v", w.name, len(extra), extra)
		}
	}
}

// testWatchBreak abandons watches by breaking out of their loops; later
// appends, reads and watches are unaffected.
func testWatchBreak(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, numbered(3, "t", "e")...)
	for _, stream := range []string{"s", eventstore.AllStreams} {
		for i := range 10 {
			n := 0
			for _, err := range s.Watch(ctxTimeout(t), stream, eventstore.WatchOptions{From: eventstore.FromStart()}) {
				if err != nil {
					t.Fatalf("Watch(%q): %v", stream, err)
				}
				n++
				if n == 1+i%3 {
					break
				}
			}
		}
	}
	w := startWatch(t, s, "s", eventstore.WatchOptions{From: eventstore.After(2)})
	w.next(t, 1) // live
	mustAppend(t, s, "s", eventstore.Exact(3), ev("t", "after"))
	wantSame(t, "watch after abandoned watches", readAll(t, s, "s", eventstore.ReadOptions{From: eventstore.After(3)}), w.next(t, 1))
	w.stop(t)
}

// testWatchFilteredManyWriters has filtered watchers follow concurrent
// writers: a filtered watch that skips ahead over events it has examined
// (rather than only after the last event it yielded) must not skip one
// that commits meanwhile.
func testWatchFilteredManyWriters(t *testing.T, s eventstore.Store) {
	const writers, appends = 4, 40
	stream := func(w int) string { return fmt.Sprint([]string{"a-", "b-"}[w%2], w) }
	filters := []struct {
		stream string
		filter eventstore.Filter
		marker string // the last marker the filter matches
	}{
		{eventstore.AllStreams, eventstore.Filter{Types: []string{"keep"}}, "marker-b"},
		{eventstore.AllStreams, eventstore.Filter{StreamPrefix: "a-"}, "marker-a"},
		{eventstore.AllStreams, eventstore.Filter{StreamPrefix: "b-", Metadata: []eventstore.MetadataFilter{eventstore.MetadataEquals("n", "0")}}, "marker-b"},
		{stream(0), eventstore.Filter{Types: []string{"keep"}}, "marker-a"},
	}
	ws := make([]*watcher, len(filters))
	for i, f := range filters {
		ws[i] = startWatch(t, s, f.stream, eventstore.WatchOptions{From: eventstore.FromStart(), Filter: f.filter})
	}
	// Every watcher is live before the writers start: each yields the
	// markers its filter matches.
	mark := func(data string) eventstore.Event {
		return eventstore.Event{Type: "keep", Data: []byte(data), Metadata: map[string]string{"n": "0"}}
	}
	mustAppend(t, s, stream(0), eventstore.NoStream, mark("marker-a"))
	mustAppend(t, s, stream(1), eventstore.NoStream, mark("marker-b"))
	seen := make([][]eventstore.Recorded, len(filters))
	for i, f := range filters {
		seen[i] = ws[i].until(t, hasData(f.marker))
	}
	g, ctx := errgroup.WithContext(ctxTimeout(t))
	for w := range writers {
		g.Go(func() error {
			for i := range appends {
				e := eventstore.Event{Type: []string{"keep", "drop", "drop"}[i%3], Data: []byte(fmt.Sprint(w, "/", i)),
					Metadata: map[string]string{"n": fmt.Sprint(i % 4)}}
				if _, err := s.Append(ctx, stream(w), eventstore.Any, e); err != nil {
					return fmt.Errorf("writer %d: %w", w, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i, f := range filters {
		want := readAll(t, s, f.stream, eventstore.ReadOptions{Filter: f.filter})
		if len(want) == 0 {
			t.Fatalf("filter %+v matches nothing; the test is wrong", f)
		}
		wantSame(t, fmt.Sprintf("watch %q %+v", f.stream, f.filter), want, append(seen[i], ws[i].next(t, len(want)-len(seen[i]))...))
		ws[i].stop(t)
	}
}

// testWatchFilteredWhileWriting starts a filtered watch of AllStreams and
// at once has writers append matching events among others that fail the
// type or the stream prefix: however the watch's catch-up races the
// writers, it yields every matching event once, in order, and nothing
// else, the same as a filtered read afterwards; and a matching event
// after a run that does not match still arrives, alone. (Each adapter
// had this test, a copy of the other's, before issue 10.)
func testWatchFilteredWhileWriting(t *testing.T, s eventstore.Store) {
	const writers, perWriter = 4, 150
	filter := eventstore.Filter{Types: []string{"match"}, StreamPrefix: "w-"}
	w := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart(), Filter: filter})
	// 1,200 appends, a few hundred durable commits on a file store: on a
	// loaded machine (a CI run beside other work) they outlasted the
	// suite's usual 15 s. The test is about what the watch yields, not
	// about speed, so the writers get longer.
	writersCtx, cancel := context.WithTimeout(t.Context(), 4*waitTimeout)
	defer cancel()
	g, ctx := errgroup.WithContext(writersCtx)
	for i := range writers {
		g.Go(func() error {
			for j := range perWriter {
				typ := []string{"match", "other", "other"}[j%3]
				if _, err := s.Append(ctx, fmt.Sprint("w-", i), eventstore.Any, ev(typ, fmt.Sprint(i, "/", j))); err != nil {
					return fmt.Errorf("writer %d: %w", i, err)
				}
				if _, err := s.Append(ctx, fmt.Sprint("x-", i), eventstore.Any, ev("match", fmt.Sprint(i, "/", j))); err != nil {
					return fmt.Errorf("writer %d: %w", i, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	want := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{Filter: filter})
	if len(want) != writers*perWriter/3 {
		t.Fatalf("filtered read returned %d events, want %d", len(want), writers*perWriter/3)
	}
	got := w.next(t, len(want))
	for i, r := range got {
		if r.Type != "match" || !strings.HasPrefix(r.StreamID, "w-") {
			t.Fatalf("event %d: %s in %s passed the filter %+v", i, r.Type, r.StreamID, filter)
		}
	}
	checkPositions(t, got, false)
	wantSame(t, "filtered AllStreams watch", want, got)
	for i := range 10 {
		mustAppend(t, s, "w-late", eventstore.Any, ev("other", fmt.Sprint("late ", i)))
	}
	res := mustAppend(t, s, "w-late", eventstore.Any, ev("match", "late"))
	if last := w.next(t, 1)[0]; last.Position != res.Position {
		t.Errorf("watch yielded %s@%d at %d, want w-late@%d at %d", last.StreamID, last.Version, last.Position, res.Version, res.Position)
	}
	w.stop(t)
}

// atHeadWatchers is how many watchers of one stream the fan-out cases
// start at the head: enough that a store sharing one read among them (a
// tail) serves many at once, few enough for every store's test run.
const atHeadWatchers = 40

// startAtHead starts n watchers of stream from the start with filter and
// waits until each has yielded the event marker matches (appended by the
// caller beforehand, or after, by mark), so that they are at the head.
func startAtHead(t *testing.T, s eventstore.Store, n int, stream string, filter eventstore.Filter) []*watcher {
	t.Helper()
	ws := make([]*watcher, n)
	for i := range ws {
		ws[i] = startWatch(t, s, stream, eventstore.WatchOptions{From: eventstore.FromStart(), Filter: filter})
	}
	return ws
}

// testWatchManyAtHead (issue 13): many watchers at the head of one stream,
// and of AllStreams, while concurrent writers append single events and
// batches: every watcher yields every event once, in order, the same as a
// read afterwards.
func testWatchManyAtHead(t *testing.T, s eventstore.Store) {
	const writers, appends = 4, 25
	marker := mustAppend(t, s, "hot", eventstore.NoStream, ev("marker", "marker"))
	groups := map[string][]*watcher{
		"hot":                 startAtHead(t, s, atHeadWatchers, "hot", eventstore.Filter{}),
		eventstore.AllStreams: startAtHead(t, s, atHeadWatchers, eventstore.AllStreams, eventstore.Filter{}),
	}
	for _, ws := range groups {
		for _, w := range ws {
			w.next(t, 1) // the marker: every watcher is at the head
		}
	}
	// The writers get longer than the suite's usual wait, as in
	// FilteredWhileWriting: with -race on a loaded machine, 80 watchers
	// and their writers share little CPU.
	writersCtx, cancel := context.WithTimeout(t.Context(), 4*waitTimeout)
	defer cancel()
	g, ctx := errgroup.WithContext(writersCtx)
	for w := range writers {
		g.Go(func() error {
			for i := range appends {
				stream := []string{"hot", fmt.Sprint("cold-", w)}[i%2]
				evs := numbered(1+i%3, "t", fmt.Sprint(w, "/", i, "/"))
				if _, err := s.Append(ctx, stream, eventstore.Any, evs...); err != nil {
					return fmt.Errorf("writer %d: %w", w, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for stream, ws := range groups {
		after := marker.Version
		if stream == eventstore.AllStreams {
			after = marker.Position
		}
		read := readAll(t, s, stream, eventstore.ReadOptions{From: eventstore.After(after)})
		if len(read) == 0 {
			t.Fatalf("nothing appended to %q; the test is wrong", stream)
		}
		for i, w := range ws {
			got := w.next(t, len(read))
			if i == 0 {
				wantSame(t, fmt.Sprintf("watcher %d of %q at the head", i, stream), read, got)
			} else {
				// The others by their keys only: go-cmp over every
				// watcher's events is slow under -race.
				sameKeys(t, fmt.Sprintf("watcher %d of %q at the head", i, stream), read, got)
			}
			w.stop(t)
		}
	}
}

// testWatchSlowAtHead (issue 13): one of many watchers at the head parks
// in its loop body while more events are appended than a shared tail
// keeps (internal/watch.TailWindowEvents, and more than any store should
// buffer per watcher): the others get every event meanwhile, so the
// slow one holds no one back; released, it gets every event once, in
// order, all the same.
func testWatchSlowAtHead(t *testing.T, s eventstore.Store) {
	const batches, batchSize = 10, 500
	mustAppend(t, s, "s", eventstore.NoStream, ev("t", "first"))
	fast := startAtHead(t, s, atHeadWatchers/4, "s", eventstore.Filter{})
	for _, w := range fast {
		w.next(t, 1)
	}
	parked, release := make(chan struct{}), make(chan struct{})
	var got []eventstore.Recorded
	// Its own deadline: the fast watchers' checks below take a while on
	// a loaded machine, and the slow watcher waits for all of them.
	ctx, cancel := context.WithTimeout(t.Context(), 4*waitTimeout)
	defer cancel()
	var g errgroup.Group
	g.Go(func() error {
		for r, err := range s.Watch(ctx, "s", eventstore.WatchOptions{From: eventstore.FromStart()}) {
			if err != nil {
				return fmt.Errorf("slow watcher: %w", err)
			}
			got = append(got, r)
			switch len(got) {
			case 2: // a live event: the slow watcher was at the head
				close(parked)
				select {
				case <-release:
				case <-ctx.Done():
					return fmt.Errorf("slow watcher: %w", ctx.Err())
				}
			case 2 + batches*batchSize:
				return nil
			}
		}
		return fmt.Errorf("slow watcher ended after %d events", len(got))
	})
	// The slow watcher is at the head once it yielded the first event;
	// the second comes live.
	mustAppend(t, s, "s", eventstore.Exact(1), ev("t", "second"))
	select {
	case <-parked:
	case <-time.After(waitTimeout):
		t.Fatalf("slow watcher did not get the second event within %v", waitTimeout)
	}
	for i := range batches {
		mustAppend(t, s, "s", eventstore.Any, numbered(batchSize, "t", fmt.Sprint("batch", i, "-"))...)
	}
	read := readAll(t, s, "s", eventstore.ReadOptions{})
	for i, w := range fast {
		// Versions 2 to the last, each once, in order (go-cmp over
		// thousands of events per watcher is slow under -race).
		for j, r := range w.next(t, len(read)-1) {
			if want := uint64(j + 2); r.Version != want {
				t.Fatalf("fast watcher %d beside a parked one: event %d has version %d, want %d", i, j, r.Version, want)
			}
		}
		w.stop(t)
	}
	close(release)
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	sameKeys(t, "slow watcher, released", read, got)
}

// testWatchFilteredAtHead (issue 13): filtered watchers at the head of
// AllStreams and of one stream, several per filter, over events that try
// every condition's edges (literal %, _ and \ in metadata prefixes, keys
// with quotes and dots, a stream prefix that is a prefix of another,
// missing keys): each yields exactly what the filtered read gives, in
// order. A store that filters a shared read in memory must filter as its
// database does.
func testWatchFilteredAtHead(t *testing.T, s eventstore.Store) {
	eq, in, prefix := eventstore.MetadataEquals, eventstore.MetadataOneOf, eventstore.MetadataHasPrefix
	type mf = eventstore.MetadataFilter
	filters := []struct {
		stream string
		filter eventstore.Filter
	}{
		{eventstore.AllStreams, eventstore.Filter{Types: []string{"A"}}},
		{eventstore.AllStreams, eventstore.Filter{Types: []string{"A", "C"}}},
		{eventstore.AllStreams, eventstore.Filter{StreamPrefix: "acc-"}},
		{eventstore.AllStreams, eventstore.Filter{StreamPrefix: "acc-1"}},
		{eventstore.AllStreams, eventstore.Filter{Metadata: []mf{eq("tenant", "t1")}}},
		{eventstore.AllStreams, eventstore.Filter{Metadata: []mf{in("tenant", "t1", "t2")}}},
		{eventstore.AllStreams, eventstore.Filter{Metadata: []mf{prefix("tenant", "t%")}}},
		{eventstore.AllStreams, eventstore.Filter{Metadata: []mf{prefix("tenant", `t\`)}}},
		{eventstore.AllStreams, eventstore.Filter{Metadata: []mf{prefix("user", "")}}},
		{eventstore.AllStreams, eventstore.Filter{Metadata: []mf{eq(`a"b`, "v"), eq("a.b", "w")}}},
		{eventstore.AllStreams, eventstore.Filter{Types: []string{"B"}, StreamPrefix: "acc-", Metadata: []mf{eq("user", "ann")}}},
		{"acc-1", eventstore.Filter{Types: []string{"A"}}},
		{"acc-1", eventstore.Filter{Metadata: []mf{prefix("tenant", "t_")}}},
		{eventstore.AllStreams, eventstore.Filter{Partitions: eventstore.Partitions{Count: 3, Of: []int{0, 2}}}},
		{eventstore.AllStreams, eventstore.Filter{Types: []string{"A"}, Partitions: eventstore.Partitions{Count: 2, Of: []int{1}}}},
	}
	mustAppend(t, s, "acc-1", eventstore.NoStream, eventstore.Event{Type: "marker", Metadata: map[string]string{"tenant": "t1"}})
	const perFilter = 3
	ws := make([][]*watcher, len(filters))
	for i, f := range filters {
		ws[i] = startAtHead(t, s, perFilter, f.stream, f.filter)
	}
	// At the head: each watcher has examined the marker, matched or not;
	// the read of the filtered catch-up tells which.
	seen := make([][][]eventstore.Recorded, len(filters))
	for i, f := range filters {
		seen[i] = make([][]eventstore.Recorded, perFilter)
		n := len(readAll(t, s, f.stream, eventstore.ReadOptions{Filter: f.filter}))
		for j, w := range ws[i] {
			seen[i][j] = w.next(t, n)
		}
	}
	md := []map[string]string{
		{"tenant": "t1", "user": "ann"},
		{"tenant": "t2", "user": "bob"},
		{"tenant": "t10"},
		nil,
		{"tenant": "T1", "user": "ann"},
		{"tenant": "t%1", "other": "t1"},
		{"tenant": "t_1"},
		{"tenant": ""},
		{"tenant": `t\1`},
		{`a"b`: "v", "a.b": "w"},
		{`a"b`: "v", "a": "w"},
	}
	streams := []string{"acc-1", "acc-12", "acc-2", "user-1", "acc"}
	// len(md) and len(streams) are coprime: every pair comes once.
	for i := range len(md) * len(streams) {
		e := eventstore.Event{Type: []string{"A", "B", "C"}[i%3], Data: []byte(fmt.Sprint(i)), Metadata: md[i%len(md)]}
		mustAppend(t, s, streams[i%len(streams)], eventstore.Any, e)
	}
	for i, f := range filters {
		want := readAll(t, s, f.stream, eventstore.ReadOptions{Filter: f.filter})
		if len(want) <= len(seen[i][0]) {
			t.Fatalf("filter %q %+v matches none of the live events; the test is wrong", f.stream, f.filter)
		}
		for j, w := range ws[i] {
			got := slices.Concat(seen[i][j], w.next(t, len(want)-len(seen[i][j])))
			wantSame(t, fmt.Sprintf("watcher %d of %q %+v at the head", j, f.stream, f.filter), want, got)
			w.stop(t)
		}
	}
}

// sameKeys checks that watched events are the read's, by stream, version
// and position: each once, in order.
func sameKeys(t *testing.T, what string, read, watched []eventstore.Recorded) {
	t.Helper()
	if len(read) != len(watched) {
		t.Errorf("%s: %d events, want %d", what, len(watched), len(read))
		return
	}
	for i, r := range read {
		if w := watched[i]; w.StreamID != r.StreamID || w.Version != r.Version || w.Position != r.Position {
			t.Errorf("%s: event %d is %s@%d at %d, want %s@%d at %d", what, i, w.StreamID, w.Version, w.Position, r.StreamID, r.Version, r.Position)
			return
		}
	}
}
