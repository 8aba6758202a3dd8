package postgres

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// TestPageCutByServer: the server ends a page at eventstore.PageBytes, so
// that no more rows are sent than the page keeps (issue 9 item 3): a page
// query with a LIMIT of 4,096 over events of 1 MiB returns a page's worth,
// counted as eventstore.EventSize counts (data plus metadata keys and
// values), in both directions and for a filtered watch's read bounded by
// the head.
func TestPageCutByServer(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	const mib = 1 << 20
	var evs []eventstore.Event
	for i := range 10 {
		e := eventstore.Event{Type: "t", Data: make([]byte, mib)}
		if i >= 4 {
			// Ten bytes of metadata, taken from the data so that the event
			// stays within the size limit: the sum still reaches
			// PageBytes at the fourth event.
			e.Data = e.Data[:mib-10]
			e.Metadata = map[string]string{"key": fmt.Sprint(1000000 + i)}
		}
		evs = append(evs, e)
	}
	evs[8].Data = evs[8].Data[:mib-11] // version 9 is one byte short: 10, 9, 8, 7 miss PageBytes by one
	for _, e := range evs {
		if _, err := s.Append(t.Context(), "big", eventstore.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	versions := func(q *driver.Query, r driver.Range) []uint64 {
		t.Helper()
		sql, args := s.d.prepare(q).query(r, r.To, true, false)
		rows, err := s.d.pool.Query(t.Context(), sql, args...)
		if err != nil {
			t.Fatal(err)
		}
		// Every row the server sent: fetch would stop at PageBytes itself.
		out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (uint64, error) {
			var sc scanner
			r, err := sc.scan(row)
			return r.Version, err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	const end = math.MaxInt64
	for _, c := range []struct {
		name string
		q    driver.Query
		r    driver.Range
		want []uint64
	}{
		{"Forwards", driver.Query{StreamID: "big"}, driver.Range{From: 1, To: end, Limit: 4096}, []uint64{1, 2, 3, 4}},
		{"Next", driver.Query{StreamID: "big"}, driver.Range{From: 5, To: end, Limit: 4096}, []uint64{5, 6, 7, 8}},
		{"Last", driver.Query{StreamID: "big"}, driver.Range{From: 9, To: end, Limit: 4096}, []uint64{9, 10}},
		{"RowLimitFirst", driver.Query{StreamID: "big"}, driver.Range{From: 2, To: end, Limit: 2}, []uint64{2, 3}},
		{"Backwards", driver.Query{StreamID: "big", Backwards: true}, driver.Range{From: 1, To: end, Limit: 4096}, []uint64{10, 9, 8, 7, 6}},
		{"WatchBounded", driver.Query{StreamID: "big", Filter: eventstore.Filter{Types: []string{"t"}}}, driver.Range{From: 3, To: 4, Limit: 512}, []uint64{3, 4}},
	} {
		if diff := cmp.Diff(c.want, versions(&c.q, c.r)); diff != "" {
			t.Errorf("%s: versions (-want +got):\n%s", c.name, diff)
		}
	}
}

// TestReadSmallThenLargeEvents: Read leaves out the server's running sum
// once it has seen small events, and a page read that way that meets large
// ones is cut at eventstore.PageBytes by the client: every event is read,
// in order, either way.
func TestReadSmallThenLargeEvents(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	var want []eventstore.Event
	for i := range 100 {
		want = append(want, eventstore.Event{Type: "small", Data: []byte(fmt.Sprint(i + 1))})
	}
	for i := range 10 {
		want = append(want, eventstore.Event{Type: "large", Data: bytes.Repeat([]byte{byte(i)}, 1<<20)})
	}
	for i := 0; i < len(want); i += 5 {
		if _, err := s.Append(t.Context(), "s", eventstore.Exact(uint64(i)), want[i:i+5]...); err != nil {
			t.Fatal(err)
		}
	}
	got, err := eventstore.Collect(s.Read(t.Context(), "s", eventstore.ReadOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Version != uint64(i+1) || got[i].Type != want[i].Type || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("event %d: version %d, %s, %d bytes; want version %d, %s, %d bytes", i, got[i].Version, got[i].Type, len(got[i].Data), i+1, want[i].Type, len(want[i].Data))
		}
	}
}
