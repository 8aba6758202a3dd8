package testsuite

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
)

// testAppendLargeBatch appends one batch larger than a multi-row INSERT
// of a handful of columns can take in one statement on SQLite (32766
// parameters): an adapter must split it or bind arrays. (PostgreSQL's
// limit, 65535, would take twice as many events; under -race that costs
// more than it is worth here.)
func testAppendLargeBatch(t *testing.T, s eventstore.Store) {
	const n = 5_000
	evs := make([]eventstore.Event, n)
	for i := range evs {
		evs[i] = eventstore.Event{ID: fmt.Sprint("id-", i), Type: "t", Data: []byte{byte(i)}}
		if i%100 == 0 {
			evs[i].Metadata = map[string]string{"i": fmt.Sprint(i)}
		}
	}
	mustAppend(t, s, "warm", eventstore.NoStream, ev("t", "first"))
	res := mustAppend(t, s, "s", eventstore.NoStream, evs...)
	if res.Version != n || res.Appended != n {
		t.Errorf("large batch: result version %d, %d appended; want %d, %d", res.Version, res.Appended, n, n)
	}
	got := readAll(t, s, "s", eventstore.ReadOptions{})
	if len(got) != n {
		t.Fatalf("read %d events back, want %d", len(got), n)
	}
	// go-cmp over ten thousand events takes seconds under -race: compare
	// field by field, and diff only the first mismatch.
	want := recorded("s", 1, evs...)
	for i := range want {
		w, g := want[i], got[i]
		if w.ID != g.ID || w.Type != g.Type || !bytes.Equal(w.Data, g.Data) || !maps.Equal(w.Metadata, g.Metadata) ||
			w.StreamID != g.StreamID || w.Version != g.Version {
			wantEvents(t, fmt.Sprintf("event %d read back", i), want[i:i+1], got[i:i+1])
			break
		}
	}
	checkPositions(t, got, false)
	if len(got) == n && got[n-1].Position != res.Position {
		t.Errorf("large batch: result position %d, last event has %d", res.Position, got[n-1].Position)
	}
	// Its retry is recognised whole.
	res, err := s.Append(ctxTimeout(t), "s", eventstore.NoStream, evs...)
	if err != nil || res.Appended != 0 || len(res.Duplicates) != n {
		t.Errorf("retry of the large batch: %d appended, %d duplicates, %v; want 0, %d, nil", res.Appended, len(res.Duplicates), err, n)
	}
}

// testAppendStreamIDs round-trips stream IDs and event types that quote,
// escape or pattern-match badly in SQL.
func testAppendStreamIDs(t *testing.T, s eventstore.Store) {
	ids := []string{
		"with space", "quote'd", `double"quote`, `back\slash`, "semi;colon --", "%", "_", "ünïcødé/✓", "$all2", "$al",
		"emoji-🙂", strings.Repeat("L", eventstore.MaxIDLength), "a\tb\nc",
	}
	for _, id := range ids {
		e := eventstore.Event{ID: clip("ev " + id), Type: clip("type " + id), Data: []byte(id)}
		mustAppend(t, s, id, eventstore.NoStream, e)
		mustAppend(t, s, id, eventstore.Exact(1), e) // an idempotent retry
		wantEvents(t, fmt.Sprintf("Read(%q)", id), recorded(id, 1, e), readAll(t, s, id, eventstore.ReadOptions{}))
		wantEvents(t, fmt.Sprintf("Read(%q) with its type", id), recorded(id, 1, e),
			readAll(t, s, id, eventstore.ReadOptions{Filter: eventstore.Filter{Types: []string{e.Type}}}))
		wantVersion(t, s, id, 1)
	}
	all := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	if len(all) != len(ids) {
		t.Errorf("Read(AllStreams): %d events, want %d", len(all), len(ids))
	}
	for i, r := range all {
		if i < len(ids) && r.StreamID != ids[i] {
			t.Errorf("event %d of the global log is in stream %q, want %q", i, r.StreamID, ids[i])
		}
	}
}

// testReadMetadataKeys filters on metadata keys that a JSON path or an SQL
// string would take apart if they were spliced in unquoted.
func testReadMetadataKeys(t *testing.T, s eventstore.Store) {
	keys := []string{"a.b", `a"b`, "a'b", "$", "[0]", "a b", `a\b`, "ünï", "*", "a[0]"}
	var evs []eventstore.Event
	for i, k := range keys {
		evs = append(evs, eventstore.Event{Type: "t", Data: []byte(k), Metadata: map[string]string{k: fmt.Sprint("v", i), "other": "x"}})
	}
	// Decoys: what an unquoted path would find instead.
	evs = append(evs, eventstore.Event{Type: "t", Data: []byte("decoy"), Metadata: map[string]string{"a": "v0", "b": "v0"}})
	mustAppend(t, s, "s", eventstore.NoStream, evs...)
	all := recorded("s", 1, evs...)
	for i, k := range keys {
		v := fmt.Sprint("v", i)
		for _, f := range []eventstore.MetadataFilter{
			eventstore.MetadataEquals(k, v),
			eventstore.MetadataOneOf(k, v, "nope"),
			eventstore.MetadataHasPrefix(k, v),
		} {
			got := readAll(t, s, "s", eventstore.ReadOptions{Filter: eventstore.Filter{Metadata: []eventstore.MetadataFilter{f}}})
			wantEvents(t, fmt.Sprintf("Read with metadata %s %q %q", f.Op, k, v), all[i:i+1], got)
		}
	}
}

// testReadCheckpointing plays a consumer that polls the global log from
// just after the highest position it has seen, while writers append: it
// must end up with every event. (On a database where positions are taken
// before commit, a reader that can see a later position before an earlier
// one skips the earlier one for ever.)
func testReadCheckpointing(t *testing.T, s eventstore.Store) {
	const writers, appends = 4, 40
	g, ctx := errgroup.WithContext(ctxTimeout(t))
	writing := make(chan struct{})
	var wg errgroup.Group
	for w := range writers {
		wg.Go(func() error {
			for i := range appends {
				if _, err := s.Append(ctx, fmt.Sprint("s", w), eventstore.Any, ev("t", fmt.Sprint(w, "/", i))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(writing)
		return wg.Wait()
	})
	var seen []eventstore.Recorded
	g.Go(func() error {
		var next uint64
		for done := false; !done; {
			select {
			case <-writing:
				done = true // one more read after the writers are done
			default:
			}
			got, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{From: next}))
			if err != nil {
				return err
			}
			if len(got) > 0 {
				seen = append(seen, got...)
				next = got[len(got)-1].Position + 1
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	all := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{})
	if len(all) != writers*appends {
		t.Errorf("store holds %d events, want %d", len(all), writers*appends)
	}
	wantSame(t, "checkpointing reader", all, seen)
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
	w := startWatch(t, s, "s", eventstore.WatchOptions{From: eventstore.After(3)})
	mustAppend(t, s, "s", eventstore.Exact(3), ev("t", "after"))
	wantSame(t, "watch after abandoned watches", readAll(t, s, "s", eventstore.ReadOptions{From: 4}), w.next(t, 1))
	w.stop(t)
}

// clip cuts an ASCII s to the longest accepted name.
func clip(s string) string { return s[:min(len(s), eventstore.MaxIDLength)] }

// testAppendTimeRange appends times far from today. A store may refuse a
// time it cannot represent (ErrInvalidInput, nothing written), but must
// not store it wrong: a Unix-nanosecond column, for one, overflows outside
// 1678-2262.
func testAppendTimeRange(t *testing.T, s eventstore.Store) {
	for i, tm := range []time.Time{
		time.Date(1066, 10, 14, 9, 0, 0, 0, time.UTC),
		time.Date(1677, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2500, 6, 30, 12, 0, 0, 123000, time.UTC),
	} {
		stream := fmt.Sprint("s", i)
		_, err := s.Append(ctxTimeout(t), stream, eventstore.NoStream, eventstore.Event{Type: "t", Time: tm})
		if err != nil {
			wantValidation(t, fmt.Sprintf("Append with Time %v", tm), err)
			wantVersion(t, s, stream, 0)
			continue
		}
		got := readAll(t, s, stream, eventstore.ReadOptions{})
		if len(got) != 1 || !got[0].Time.Equal(tm) {
			t.Errorf("Append with Time %v: read back %+v, want the time kept (or the append refused as invalid input)", tm, got)
		}
		if info := info(t, s, stream); !info.LastTime.Equal(tm) {
			t.Errorf("Append with Time %v: Info LastTime %v", tm, info.LastTime)
		}
	}
}

// testCloseDuringUse closes the store while writers, readers and watchers
// are busy: every call in flight ends, successfully or with ErrClosed,
// never with a raw driver error and never hanging.
func testCloseDuringUse(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, numbered(50, "t", "e")...)
	ctx := ctxTimeout(t)
	started := make(chan struct{}, 8)
	var g errgroup.Group
	// endsClosed runs op until it fails and checks that it failed with
	// ErrClosed.
	endsClosed := func(name string, op func() error) {
		g.Go(func() error {
			started <- struct{}{}
			for {
				err := op()
				if err == nil {
					continue
				}
				if !errors.Is(err, eventstore.ErrClosed) {
					return fmt.Errorf("%s during Close: %w (want ErrClosed)", name, err)
				}
				return nil
			}
		})
	}
	for w := range 3 {
		endsClosed(fmt.Sprint("Append ", w), func() error {
			_, err := s.Append(ctx, fmt.Sprint("w", w), eventstore.Any, ev("t", "x"))
			return err
		})
	}
	endsClosed("Read", func() error {
		_, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}))
		return err
	})
	endsClosed("Info", func() error {
		_, err := s.Info(ctx, "s")
		return err
	})
	endsClosed("Watch", func() error {
		for _, err := range s.Watch(ctx, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()}) {
			if err != nil {
				return err
			}
		}
		return errors.New("watch ended without an error")
	})
	for range 6 {
		<-started
	}
	// Let every goroutine make some calls, as shown by the writers' events.
	w := startWatch(t, s, eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.After(0)})
	w.next(t, 50+3)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("calls in flight did not end within %v of Close", waitTimeout)
	}
	if err := w.end(t); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("watch ended with %v at Close, want ErrClosed", err)
	}
}

// testReadNotIterated makes many reads and watches and never ranges over
// them: an adapter that took a connection (or a lock, or a goroutine) when
// Read or Watch is called, rather than when iteration begins, would leak it
// and the calls after would hang.
func testReadNotIterated(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, numbered(3, "t", "e")...)
	for range 50 {
		_ = s.Read(ctxTimeout(t), "s", eventstore.ReadOptions{})
		_ = s.Read(ctxTimeout(t), eventstore.AllStreams, eventstore.ReadOptions{Backwards: true})
		_ = s.Watch(ctxTimeout(t), "s", eventstore.WatchOptions{})
		_ = s.Watch(ctxTimeout(t), eventstore.AllStreams, eventstore.WatchOptions{From: eventstore.FromStart()})
	}
	mustAppend(t, s, "s", eventstore.Exact(3), ev("t", "after"))
	wantVersion(t, s, "s", 4)
	w := startWatch(t, s, "s", eventstore.WatchOptions{From: eventstore.After(3)})
	wantSame(t, "watch after unused iterators", readAll(t, s, "s", eventstore.ReadOptions{From: 4}), w.next(t, 1))
	w.stop(t)
}

// testReadPaging reads a stream longer than the pages adapters typically
// fetch per query (a thousand rows or so), with limits and filters that end
// inside a later page, in both directions, to catch paging that loses or
// repeats an event at a page boundary.
func testReadPaging(t *testing.T, s eventstore.Store) {
	const n = 2100
	evs := make([]eventstore.Event, n)
	for i := range evs {
		typ := "other"
		if i%3 == 0 {
			typ = "third"
		}
		evs[i] = eventstore.Event{Type: typ, Data: []byte(fmt.Sprint(i + 1))}
	}
	for lo := 0; lo < n; lo += 700 {
		mustAppend(t, s, "s", eventstore.Any, evs[lo:lo+700]...)
	}
	mustAppend(t, s, "other", eventstore.NoStream, ev("t", "elsewhere"))
	all := recorded("s", 1, evs...)
	thirds := make([]eventstore.Recorded, 0, n/3)
	for _, r := range all {
		if r.Type == "third" {
			thirds = append(thirds, r)
		}
	}
	byType := eventstore.Filter{Types: []string{"third"}}
	for _, c := range []struct {
		name string
		opts eventstore.ReadOptions
		want []eventstore.Recorded
	}{
		{"All", eventstore.ReadOptions{}, all},
		{"Backwards", eventstore.ReadOptions{Backwards: true}, reversed(all)},
		{"FromLimit", eventstore.ReadOptions{From: 500, Limit: 1500}, all[499:1999]},
		{"BackwardsFromLimit", eventstore.ReadOptions{From: 2050, Limit: 1500, Backwards: true}, reversed(all[550:2050])},
		{"Filtered", eventstore.ReadOptions{Filter: byType}, thirds},
		{"FilteredLimit", eventstore.ReadOptions{Filter: byType, Limit: 650}, thirds[:650]},
		{"FilteredBackwardsLimit", eventstore.ReadOptions{Filter: byType, Limit: 650, Backwards: true}, reversed(thirds)[:650]},
	} {
		got := readAll(t, s, "s", c.opts)
		if len(got) != len(c.want) {
			t.Errorf("%s: read %d events, want %d", c.name, len(got), len(c.want))
			continue
		}
		// Compare the cheap way (see testAppendLargeBatch).
		for i := range got {
			if got[i].Version != c.want[i].Version || !bytes.Equal(got[i].Data, c.want[i].Data) || got[i].Type != c.want[i].Type {
				t.Errorf("%s: event %d is %s@%d %q, want version %d", c.name, i, got[i].StreamID, got[i].Version, got[i].Data, c.want[i].Version)
				break
			}
		}
	}
	// The same over the global log.
	gotAll := readAll(t, s, eventstore.AllStreams, eventstore.ReadOptions{From: readAll(t, s, "s", eventstore.ReadOptions{From: 100, Limit: 1})[0].Position, Limit: 1800})
	if len(gotAll) != 1800 || gotAll[0].Version != 100 || gotAll[1799].Version != 1899 {
		t.Errorf("Read(AllStreams) from version 100's position, limit 1800: %d events", len(gotAll))
	}
	checkPositions(t, gotAll, false)
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
	}{
		{eventstore.AllStreams, eventstore.Filter{Types: []string{"keep"}}},
		{eventstore.AllStreams, eventstore.Filter{StreamPrefix: "a-"}},
		{eventstore.AllStreams, eventstore.Filter{StreamPrefix: "b-", Metadata: []eventstore.MetadataFilter{eventstore.MetadataEquals("n", "0")}}},
		{stream(0), eventstore.Filter{Types: []string{"keep"}}},
	}
	ws := make([]*watcher, len(filters))
	for i, f := range filters {
		ws[i] = startWatch(t, s, f.stream, eventstore.WatchOptions{From: eventstore.FromStart(), Filter: f.filter})
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
		wantSame(t, fmt.Sprintf("watch %q %+v", f.stream, f.filter), want, ws[i].next(t, len(want)))
		ws[i].stop(t)
	}
}

// testAppendConcurrentResults has many writers append at once, some with a
// stale expectation or an ID stored elsewhere, so that an adapter grouping
// concurrent appends into one transaction must still give each caller its
// own result or error: a failing append fails alone, and each success
// reports its own version and position.
func testAppendConcurrentResults(t *testing.T, s eventstore.Store) {
	const writers, rounds = 12, 10
	mustAppend(t, s, "owner", eventstore.NoStream, evID("shared", "t"))
	type landed struct{ version, position uint64 }
	got := make([][]landed, writers) // one slot per writer
	start := make(chan struct{})
	g, ctx := errgroup.WithContext(ctxTimeout(t))
	for w := range writers {
		g.Go(func() error {
			<-start
			stream := fmt.Sprint("c-", w)
			var version uint64
			for i := range rounds {
				n := 1 + (w+i)%3
				evs := numbered(n, "t", fmt.Sprintf("%d-%d", w, i))
				switch {
				case (w+i)%4 == 3: // stale: fails alone
					_, err := s.Append(ctx, stream, eventstore.Exact(version+5), evs...)
					var ce *eventstore.ConflictError
					if !errors.As(err, &ce) || ce.StreamID != stream || ce.Actual != version {
						return fmt.Errorf("writer %d round %d: stale append: %v, want a ConflictError on %s with actual %d", w, i, err, stream, version)
					}
				case (w+i)%5 == 4: // an ID stored in another stream: fails alone
					_, err := s.Append(ctx, stream, eventstore.Exact(version), append(evs, evID("shared", "t"))...)
					if !errors.Is(err, eventstore.ErrIdempotency) {
						return fmt.Errorf("writer %d round %d: append of a foreign ID: %v, want ErrIdempotency", w, i, err)
					}
				default:
					res, err := s.Append(ctx, stream, eventstore.Exact(version), evs...)
					if err != nil {
						return fmt.Errorf("writer %d round %d: %w", w, i, err)
					}
					if res.Version != version+uint64(n) || res.Appended != n || len(res.Duplicates) != 0 || res.Position == 0 {
						return fmt.Errorf("writer %d round %d: result %+v, want version %d and %d appended", w, i, res, version+uint64(n), n)
					}
					version += uint64(n)
					got[w] = append(got[w], landed{version, res.Position})
				}
			}
			return nil
		})
	}
	close(start)
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	seen := make(map[uint64]string)
	for w, ls := range got {
		stream := fmt.Sprint("c-", w)
		read := readAll(t, s, stream, eventstore.ReadOptions{})
		if len(ls) > 0 && uint64(len(read)) != ls[len(ls)-1].version {
			t.Errorf("%s holds %d events, its writer's last append reported version %d", stream, len(read), ls[len(ls)-1].version)
			continue
		}
		for _, l := range ls {
			r := read[l.version-1]
			if r.Position != l.position {
				t.Errorf("%s@%d: position %d, its append reported %d", stream, l.version, r.Position, l.position)
			}
			if other, dup := seen[l.position]; dup {
				t.Errorf("position %d reported to %s and %s", l.position, other, stream)
			}
			seen[l.position] = stream
		}
	}
	if n := len(readAll(t, s, "owner", eventstore.ReadOptions{})); n != 1 {
		t.Errorf("owner holds %d events, want 1", n)
	}
}

// testSnapshotConcurrent saves snapshots of many versions at once: the
// newest must win whatever the order the saves land in (a read-then-write
// upsert outside a transaction would let an older one overwrite it).
func testSnapshotConcurrent(t *testing.T, s eventstore.Store) {
	const savers, each = 8, 10
	start := make(chan struct{})
	g, ctx := errgroup.WithContext(ctxTimeout(t))
	for w := range savers {
		g.Go(func() error {
			<-start
			for i := range each {
				v := uint64(i*savers + w + 1) // every saver climbs; all interleave
				snap := eventstore.Snapshot{StreamID: "s", Name: "m", Version: v, Schema: "v1", Data: []byte(fmt.Sprint(v))}
				if err := s.SaveSnapshot(ctx, snap); err != nil {
					return fmt.Errorf("saver %d: SaveSnapshot version %d: %w", w, v, err)
				}
			}
			return nil
		})
	}
	close(start)
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	const newest = savers * each
	wantSnapshot(t, s, "s", "m", eventstore.Snapshot{StreamID: "s", Name: "m", Version: newest, Schema: "v1", Data: []byte(fmt.Sprint(newest))})
}
