package subscription_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/pgtest"
	"github.com/esv2/esv2/subscription"
)

// churn runs a transactional subscription of 4 partitions with a short
// lease and a handler slower than a third of it, over two stores on one
// database: member "a" on the first throughout, member "b" on the second
// stopped and started again while events are appended. The read model
// (kept through h by the caller) must end with every event applied once,
// each stream's in version order: check returns the streams' counts and
// the order violations committed.
func churn[Tx any](t *testing.T, stores [2]subscription.Store[Tx], h subscription.TxHandler[Tx], check func() (map[string]int, int)) {
	t.Helper()
	opts := []subscription.Option{
		subscription.WithPartitions(4), subscription.WithBatchSize(7),
		subscription.WithLeaseTTL(200 * time.Millisecond), subscription.WithCheckpointInterval(0),
	}
	a, err := subscription.NewTx(stores[0], "churn", h, append(opts, subscription.WithMember("a"))...)
	if err != nil {
		t.Fatal(err)
	}
	stopA := start(t, a)
	want := map[string]int{}
	var head uint64
	for cycle := range 3 {
		b, err := subscription.NewTx(stores[1], "churn", h, append(opts, subscription.WithMember("b"))...)
		if err != nil {
			t.Fatal(err)
		}
		stopB := start(t, b)
		for i := range 20 {
			id := fmt.Sprintf("s-%d", (i*7+cycle)%11)
			head = appendN(t, stores[i%2], id, 1+i%3, "X")
			want[id] += 1 + i%3
		}
		if err := stopB(); err != nil {
			t.Fatalf("member b, cycle %d: %v", cycle, err)
		}
	}
	waitFor(t, a, head)
	if err := stopA(); err != nil {
		t.Fatalf("member a: %v", err)
	}
	got, violations := check()
	if violations != 0 {
		t.Errorf("%d events applied out of their stream's order", violations)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
}

func TestChurnExactlyOnceInOrderOnSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	var stores [2]subscription.Store[*sql.Tx]
	for i := range stores {
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		stores[i] = s
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.ExecContext(ctx, `PRAGMA busy_timeout = 10000;
		CREATE TABLE model (stream TEXT PRIMARY KEY, v INTEGER NOT NULL, n INTEGER NOT NULL);
		CREATE TABLE violations (stream TEXT, got INTEGER, last INTEGER)`); err != nil {
		t.Fatal(err)
	}
	h := func(ctx context.Context, tx *sql.Tx, events []eventstore.Recorded) error {
		for _, e := range events {
			var v int64
			err := tx.QueryRowContext(ctx, `SELECT v FROM model WHERE stream = ?`, e.StreamID).Scan(&v)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if uint64(v)+1 != e.Version {
				if _, err := tx.ExecContext(ctx, `INSERT INTO violations VALUES (?, ?, ?)`, e.StreamID, e.Version, v); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO model VALUES (?, ?, 1)
				ON CONFLICT (stream) DO UPDATE SET v = excluded.v, n = n + 1`, e.StreamID, e.Version); err != nil {
				return err
			}
		}
		time.Sleep(75 * time.Millisecond) // slower than a third of the TTL
		return nil
	}
	churn(t, stores, h, func() (map[string]int, int) {
		got := countsOf(t, db, `SELECT stream, n FROM model`)
		var bad int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM violations`).Scan(&bad); err != nil {
			t.Fatal(err)
		}
		return got, bad
	})
}

// pgModel is a read model in PostgreSQL for the tests below: per stream
// the last version applied and the count, and the order violations.
type pgModel struct {
	dsn, model, violations string
}

func newPGModel(t *testing.T, dsn, schema string) *pgModel {
	t.Helper()
	m := &pgModel{dsn: dsn, model: pgx.Identifier{schema, "model"}.Sanitize(), violations: pgx.Identifier{schema, "violations"}.Sanitize()}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `CREATE TABLE `+m.model+` (stream text PRIMARY KEY, v bigint NOT NULL, n int NOT NULL);
		CREATE TABLE `+m.violations+` (stream text, got bigint, last bigint)`); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *pgModel) apply(ctx context.Context, tx pgx.Tx, events []eventstore.Recorded) error {
	for _, e := range events {
		var v int64
		err := tx.QueryRow(ctx, `SELECT v FROM `+m.model+` WHERE stream = $1 FOR UPDATE`, e.StreamID).Scan(&v)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if uint64(v)+1 != e.Version {
			if _, err := tx.Exec(ctx, `INSERT INTO `+m.violations+` VALUES ($1, $2, $3)`, e.StreamID, int64(e.Version), v); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+m.model+` VALUES ($1, $2, 1)
			ON CONFLICT (stream) DO UPDATE SET v = excluded.v, n = `+m.model+`.n + 1`, e.StreamID, int64(e.Version)); err != nil {
			return err
		}
	}
	return nil
}

func (m *pgModel) check(t *testing.T) (map[string]int, int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, m.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT stream, n FROM `+m.model)
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
	var bad int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+m.violations).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	return got, bad
}

func openPG(t *testing.T, dsn, schema string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(schema), postgres.WithMigrate())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// On PostgreSQL the handlers of two members run at once: a handler slower
// than the whole TTL lets the next holder start on the same partition, and
// only the epoch fence keeps the read model right.
func TestChurnExactlyOnceInOrderOnPostgres(t *testing.T) {
	t.Parallel()
	for _, slow := range []time.Duration{75 * time.Millisecond, 250 * time.Millisecond} {
		t.Run(fmt.Sprint("handler=", slow), func(t *testing.T) {
			t.Parallel()
			dsn := pgtest.DSN(t)
			schema := pgtest.FreshSchema(t, "esv2_subadv_")
			stores := [2]subscription.Store[pgx.Tx]{openPG(t, dsn, schema), openPG(t, dsn, schema)}
			m := newPGModel(t, dsn, schema)
			h := func(ctx context.Context, tx pgx.Tx, events []eventstore.Recorded) error {
				if err := m.apply(ctx, tx, events); err != nil {
					return err
				}
				time.Sleep(slow) // longer than a third of the TTL (200ms), or than all of it
				return nil
			}
			churn(t, stores, h, func() (map[string]int, int) { return m.check(t) })
		})
	}
}

// The connection of a transactional handler's transaction is terminated
// (pg_terminate_backend) in the handler, or racing the COMMIT that
// follows it: each event must still be applied exactly once.
func TestTerminatedConnectionExactlyOnceOnPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	schema := pgtest.FreshSchema(t, "esv2_subadv_")
	s := openPG(t, dsn, schema)
	m := newPGModel(t, dsn, schema)
	killer, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(ctx)
	var mu sync.Mutex // killer's connection
	var kills sync.WaitGroup
	calls := 0
	rng := rand.New(rand.NewPCG(1, 2))
	h := func(ctx context.Context, tx pgx.Tx, events []eventstore.Recorded) error {
		var pid int32
		if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			return err
		}
		if err := m.apply(ctx, tx, events); err != nil {
			return err
		}
		calls++
		switch calls % 5 {
		case 1:
			// In the handler: its next statement fails.
			mu.Lock()
			_, err := killer.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid)
			mu.Unlock()
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `SELECT 1`)
			return err
		case 3:
			// Racing the checkpoint and the COMMIT.
			delay := time.Duration(rng.IntN(1500)) * time.Microsecond
			kills.Add(1)
			go func() {
				defer kills.Done()
				time.Sleep(delay)
				mu.Lock()
				defer mu.Unlock()
				_, _ = killer.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, pid)
			}()
		}
		return nil
	}
	sub, err := subscription.NewTx(s, "killed", h, subscription.WithBatchSize(3),
		subscription.WithRetries(10, time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	var head uint64
	for i := range 60 {
		id := fmt.Sprintf("s-%d", i%5)
		head = appendN(t, s, id, 1, "X")
		want[id]++
	}
	stop := start(t, sub)
	waitFor(t, sub, head)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	kills.Wait()
	got, violations := m.check(t)
	if violations != 0 {
		t.Errorf("%d events applied out of order", violations)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
}
