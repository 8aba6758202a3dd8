package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esv2/esv2/eventstore"
)

// TestCategoryAndTypePlans: a read of all streams by a prefix that fixes a
// category, or by one type, walks that index in position order (issue 13
// item 2): no scan of the log, no sort of the matches.
func TestCategoryAndTypePlans(t *testing.T) {
	ctx := context.Background()
	d, _, err := openDriver(ctx, filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.wconn.ExecContext(ctx, `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 20000)
		INSERT INTO events (stream_id, version, type, data, time)
		SELECT 'c' || (n % 1000) || '-' || (n % 7), n, 't' || (n % 100), x'00', 0 FROM g`); err != nil {
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
		t.Run(c.name, func(t *testing.T) {
			q, err := buildQuery(eventstore.AllStreams, false, c.filter, 0)
			if err != nil {
				t.Fatal(err)
			}
			args := append([]any{1, int64(1) << 62}, q.filter...)
			args = append(args, 1024)
			rows, err := d.readDB.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.sql, args...)
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
			p := strings.Join(plan, "\n")
			if !strings.Contains(p, "INDEX "+c.index) || strings.Contains(p, "TEMP B-TREE") {
				t.Errorf("%s: the page does not walk %s in position order:\n%s\n%s", c.name, c.index, q.sql, p)
			}
		})
	}
}
