package postgres

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// TestCategoryAndTypePlans: a read of all streams by a prefix that fixes a
// category, or by one type, reads that index (issue 13 item 2), in the
// custom plan and in the generic one PostgreSQL may switch a prepared
// statement to, never scanning the log. (The planner gathers a small
// category's matches with a bitmap and sorts those few rows; for a
// category that holds a large share of the log it walks the position
// index instead, filtering, which costs about as much per row kept.)
func TestCategoryAndTypePlans(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	if _, err := s.d.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %[1]s.events (position, stream_id, stream_hash, version, type, data, occurred_at)
		SELECT g, 'c' || (g %% 1000) || '-' || (g %% 7), 0, g, 't' || (g %% 100), '\x00', now()
		FROM generate_series(1, 200000) AS g`, s.d.schema)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.d.pool.Exec(ctx, "ANALYZE "+s.d.schema+".events"); err != nil {
		t.Fatal(err)
	}
	conn, err := s.d.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// The page that asks for the safe head reads its bound from this
	// setting, which fetchSafe's statement before it sets.
	if _, err := conn.Exec(ctx, "SELECT set_config('"+safeHeadSetting+"', '1000000', false)"); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name   string
			filter eventstore.Filter
			index  string
		}{
			{"category", eventstore.Filter{StreamPrefix: "c7-"}, "events_category"},
			{"stream prefix within a category", eventstore.Filter{StreamPrefix: "c7-3"}, "events_category"},
			{"one type", eventstore.Filter{Types: []string{"t5"}}, "events_type"},
		} {
			for _, ask := range []bool{false, true} {
				q := &driver.Query{StreamID: eventstore.AllStreams, Filter: c.filter}
				sql, args := s.d.prepare(q).query(driver.Range{From: 1, To: math.MaxInt64, Limit: maxReadPage}, math.MaxInt64, false, ask)
				// A prepared statement, as pgx runs the page query, so that the
				// plan cache mode applies.
				if _, err := conn.Conn().Prepare(ctx, "plan", "EXPLAIN "+sql); err != nil {
					t.Fatal(err)
				}
				rows, err := conn.Query(ctx, "plan", args...)
				if err != nil {
					t.Fatal(err)
				}
				plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					t.Fatal(err)
				}
				if err := conn.Conn().Deallocate(ctx, "plan"); err != nil {
					t.Fatal(err)
				}
				p := strings.Join(plan, "\n")
				if !strings.Contains(p, " "+c.index) || strings.Contains(p, "Seq Scan") || strings.Contains(p, "events_pkey") {
					t.Errorf("%s, %s, asking for the safe head %v: the page does not read %s:\n%s", mode, c.name, ask, c.index, p)
				}
			}
		}
	}
	if _, err := conn.Exec(context.WithoutCancel(ctx), "RESET plan_cache_mode"); err != nil {
		t.Error(err)
	}
}

// TestReadToEndPlanWithoutStatistics: a page of a read to the end (and of
// a backward read from the start) walks the position index even on a
// table PostgreSQL has no statistics of yet, as right after a large
// import. With the range written "BETWEEN $1 AND $2" the planner took it
// to keep 0.5% of the rows and chose a bitmap scan of every event after
// $1 and a sort, for every page (issue 11: a subscription catching up on
// fresh events ran at half the driver's rate).
func TestReadToEndPlanWithoutStatistics(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	if _, err := s.d.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %[1]s.events (position, stream_id, stream_hash, version, type, data, occurred_at)
		SELECT g, 's-' || (g %% 1000), 0, g, 't', '\x00', now() FROM generate_series(1, 100000) AS g`, s.d.schema)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		backwards bool
		r         driver.Range
	}{
		{"forwards to the end", false, driver.Range{From: 1000, To: math.MaxInt64, Limit: maxReadPage}},
		{"backwards from the end", true, driver.Range{From: 1, To: 99000, Limit: maxReadPage}},
	} {
		for _, ask := range []bool{false, true} {
			q := &driver.Query{StreamID: eventstore.AllStreams, Backwards: c.backwards}
			sql, args := s.d.prepare(q).query(c.r, c.r.To, false, ask)
			// In a transaction, as fetchSafe runs the page that asks,
			// after the statement that sets its bound.
			tx, err := s.d.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "SELECT set_config('"+safeHeadSetting+"', '99500', true)"); err != nil {
				t.Fatal(err)
			}
			rows, err := tx.Query(ctx, "EXPLAIN "+sql, args...)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			p := strings.Join(plan, "\n")
			if !strings.Contains(p, "Index Scan") || strings.Contains(p, "Sort") || strings.Contains(p, "Bitmap") {
				t.Errorf("%s, asking for the safe head %v: the page does not walk the position index:\n%s", c.name, ask, p)
			}
		}
	}
}

// TestLargeCategoryRead: a read of a category of several pages, whose
// events come after the rest of the log, returns the category's events
// exactly, in order, forwards and backwards: not the stream named as the
// category, nor a longer category sharing its first letters.
func TestLargeCategoryRead(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	// 100,000 events over 1,000 small categories, then 20,000 of "big"
	// over 7 streams, with the stream "big" and the category "bigx"
	// among them.
	if _, err := s.d.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %[1]s.events (position, stream_id, stream_hash, version, type, data, occurred_at)
		SELECT g, CASE WHEN g <= 100000 THEN 'c' || (g %% 1000) || '-1'
		               WHEN g %% 100 = 0 THEN 'big'
		               WHEN g %% 100 = 1 THEN 'bigx-1'
		               ELSE 'big-' || (g %% 7) END,
		       0, g, 't', '\x00', now()
		FROM generate_series(1, 120000) AS g`, s.d.schema)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.d.pool.Exec(ctx, "SELECT setval('"+s.d.schema+".positions', 120000); ANALYZE "+s.d.schema+".events"); err != nil {
		t.Fatal(err)
	}
	var want []int64
	rows, err := s.d.pool.Query(ctx, "SELECT position FROM "+s.d.schema+".events WHERE stream_id LIKE 'big-%' ORDER BY position")
	if err != nil {
		t.Fatal(err)
	}
	if want, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		t.Fatal(err)
	}
	if len(want) < 3*maxReadPage {
		t.Fatalf("%d events in the category, want several pages", len(want))
	}

	f := eventstore.Filter{StreamPrefix: "big-"}
	for _, backwards := range []bool{false, true} {
		var got []int64
		for r, err := range s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{Filter: f, Backwards: backwards}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, int64(r.Position))
		}
		w := want
		if backwards {
			w = make([]int64, len(want))
			for i, p := range want {
				w[len(want)-1-i] = p
			}
		}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("read of the category, backwards %v (-want +got):\n%s", backwards, diff)
		}
	}
}
