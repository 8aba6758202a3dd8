package postgres

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/adaptertest"
)

// TestScannerDecode checks that rows decoded from their raw binary values
// (scanner.decode, what reads use) are those pgx's Scan makes of the same
// rows (scanner.scan), for events with and without an ID, data and
// metadata, types and streams that change from row to row, and times
// before and after 2000 and the Unix epoch; and that the store's page
// query gets its columns in the formats decode reads.
func TestScannerDecode(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	times := []time.Time{
		time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 1000, time.UTC),
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i, tm := range times {
		evs := []eventstore.Event{
			{Type: "a", Data: []byte(`{"n":1}`), Time: tm},
			{ID: "id-" + tm.Format(time.RFC3339Nano), Type: "b", Data: nil, Metadata: map[string]string{"k": "v", "é": "\"q\""}, Time: tm},
			{Type: "a", Data: []byte{0, 1, 2}, Metadata: map[string]string{}},
		}
		stream := []string{"s-1", "s-2"}[i%2]
		if _, err := s.Append(ctx, stream, eventstore.Any, evs...); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := s.d.pool.Query(ctx, "SELECT "+s.d.q.cols+" FROM "+s.d.schema+".events ORDER BY position")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rawColumns(rows.FieldDescriptions()) {
		t.Fatalf("the page query's columns are not read raw: %+v", rows.FieldDescriptions())
	}
	var raw, scanned scanner
	n := 0
	for rows.Next() {
		got, err := raw.next(rows)
		if err != nil {
			t.Fatalf("row %d: decode: %v", n, err)
		}
		if !raw.raw {
			t.Fatal("scanner.next did not decode the row raw")
		}
		want, err := scanned.scan(rows)
		if err != nil {
			t.Fatalf("row %d: scan: %v", n, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("row %d: decode differs from scan (-scan +decode):\n%s", n, diff)
		}
		if got.Time != want.Time { // == too: the same location, no monotonic reading
			t.Errorf("row %d: time %#v, scan's %#v", n, got.Time, want.Time)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 3*len(times) {
		t.Fatalf("read %d rows, want %d", n, 3*len(times))
	}
}

// TestScannerDecodeOmitted: the columns of a read that omits fields
// (readColumns) are still read raw, decode and scan agree on them, the
// omitted fields are zero and the others those of the full read.
func TestScannerDecodeOmitted(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	if _, err := s.Append(ctx, "s-1", eventstore.Any,
		eventstore.Event{ID: "id-1", Type: "a", Data: []byte{1}, Metadata: map[string]string{"k": "v"}, Time: at},
		eventstore.Event{Type: "b", Time: at}); err != nil {
		t.Fatal(err)
	}
	read := func(omit eventstore.Fields) (raw, scanned []eventstore.Recorded) {
		t.Helper()
		cols, _ := readColumns(omit)
		rows, err := s.d.pool.Query(ctx, "SELECT "+cols+" FROM "+s.d.schema+".events ORDER BY position")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		if !rawColumns(rows.FieldDescriptions()) {
			t.Fatalf("omit %#x: the columns are not read raw: %+v", omit, rows.FieldDescriptions())
		}
		var dec, sc scanner
		for rows.Next() {
			got, err := dec.next(rows)
			if err != nil {
				t.Fatalf("omit %#x: decode: %v", omit, err)
			}
			want, err := sc.scan(rows)
			if err != nil {
				t.Fatalf("omit %#x: scan: %v", omit, err)
			}
			raw, scanned = append(raw, got), append(scanned, want)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return raw, scanned
	}
	full, _ := read(0)
	if len(full) != 2 || full[0].ID == "" || full[0].Metadata == nil || full[0].Time.IsZero() {
		t.Fatalf("full read: %+v", full)
	}
	for _, omit := range []eventstore.Fields{eventstore.FieldID, eventstore.FieldMetadata, eventstore.FieldTime, eventstore.AllFields} {
		raw, scanned := read(omit)
		if diff := cmp.Diff(scanned, raw); diff != "" {
			t.Errorf("omit %#x: decode differs from scan (-scan +decode):\n%s", omit, diff)
		}
		want := adaptertest.Omitted(full, omit)
		if diff := cmp.Diff(want, raw); diff != "" {
			t.Errorf("omit %#x: (-want +got):\n%s", omit, diff)
		}
	}
}
