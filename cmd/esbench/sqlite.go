package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
)

// openSQLite opens the library's store on cfg.path (a new temporary file,
// removed at cleanup, when empty) and the bare driver on the same file.
func openSQLite(ctx context.Context, cfg *config) (*env, error) {
	path := cfg.path
	var remove func() error
	if path == "" {
		dir, err := os.MkdirTemp("", "esbench-")
		if err != nil {
			return nil, err
		}
		path = filepath.Join(dir, "events.db")
		remove = func() error { return os.RemoveAll(dir) }
	}
	e, err := openSQLiteAt(ctx, cfg, path, remove)
	if err != nil && remove != nil {
		err = errors.Join(err, remove())
	}
	if err == nil {
		cfg.logf("sqlite: %s", path)
	}
	return e, err
}

func openSQLiteAt(ctx context.Context, _ *config, path string, remove func() error) (*env, error) {
	store, err := sqlite.Open(ctx, path) // creates the schema the driver writes into
	if err != nil {
		return nil, err
	}
	drv, err := openSQLiteDriver(path)
	if err != nil {
		return nil, errors.Join(err, store.Close())
	}
	return &env{
		name:     "sqlite",
		store:    store,
		drv:      drv,
		subs:     sqliteSubs{store},
		childEnv: []string{"ESBENCH_BACKEND=sqlite", "ESBENCH_PATH=" + path},
		cleanup: func() error {
			err := errors.Join(store.Close(), drv.close())
			if remove != nil {
				err = errors.Join(err, remove())
			}
			return err
		},
	}, nil
}

// sqliteDriver is the bare driver (database/sql over modernc.org/sqlite)
// on the adapter's tables (see adapters/sqlite/schema.go), set up as the
// adapter sets up its connections: one writer connection (WAL,
// synchronous=FULL, BEGIN IMMEDIATE) and four readers.
//
// What its writes keep, as the adapter does: the stream's version is read
// and checked in the write transaction, versions follow on, the streams row
// (version, last time) and the head row (position, count, last time) are
// updated in the same transaction. What they skip: event IDs (the
// benchmark's events have none, so the adapter skips its idempotency
// lookup too), metadata encoding (none), validation, notifying watchers
// (the watch_latency driver side wakes its own watchers), savepoints and
// group commit.
type sqliteDriver struct {
	w, r *sql.DB

	version, upsert, head, readStmt, snap, one *sql.Stmt
	inserts                                    map[int]*sql.Stmt
	args                                       []any
}

func sqliteURI(path, params string) string {
	r := strings.NewReplacer("?", "%3F", "#", "%23", "%", "%25")
	return "file:" + r.Replace(path) + "?" + params
}

func openSQLiteDriver(path string) (_ *sqliteDriver, err error) {
	d := &sqliteDriver{inserts: make(map[int]*sql.Stmt)}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.close())
		}
	}()
	d.w, err = sql.Open("sqlite", sqliteURI(path,
		"_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"))
	if err != nil {
		return nil, err
	}
	d.w.SetMaxOpenConns(1)
	d.w.SetMaxIdleConns(1)
	d.r, err = sql.Open("sqlite", sqliteURI(path, "_pragma=busy_timeout(5000)&_pragma=query_only(1)"))
	if err != nil {
		return nil, err
	}
	d.r.SetMaxOpenConns(4)
	d.r.SetMaxIdleConns(4)
	for _, p := range []struct {
		db  *sql.DB
		dst **sql.Stmt
		sql string
	}{
		{d.w, &d.version, "SELECT version FROM streams WHERE stream_id = ?"},
		{d.w, &d.upsert, `INSERT INTO streams (stream_id, version, last_time) VALUES (?, ?, ?)
			ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_time = excluded.last_time`},
		{d.w, &d.head, "UPDATE head SET position = ?, count = count + ?, last_time = ? WHERE id = 1"},
		{d.r, &d.readStmt, "SELECT position, version, coalesce(event_id, ''), type, data, metadata, time FROM events WHERE stream_id = ? AND version >= ? ORDER BY version"},
		{d.r, &d.snap, "SELECT version, schema, data FROM snapshots WHERE stream_id = ? AND name = ?"},
	} {
		if *p.dst, err = p.db.Prepare(p.sql); err != nil {
			return nil, err
		}
	}
	// The one-row INSERT of appendOne, prepared now: appendOne runs from
	// many goroutines and must not touch the inserts map.
	if d.one, err = d.insert(1); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *sqliteDriver) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{d.version, d.upsert, d.head, d.readStmt, d.snap} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, st := range d.inserts {
		errs = append(errs, st.Close())
	}
	for _, db := range []*sql.DB{d.w, d.r} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// insert returns the prepared multi-row INSERT of n rows. It is not safe
// for concurrent use; only appendBatch (one goroutine) and Open call it.
func (d *sqliteDriver) insert(n int) (*sql.Stmt, error) {
	if st, ok := d.inserts[n]; ok {
		return st, nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO events (stream_id, version, event_id, type, data, metadata, time) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,NULL,?,?,NULL,?)")
	}
	st, err := d.w.Prepare(b.String())
	if err != nil {
		return nil, err
	}
	d.inserts[n] = st
	return st, nil
}

// appendBatch is the driver's bulk insert: one transaction, one multi-row
// INSERT of the whole batch.
func (d *sqliteDriver) appendBatch(ctx context.Context, stream string, version uint64, typ string, data [][]byte) error {
	ins, err := d.insert(len(data))
	if err != nil {
		return err
	}
	now := time.Now().UnixNano()
	args := d.args[:0]
	for i := range data {
		args = append(args, stream, int64(version)+int64(i)+1, typ, data[i], now)
	}
	d.args = args[:0]
	return d.write(ctx, stream, int64(version), len(data), now, func(tx *sql.Tx, _ int64) (sql.Result, error) {
		return tx.StmtContext(ctx, ins).ExecContext(ctx, args...)
	})
}

// appendOne appends one event in its own transaction. The single writer
// connection queues the 64 goroutines of append_concurrent, as SQLite
// would anyway (one writer), without busy-waiting.
func (d *sqliteDriver) appendOne(ctx context.Context, stream string, typ string, data []byte) error {
	now := time.Now().UnixNano()
	return d.write(ctx, stream, -1, 1, now, func(tx *sql.Tx, cur int64) (sql.Result, error) {
		return tx.StmtContext(ctx, d.one).ExecContext(ctx, stream, cur+1, typ, data, now)
	})
}

// write runs one append transaction: read the stream's version and check
// it (unless expected is -1), run ins, then move the streams and head
// rows.
func (d *sqliteDriver) write(ctx context.Context, stream string, expected int64, n int, now int64, ins func(tx *sql.Tx, cur int64) (sql.Result, error)) (err error) {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var cur int64
	if err := tx.StmtContext(ctx, d.version).QueryRowContext(ctx, stream).Scan(&cur); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if expected >= 0 && cur != expected {
		return fmt.Errorf("stream %q at version %d, want %d", stream, cur, expected)
	}
	res, err := ins(tx, cur)
	if err != nil {
		return err
	}
	pos, err := res.LastInsertId()
	if err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, d.upsert).ExecContext(ctx, stream, cur+int64(n), now); err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, d.head).ExecContext(ctx, pos, n, now); err != nil {
		return err
	}
	return tx.Commit()
}

func (d *sqliteDriver) read(ctx context.Context, stream string, from uint64, fn func(uint64, string, []byte) error) (int, error) {
	rows, err := d.readStmt.QueryContext(ctx, stream, int64(from))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var (
		pos, ver, t int64
		id, typ     string
		data, md    []byte
		n           int
	)
	for rows.Next() {
		if err := rows.Scan(&pos, &ver, &id, &typ, &data, &md, &t); err != nil {
			return n, err
		}
		n++
		if err := fn(uint64(ver), typ, data); err != nil {
			return n, err
		}
	}
	return n, rows.Err()
}

func (d *sqliteDriver) snapshot(ctx context.Context, stream, name string) (uint64, string, []byte, error) {
	var v int64
	var schema string
	var data []byte
	err := d.snap.QueryRowContext(ctx, stream, name).Scan(&v, &schema, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil, eventstore.ErrNotFound
	}
	return uint64(v), schema, data, err
}
