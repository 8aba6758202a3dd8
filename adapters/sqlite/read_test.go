package sqlite_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
	"github.com/esv2/esv2/internal/adaptertest"
)

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
		{"ForwardsFrom", eventstore.ReadOptions{From: eventstore.After(999)}, seq(1000, n)},
		{"ForwardsLimit", eventstore.ReadOptions{From: eventstore.After(9), Limit: 2000}, seq(10, 2009)},
		{"Backwards", eventstore.ReadOptions{Backwards: true}, seq(n, 1)},
		{"BackwardsFrom", eventstore.ReadOptions{Backwards: true, From: eventstore.After(1501)}, seq(1500, 1)},
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

// TestFindEvent looks events up by ID through the store: found in
// whichever stream holds it, with all its fields, or ErrNotFound; and the
// lookup is a search of the unique event_id index, not a scan.
func TestFindEvent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "find.db")
	s := openFile(t, path)
	ctx := testCtx(t)
	if _, err := s.Append(ctx, "a", eventstore.NoStream,
		eventstore.Event{ID: "a-1", Type: "t", Data: []byte("one")},
		eventstore.Event{Type: "anonymous"},
	); err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, "b", eventstore.NoStream,
		eventstore.Event{ID: "b-1", Type: "u", Metadata: map[string]string{"k": "v", "q": `"`}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.FindEvent(ctx, "b-1")
	if err != nil {
		t.Fatal(err)
	}
	want, err := eventstore.Collect(s.Read(ctx, "b", eventstore.ReadOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[0], got); diff != "" {
		t.Errorf("FindEvent(b-1) differs from what Read returns (-read +find):\n%s", diff)
	}
	if got.Position != res.Position || got.StreamID != "b" {
		t.Errorf("FindEvent(b-1) at %s@%d, want b@%d", got.StreamID, got.Position, res.Position)
	}
	if got, err := s.FindEvent(ctx, "a-1"); err != nil || got.StreamID != "a" || string(got.Data) != "one" || got.Metadata != nil {
		t.Errorf("FindEvent(a-1) = %+v, %v", got, err)
	}
	if _, err := s.FindEvent(ctx, "nope"); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("FindEvent of an unknown ID: %v, want ErrNotFound", err)
	}

	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN SELECT position, stream_id, version, type, data, metadata, time FROM events WHERE event_id = ?", "b-1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(plan) != 1 || !strings.Contains(plan[0], "USING INDEX events_event_id") {
		t.Errorf("FindEvent's query plan: %q, want one search of events_event_id", plan)
	}
}

// TestReadPagePaths reads the same pages through the driver's two paths
// (a cached prepared statement, and the raw driver rows used for a large
// page after a full one) and gets the same events: every column, NULLs
// included, stream and all-streams queries, forwards and backwards.
func TestReadPagePaths(t *testing.T) {
	ctx := testCtx(t)
	d, err := sqlite.OpenDriver(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const n = 300
	for _, stream := range []string{"s", "t"} {
		batch := make([]eventstore.Event, n)
		for i := range batch {
			batch[i] = eventstore.Event{Type: "t" + strconv.Itoa(i%3)}
			if i%2 == 0 {
				batch[i].Data = []byte(strconv.Itoa(i))
				batch[i].ID = fmt.Sprintf("%s-%d", stream, i)
			}
			if i%5 == 0 {
				batch[i].Metadata = map[string]string{"i": strconv.Itoa(i), "esc": "a\"b\\c"}
			}
		}
		if _, err := d.Append(ctx, &driver.Batch{StreamID: stream, Expected: eventstore.NoStream, Events: batch}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		q    driver.Query
	}{
		{"Stream", driver.Query{StreamID: "s"}},
		{"StreamBackwards", driver.Query{StreamID: "t", Backwards: true}},
		{"AllStreams", driver.Query{StreamID: eventstore.AllStreams}},
		{"Filtered", driver.Query{StreamID: eventstore.AllStreams, Filter: eventstore.Filter{Types: []string{"t0", "t2"}}}},
	} {
		var full []eventstore.Recorded // the page read with nothing omitted
		for _, omit := range []eventstore.Fields{0, eventstore.AllFields, eventstore.FieldID, eventstore.FieldMetadata | eventstore.FieldTime, eventstore.FieldTime} {
			t.Run(fmt.Sprintf("%s/omit=%d", tc.name, omit), func(t *testing.T) {
				rng := driver.Range{From: 1, To: 2 * n, Limit: 100}
				if tc.q.Backwards {
					rng.To = n - 5
				}
				q := tc.q
				q.Omit = omit
				// A fresh query's first page goes through the cached
				// statement.
				fresh := q
				want, err := d.ReadPage(ctx, &fresh, rng, nil)
				if err != nil {
					t.Fatal(err)
				}
				// After a full page, a large page goes through raw rows.
				warm := q
				if first, err := d.ReadPage(ctx, &warm, driver.Range{From: 1, To: 2 * n, Limit: 1}, nil); err != nil || len(first) != 1 {
					t.Fatalf("first page: %d events, %v", len(first), err)
				}
				got, err := d.ReadPage(ctx, &warm, rng, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(want) != rng.Limit {
					t.Fatalf("page of %d events, want %d", len(want), rng.Limit)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("raw rows differ from the prepared statement's (-prepared +raw):\n%s", diff)
				}
				if omit == 0 {
					full = want
					return
				}
				// The adapter does not read what is omitted: those
				// fields are zero, the others as in a full read.
				trimmed := adaptertest.Omitted(full, omit)
				if diff := cmp.Diff(trimmed, got); diff != "" {
					t.Errorf("omitting %#x differs from the full read with those fields zero (-want +got):\n%s", uint8(omit), diff)
				}
			})
		}
	}
}
