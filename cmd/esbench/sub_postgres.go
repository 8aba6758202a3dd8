package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// pgSubQueries are the subscription operations' statements on the run's
// schema s (sanitized).
func pgSubQueries(s string) (tables, insert, checkpoint string) {
	return "CREATE TABLE IF NOT EXISTS " + s + ".esbench_rows (name text NOT NULL, position bigint NOT NULL, stream_id text NOT NULL, version bigint NOT NULL, PRIMARY KEY (name, position));" +
			"CREATE TABLE IF NOT EXISTS " + s + ".esbench_checkpoints (name text PRIMARY KEY, position bigint NOT NULL)",
		"INSERT INTO " + s + ".esbench_rows (name, position, stream_id, version) VALUES ($1, $2, $3, $4)",
		"INSERT INTO " + s + ".esbench_checkpoints (name, position) VALUES ($1, $2)" +
			" ON CONFLICT (name) DO UPDATE SET position = greatest(" + s + ".esbench_checkpoints.position, excluded.position)"
}

// pgInsertRows is the transactional handler of sub_tx, the library's and
// the driver's alike: one INSERT per event, sent in one pipelined batch.
func pgInsertRows(ctx context.Context, tx pgx.Tx, insert, name string, rows []row) error {
	b := &pgx.Batch{}
	for _, r := range rows {
		b.Queue(insert, name, int64(r.pos), r.stream, int64(r.version))
	}
	return tx.SendBatch(ctx, b).Close()
}

func (d *pgDriver) subSetup(ctx context.Context) error {
	tables, _, _ := pgSubQueries(pgx.Identifier{d.schema}.Sanitize())
	_, err := d.pool.Exec(ctx, tables)
	return err
}

func (d *pgDriver) readAll(ctx context.Context, after uint64, limit int, fn func(pos uint64, stream string, version uint64, data []byte) error) (int, error) {
	q := "SELECT position, stream_id, version, event_id, type, data, metadata, occurred_at FROM " +
		pgx.Identifier{d.schema}.Sanitize() + ".events WHERE position > $1 ORDER BY position"
	args := []any{int64(after)}
	if limit > 0 {
		q += " LIMIT $2"
		args = append(args, limit)
	}
	rows, err := d.pool.Query(ctx, q, args...)
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
		if err := fn(uint64(pos), sid, uint64(ver), data); err != nil {
			return n, err
		}
	}
	return n, rows.Err()
}

// txBatch is the bare transactional consumer's commit: in one READ
// COMMITTED transaction (as the adapter's), the handler's rows and the
// checkpoint.
func (d *pgDriver) txBatch(ctx context.Context, name string, rows []row, checkpoint uint64) error {
	_, insert, cp := pgSubQueries(pgx.Identifier{d.schema}.Sanitize())
	tx, err := d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := pgInsertRows(ctx, tx, insert, name, rows); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, cp, name, int64(checkpoint)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (d *pgDriver) checkpoint(ctx context.Context, name string, pos uint64) error {
	_, _, cp := pgSubQueries(pgx.Identifier{d.schema}.Sanitize())
	_, err := d.pool.Exec(ctx, cp, name, int64(pos))
	return err
}

// bulkLoad writes n events of type typ and data data, spread round robin
// over streams new streams named prefix0, prefix1, ..., in one
// transaction (one COPY) under the adapter's append lock, and returns the
// positions before the first and of the last. It is the backlog of
// sub_group, written the fast way: what is measured is its consumption.
func (d *pgDriver) bulkLoad(ctx context.Context, prefix string, streams, n int, typ string, data []byte) (before, last uint64, err error) {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", d.lockKey); err != nil {
		return 0, 0, err
	}
	s := pgx.Identifier{d.schema}.Sanitize()
	var head int64
	// As the bare driver's appends allocate (see pgDriver).
	if err := tx.QueryRow(ctx, "SELECT setval('"+s+".positions', greatest(coalesce(max(position), 0), (SELECT last_value FROM "+s+".positions)) + $1) - $1 FROM "+s+".events", int64(n)).Scan(&head); err != nil {
		return 0, 0, err
	}
	now := time.Now()
	names := make([]string, streams)
	for i := range names {
		names[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{d.schema, "events"}, eventColumns, pgx.CopyFromSlice(n, func(i int) ([]any, error) {
		return []any{head + int64(i) + 1, names[i%streams], int64(i/streams) + 1, nil, typ, data, nil, now}, nil
	}))
	if err != nil {
		return 0, 0, err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+s+".streams (stream_id, created_at) SELECT unnest($1::text[]), now()", names); err != nil {
		return 0, 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, err
	}
	return uint64(head), uint64(head) + uint64(n), nil
}

// pgSubs makes the library's subscriptions on a *postgres.Store.
type pgSubs struct {
	s      *postgres.Store
	insert string
}

func newPGSubs(s *postgres.Store, schema string) pgSubs {
	_, insert, _ := pgSubQueries(pgx.Identifier{schema}.Sanitize())
	return pgSubs{s: s, insert: insert}
}

func (x pgSubs) newSub(name string, h subscription.Handler, opts ...subscription.Option) (*subscription.Subscription, error) {
	return subscription.New(x.s, name, h, opts...)
}

func (x pgSubs) newTxSub(name string, opts ...subscription.Option) (*subscription.Subscription, error) {
	var rows []row
	return subscription.NewTx(x.s, name, func(ctx context.Context, tx pgx.Tx, events []eventstore.Recorded) error {
		rows = toRows(rows[:0], events)
		return pgInsertRows(ctx, tx, x.insert, name, rows)
	}, opts...)
}

func (x pgSubs) lowest(ctx context.Context, name string) (uint64, error) {
	return lowestPosition(ctx, x.s, name)
}
