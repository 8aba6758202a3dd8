package postgres

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/eventstore/driver"
)

// TestStreamPagePlan: a stream's page query walks the (stream_id, version)
// index, never reading the rest of the stream to sort it, in the plans
// PostgreSQL makes for a prepared statement's values (its first five
// executions on a connection), on a table without statistics, as a new
// store's is until it is analyzed, and on one with them. Pages of every
// shape, cut by the server or not.
func TestStreamPagePlan(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	const n = 50_000
	if _, err := s.d.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %[1]s.events (position, stream_id, stream_hash, version, type, data, occurred_at)
		SELECT g, 's-' || (g %% 2), %[1]s.stream_hash('s-' || (g %% 2)), (g + 1) / 2, 't', '\x00', now()
		FROM generate_series(1, %[2]d) AS g`, s.d.schema, n)); err != nil {
		t.Fatal(err)
	}
	check := func(stats string) {
		for _, rng := range []driver.Range{
			{From: 1, To: math.MaxInt64, Limit: maxReadPage},
			{From: 1000, To: math.MaxInt64, Limit: maxReadPage},
			{From: 1, To: 20_000, Limit: maxReadPage},
			{From: 1000, To: 20_000, Limit: maxReadPage},
		} {
			for _, cut := range []bool{false, true} {
				st := s.d.prepare(&driver.Query{StreamID: "s-1"})
				sql, args := st.query(rng, rng.To, cut, false)
				rows, err := s.d.pool.Query(ctx, "EXPLAIN "+sql, args...)
				if err != nil {
					t.Fatal(err)
				}
				plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					t.Fatal(err)
				}
				p := strings.Join(plan, "\n")
				if !strings.Contains(p, "Index Scan using events_stream_version_key") || strings.Contains(p, "Sort") {
					t.Errorf("%s, range %+v, cut %v: the page does not walk the stream's index:\n%s", stats, rng, cut, p)
				}
			}
		}
	}
	check("without statistics")
	if _, err := s.d.pool.Exec(ctx, "ANALYZE "+s.d.schema+".events"); err != nil {
		t.Fatal(err)
	}
	check("with statistics")
}
