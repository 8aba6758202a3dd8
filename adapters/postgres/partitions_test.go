package postgres

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// TestStreamHashSQL: the schema's stream_hash(text), which reads use for
// events stored before schema version 6, is eventstore.StreamHash, and
// appends store that same hash with each event.
func TestStreamHashSQL(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	ids := []string{"a", "order-1", "ünïcødé-∑-流", strings.Repeat("long-", 100), "\x01\x7f"}
	for _, id := range ids {
		var got int64
		if err := s.d.pool.QueryRow(ctx, "SELECT "+s.d.schema+".stream_hash($1)", id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := int64(eventstore.StreamHash(id)); got != want {
			t.Errorf("stream_hash(%q) = %d in SQL, eventstore.StreamHash = %d", id, got, want)
		}
		if _, err := s.Append(ctx, id, eventstore.NoStream, evt("t")); err != nil {
			t.Fatal(err)
		}
		var stored int64
		if err := s.d.pool.QueryRow(ctx, "SELECT stream_hash FROM "+s.d.schema+".events WHERE stream_id = $1", id).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if want := int64(eventstore.StreamHash(id)); stored != want {
			t.Errorf("append stored stream_hash %d for %q, want %d", stored, id, want)
		}
	}
}

// TestPartitionsOfOldEvents: events stored before schema version 6 have no
// stream_hash; a partition read still selects them by their stream.
func TestPartitionsOfOldEvents(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	for k := range 30 {
		if _, err := s.Append(ctx, fmt.Sprintf("old-%d", k), eventstore.NoStream, evt("t"), evt("u")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.d.pool.Exec(ctx, "UPDATE "+s.d.schema+".events SET stream_hash = NULL WHERE position % 3 <> 0"); err != nil {
		t.Fatal(err)
	}
	all, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	p := eventstore.Partitions{Count: 5, Of: []int{1, 4}}
	var want []string
	for _, e := range all {
		if p.Keeps(e.StreamID) {
			want = append(want, fmt.Sprintf("%s@%d", e.StreamID, e.Version))
		}
	}
	got, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{Filter: eventstore.Filter{Partitions: p}}))
	if err != nil {
		t.Fatal(err)
	}
	if g := streamsOf(got); !slices.Equal(g, want) {
		t.Errorf("partitions %v of %d over events without stream_hash:\n got %v\nwant %v", p.Of, p.Count, g, want)
	}
}

// TestPartitionsPlan: a group member's page walks the position index and
// stops at its LIMIT, whatever share of the partitions it holds; the
// planner must not sort the whole log instead (it did when the filter was
// written as "= ANY" of 4 of 12 partitions: issue 11).
func TestPartitionsPlan(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	const n = 200_000
	if _, err := s.d.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %[1]s.events (position, stream_id, stream_hash, version, type, data, occurred_at)
		SELECT g, 's-' || (g %% 1000), %[1]s.stream_hash('s-' || (g %% 1000)), g / 1000 + 1, 't', '\x00', now()
		FROM generate_series(1, %[2]d) AS g`, s.d.schema, n)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.d.pool.Exec(ctx, "ANALYZE "+s.d.schema+".events"); err != nil {
		t.Fatal(err)
	}
	for _, of := range [][]int{{0, 3, 6, 9}, {1, 2, 4, 5, 7, 8, 10, 11}, {5}} {
		q := &driver.Query{StreamID: eventstore.AllStreams, Filter: eventstore.Filter{Partitions: eventstore.Partitions{Count: 12, Of: of}}}
		st := s.d.prepare(q)
		sql, args := st.query(driver.Range{From: 1, To: math.MaxInt64, Limit: maxReadPage}, math.MaxInt64, false, false)
		rows, err := s.d.pool.Query(ctx, "EXPLAIN "+sql, args...)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		p := strings.Join(plan, "\n")
		t.Logf("partitions %v of 12:\n%s", of, p)
		if !strings.Contains(p, "Index Scan using events_pkey") || strings.Contains(p, "Sort") {
			t.Errorf("partitions %v of 12: the page does not walk the position index:\n%s", of, p)
		}
	}
}

// TestPartitionsGenericPlan: the page query's generic plan (which
// PostgreSQL may switch to after five executions of a prepared statement)
// walks the position index too.
func TestPartitionsGenericPlan(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	const n = 200_000
	if _, err := s.d.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %[1]s.events (position, stream_id, stream_hash, version, type, data, occurred_at)
		SELECT g, 's-' || (g %% 1000), %[1]s.stream_hash('s-' || (g %% 1000)), g / 1000 + 1, 't', '\x00', now()
		FROM generate_series(1, %[2]d) AS g`, s.d.schema, n)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.d.pool.Exec(ctx, "ANALYZE "+s.d.schema+".events"); err != nil {
		t.Fatal(err)
	}
	q := &driver.Query{StreamID: eventstore.AllStreams, Filter: eventstore.Filter{Partitions: eventstore.Partitions{Count: 12, Of: []int{0, 3, 6, 9}}}}
	st := s.d.prepare(q)
	sql, _ := st.query(driver.Range{From: 1, To: 70000, Limit: maxReadPage}, 70000, false, false)
	conn, err := s.d.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "RESET plan_cache_mode"); err != nil {
			t.Error(err)
		}
	}()
	// EXPLAIN with parameters plans for their values: PREPARE and
	// EXPLAIN EXECUTE show the plan the statement keeps.
	if _, err := conn.Exec(ctx, "PREPARE page AS "+sql); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "DEALLOCATE page"); err != nil {
			t.Error(err)
		}
	}()
	rows, err := conn.Query(ctx, fmt.Sprintf("EXPLAIN EXECUTE page(1, 70000, %d, '{1,2,4,5,7,8,10,11}')", maxReadPage), pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(plan, "\n"); !strings.Contains(p, "Index Scan using events_pkey") || strings.Contains(p, "Sort") {
		t.Errorf("the page's generic plan does not walk the position index:\n%s", p)
	}
}
