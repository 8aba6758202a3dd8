package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/eventstore"
)

// openPostgres creates a fresh schema for the run (dropped at cleanup),
// opens the library's store on it and the bare driver beside it.
func openPostgres(ctx context.Context, cfg *config) (*env, error) {
	schema := "esbench_" + runID()
	store, err := postgres.Open(ctx, cfg.dsn, postgres.WithSchema(schema), postgres.WithMigrate())
	if err != nil {
		return nil, err
	}
	e, err := attachPostgres(ctx, cfg.dsn, schema, store)
	if err != nil {
		return nil, errors.Join(err, store.Close(), dropSchema(cfg.dsn, schema))
	}
	cleanup := e.cleanup
	e.cleanup = func() error { return errors.Join(cleanup(), dropSchema(cfg.dsn, schema)) }
	cfg.logf("postgres: schema %s", schema)
	return e, nil
}

func dropSchema(dsn, schema string) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, conn.Close(ctx)) }()
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

// attachPostgres opens the driver on schema, and the library's store
// unless given one.
func attachPostgres(ctx context.Context, dsn, schema string, store *postgres.Store) (*env, error) {
	if store == nil {
		var err error
		if store, err = postgres.Open(ctx, dsn, postgres.WithSchema(schema)); err != nil {
			return nil, err
		}
	}
	// The driver's pool has pgxpool's default size, as the store's has.
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, errors.Join(err, store.Close())
	}
	d := newPGDriver(pool, schema)
	return &env{
		name:     "postgres",
		store:    store,
		drv:      d,
		subs:     newPGSubs(store, schema),
		childEnv: []string{"ESBENCH_BACKEND=postgres", "ESBENCH_DSN=" + dsn, "ESBENCH_SCHEMA=" + schema},
		cleanup:  func() error { return errors.Join(store.Close(), d.close()) },
	}, nil
}

// pgDriver is the bare driver (pgx over a pgxpool) on the adapter's tables
// (see adapters/postgres/schema.go).
//
// What its writes keep, as the adapter does: positions are in commit
// order, allocated under the adapter's append lock taken exclusively (the
// key derived as the adapter derives it; the adapter's own appends take
// it shared, see adapters/postgres/migrations/0011), past the greater of
// the newest position and the adapter's positions sequence, which its
// allocation moves on in the same statement so that the adapter's next
// appends follow; the stream's version is read from the events'
// (stream_id, version) index and checked under that lock, and a new
// stream is registered in the streams table in the same transaction.
// What they skip: event IDs (none in the benchmark, so the adapter skips
// its lookup too), metadata, validation, NOTIFY (the watch_latency driver
// side wakes its own watchers in process), and group commit.
type pgDriver struct {
	pool    *pgxpool.Pool
	schema  string // the raw name, for pgx.Identifier
	lockKey int64

	qHead, qInsertOne, qStream, qRead, qReadTail, qSnap string
}

func newPGDriver(pool *pgxpool.Pool, schema string) *pgDriver {
	s := pgx.Identifier{schema}.Sanitize()
	h := fnv.New64a()
	h.Write([]byte("esv2:append:" + schema)) // as adapters/postgres advisoryKey("append", schema)
	readSQL := "SELECT position, stream_id, version, event_id, type, data, metadata, occurred_at FROM " + s + ".events WHERE stream_id = $1 AND "
	return &pgDriver{
		pool: pool, schema: schema, lockKey: int64(h.Sum64()),
		// $2 events: the head before them, the sequence moved past them.
		qHead: "SELECT (SELECT setval('" + s + ".positions', greatest(coalesce(max(position), 0), (SELECT last_value FROM " + s + ".positions)) + $2) - $2 FROM " + s + ".events), " +
			"(SELECT coalesce(max(version), 0) FROM " + s + ".events WHERE stream_id = $1)",
		qInsertOne: "INSERT INTO " + s + ".events (position, stream_id, version, event_id, type, data, metadata, occurred_at) VALUES (" +
			"(SELECT setval('" + s + ".positions', greatest(coalesce(max(position), 0), (SELECT last_value FROM " + s + ".positions)) + 1) FROM " + s + ".events), $1, " +
			"(SELECT coalesce(max(version), 0) + 1 FROM " + s + ".events WHERE stream_id = $1), NULL, $2, $3, NULL, now())",
		qStream: "INSERT INTO " + s + ".streams (stream_id, created_at) VALUES ($1, now()) ON CONFLICT (stream_id) DO NOTHING",
		qRead:   readSQL + "version >= $2 ORDER BY version",
		// A read from past the stream's start (the events after a
		// snapshot, a watch's catch-up) is a statement of its own: pgx
		// prepares each text once per connection, and PostgreSQL, after
		// five reads of a whole 1,000,000-event stream, planned qRead
		// generically for good, as a scan of the whole stream (180-260 ms
		// for load_snapshot's 100 events after a snapshot, against 1 ms
		// for the library).
		qReadTail: readSQL + "version > $2 ORDER BY version",
		qSnap:     "SELECT version, schema_tag, data FROM " + s + ".snapshots WHERE stream_id = $1 AND name = $2",
	}
}

// analyze gathers the planner's statistics of the events table (see
// bench.appendBatch).
func (d *pgDriver) analyze(ctx context.Context) error {
	_, err := d.pool.Exec(ctx, "ANALYZE "+pgx.Identifier{d.schema, "events"}.Sanitize())
	return err
}

func (d *pgDriver) close() error {
	d.pool.Close()
	return nil
}

var eventColumns = []string{"position", "stream_id", "version", "event_id", "type", "data", "metadata", "occurred_at"}

// appendBatch is the driver's bulk insert: in one transaction, the lock
// and the head and version look-ups (pipelined), one COPY of the batch,
// the stream's registration when it is new.
func (d *pgDriver) appendBatch(ctx context.Context, stream string, version uint64, typ string, data [][]byte) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	b := &pgx.Batch{}
	b.Queue("SELECT pg_advisory_xact_lock($1)", d.lockKey)
	var head, cur int64
	b.Queue(d.qHead, stream, int64(len(data))).QueryRow(func(r pgx.Row) error { return r.Scan(&head, &cur) })
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if uint64(cur) != version {
		return fmt.Errorf("stream %q at version %d, want %d", stream, cur, version)
	}
	now := time.Now()
	_, err = tx.CopyFrom(ctx, pgx.Identifier{d.schema, "events"}, eventColumns, pgx.CopyFromSlice(len(data), func(i int) ([]any, error) {
		return []any{head + int64(i) + 1, stream, cur + int64(i) + 1, nil, typ, data[i], nil, now}, nil
	}))
	if err != nil {
		return err
	}
	if cur == 0 { // the stream's first events: register it, as the adapter does
		if _, err := tx.Exec(ctx, d.qStream, stream); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// appendOne appends one event in its own transaction: the lock, the
// INSERT (position and version computed in it) and the stream's
// registration (a no-op after its first event), sent
// as one pipelined batch, which PostgreSQL runs as one implicit
// transaction: one round trip per event.
func (d *pgDriver) appendOne(ctx context.Context, stream string, typ string, data []byte) error {
	b := &pgx.Batch{}
	b.Queue("SELECT pg_advisory_xact_lock($1)", d.lockKey)
	b.Queue(d.qInsertOne, stream, typ, data)
	b.Queue(d.qStream, stream)
	return d.pool.SendBatch(ctx, b).Close()
}

func (d *pgDriver) read(ctx context.Context, stream string, from uint64, fn func(uint64, string, []byte) error) (int, error) {
	q, arg := d.qRead, int64(from)
	if from > 1 {
		q, arg = d.qReadTail, int64(from-1)
	}
	rows, err := d.pool.Query(ctx, q, stream, arg)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var (
		pos, ver int64
		sid, typ string
		id       pgtype.Text
		data, md []byte
		at       time.Time
		n        int
	)
	for rows.Next() {
		if err := rows.Scan(&pos, &sid, &ver, &id, &typ, &data, &md, &at); err != nil {
			return n, err
		}
		n++
		if err := fn(uint64(ver), typ, data); err != nil {
			return n, err
		}
	}
	return n, rows.Err()
}

func (d *pgDriver) snapshot(ctx context.Context, stream, name string) (uint64, string, []byte, error) {
	var v int64
	var schema string
	var data []byte
	err := d.pool.QueryRow(ctx, d.qSnap, stream, name).Scan(&v, &schema, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", nil, eventstore.ErrNotFound
	}
	return uint64(v), schema, data, err
}
