package subscription_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/pgtest"
	"github.com/esv2/esv2/subscription"
)

// The transactional handler on each adapter: a count per stream kept in the
// store's database, in the checkpoint's transaction, across a restart and
// a group of two members.
func TestTxHandlerOnSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	handler := func(ctx context.Context, tx *sql.Tx, events []eventstore.Recorded) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS counts (stream TEXT PRIMARY KEY, n INTEGER NOT NULL)`); err != nil {
			return err
		}
		for _, e := range events {
			if _, err := tx.ExecContext(ctx, `INSERT INTO counts VALUES (?, 1) ON CONFLICT (stream) DO UPDATE SET n = n + 1`, e.StreamID); err != nil {
				return err
			}
		}
		return nil
	}
	count := func() map[string]int {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		return countsOf(t, db, `SELECT stream, n FROM counts`)
	}
	runTxGroup(t, s, handler, count)
}

// countsOf reads a read model's (stream, count) rows with query.
func countsOf(t *testing.T, db *sql.DB, query string) map[string]int {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		got[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestTxHandlerOnPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	schema := pgtest.FreshSchema(t, "esv2_subtest_")
	s, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema), postgres.WithMigrate())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	table := pgx.Identifier{schema, "counts"}.Sanitize()
	handler := func(ctx context.Context, tx pgx.Tx, events []eventstore.Recorded) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (stream text PRIMARY KEY, n int NOT NULL)`); err != nil {
			return err
		}
		for _, e := range events {
			if _, err := tx.Exec(ctx, `INSERT INTO `+table+` VALUES ($1, 1) ON CONFLICT (stream) DO UPDATE SET n = `+table+`.n + 1`, e.StreamID); err != nil {
				return err
			}
		}
		return nil
	}
	count := func() map[string]int {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT stream, n FROM `+table)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			got[k] = n
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	runTxGroup(t, s, handler, count)
}

// runTxGroup appends to several streams, runs the subscription "counts"
// with one member, stops it, appends more, runs two members in a group,
// and checks the counts equal the events: each applied exactly once.
func runTxGroup[Tx any](t *testing.T, s subscription.Store[Tx], h subscription.TxHandler[Tx], count func() map[string]int) {
	t.Helper()
	want := map[string]int{}
	add := func(n int) uint64 {
		var last uint64
		for i := range n {
			id := fmt.Sprintf("acct-%d", i%7)
			last = appendN(t, s, id, 1+i%3, "Deposited")
			want[id] += 1 + i%3
		}
		return last
	}
	head := add(40)
	one, err := subscription.NewTx(s, "counts", h, subscription.WithPartitions(4), subscription.WithBatchSize(5))
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, one)
	waitFor(t, one, head)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	head = add(30)
	var members []*subscription.Subscription
	for _, m := range []string{"a", "b"} {
		sub, err := subscription.NewTx(s, "counts", h, subscription.WithPartitions(4), subscription.WithMember(m), subscription.WithBatchSize(3))
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, sub)
		start(t, sub)
	}
	for _, m := range members {
		waitFor(t, m, head)
	}
	got := count()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read model %v, want %v", got, want)
	}
}
