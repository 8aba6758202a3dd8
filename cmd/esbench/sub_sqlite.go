package main

import (
	"context"
	"database/sql"
	"errors"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

// The tables of the subscription operations, beside the adapter's:
// esbench_rows is the read model both transactional consumers write (one
// row per event, name telling the consumers apart), esbench_checkpoints
// the bare consumers' checkpoints.
const (
	sqliteSubTables = `CREATE TABLE IF NOT EXISTS esbench_rows (
	name TEXT NOT NULL, position INTEGER NOT NULL, stream_id TEXT NOT NULL, version INTEGER NOT NULL,
	PRIMARY KEY (name, position)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS esbench_checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;`
	sqliteRowInsert = "INSERT INTO esbench_rows (name, position, stream_id, version) VALUES (?, ?, ?, ?)"
)

// sqliteInsertRows is the transactional handler of sub_tx, the library's
// and the driver's alike: one prepared INSERT, run once per event, in tx.
func sqliteInsertRows(ctx context.Context, tx *sql.Tx, name string, rows []row) error {
	st, err := tx.PrepareContext(ctx, sqliteRowInsert)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := st.ExecContext(ctx, name, int64(r.pos), r.stream, int64(r.version)); err != nil {
			return errors.Join(err, st.Close())
		}
	}
	return st.Close()
}

func (d *sqliteDriver) subSetup(ctx context.Context) error {
	_, err := d.w.ExecContext(ctx, sqliteSubTables)
	return err
}

func (d *sqliteDriver) readAll(ctx context.Context, after uint64, limit int, fn func(pos uint64, stream string, version uint64, data []byte) error) (int, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := d.r.QueryContext(ctx, "SELECT position, stream_id, version, coalesce(event_id, ''), type, data, metadata, time FROM events WHERE position > ? ORDER BY position LIMIT ?", int64(after), limit)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var (
		pos, ver, t  int64
		sid, id, typ string
		data, md     []byte
		n            int
	)
	for rows.Next() {
		if err := rows.Scan(&pos, &sid, &ver, &id, &typ, &data, &md, &t); err != nil {
			return n, err
		}
		n++
		if err := fn(uint64(pos), sid, uint64(ver), data); err != nil {
			return n, err
		}
	}
	return n, rows.Err()
}

// txBatch is the bare transactional consumer's commit: in one write
// transaction, the handler's rows and the checkpoint.
func (d *sqliteDriver) txBatch(ctx context.Context, name string, rows []row, checkpoint uint64) (err error) {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err := sqliteInsertRows(ctx, tx, name, rows); err != nil {
		return err
	}
	if err := sqliteCheckpoint(ctx, tx, name, checkpoint); err != nil {
		return err
	}
	return tx.Commit()
}

func sqliteCheckpoint(ctx context.Context, tx interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, name string, pos uint64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO esbench_checkpoints (name, position) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET position = max(position, excluded.position)`, name, int64(pos))
	return err
}

func (d *sqliteDriver) checkpoint(ctx context.Context, name string, pos uint64) error {
	return sqliteCheckpoint(ctx, d.w, name, pos)
}

// sqliteSubs makes the library's subscriptions on a *sqlite.Store.
type sqliteSubs struct{ s *sqlite.Store }

func (x sqliteSubs) newSub(name string, h subscription.Handler, opts ...subscription.Option) (*subscription.Subscription, error) {
	return subscription.New(x.s, name, h, opts...)
}

func (x sqliteSubs) newTxSub(name string, opts ...subscription.Option) (*subscription.Subscription, error) {
	var rows []row
	return subscription.NewTx(x.s, name, func(ctx context.Context, tx *sql.Tx, events []eventstore.Recorded) error {
		rows = toRows(rows[:0], events)
		return sqliteInsertRows(ctx, tx, name, rows)
	}, opts...)
}

func (x sqliteSubs) lowest(ctx context.Context, name string) (uint64, error) {
	return lowestPosition(ctx, x.s, name)
}
