package sqlite

import (
	"context"
	"fmt"
)

// schemaVersion is the version of the schema this package creates and
// reads, kept in PRAGMA user_version. Bump it with every schema change and
// migrate older versions in migrate.
const schemaVersion = 1

// schema creates the tables of schemaVersion. Positions use AUTOINCREMENT
// so that a position is never reused, even if rows were ever deleted by
// hand; the single writer makes rowid order commit order.
const schema = `
CREATE TABLE IF NOT EXISTS events (
	position  INTEGER PRIMARY KEY AUTOINCREMENT,
	stream_id TEXT    NOT NULL,
	version   INTEGER NOT NULL,
	event_id  TEXT,
	type      TEXT    NOT NULL,
	data      BLOB,
	metadata  TEXT,
	time      INTEGER NOT NULL,
	UNIQUE (stream_id, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events (event_id) WHERE event_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS streams (
	stream_id TEXT    PRIMARY KEY,
	version   INTEGER NOT NULL,
	last_time INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS head (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	position  INTEGER NOT NULL,
	count     INTEGER NOT NULL,
	last_time INTEGER NOT NULL
);
INSERT OR IGNORE INTO head (id, position, count, last_time) VALUES (1, 0, 0, 0);
CREATE TABLE IF NOT EXISTS snapshots (
	stream_id TEXT    NOT NULL,
	name      TEXT    NOT NULL,
	version   INTEGER NOT NULL,
	schema    TEXT    NOT NULL,
	data      BLOB,
	time      INTEGER NOT NULL,
	PRIMARY KEY (stream_id, name)
) WITHOUT ROWID;
`

// migrate creates the schema in a new database and refuses one written by
// a newer version of this package. It runs in one write transaction so
// that processes opening a new file at once do not race.
func (d *drv) migrate(ctx context.Context) (err error) {
	c := d.wconn
	// The common case, an up-to-date schema, needs no write lock: opening
	// then neither waits for another process's writer nor fails on a
	// read-only database (mode=ro).
	done, err := d.checkSchema(ctx)
	if err != nil || done {
		return err
	}
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return openError(d.path, err)
	}
	defer func() {
		if err != nil {
			_, _ = c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	// Another process may have created the schema meanwhile.
	if done, err = d.checkSchema(ctx); err != nil {
		return err
	}
	if !done {
		if _, err := c.ExecContext(ctx, schema); err != nil {
			return openError(d.path, err)
		}
		if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
			return openError(d.path, err)
		}
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		return openError(d.path, err)
	}
	return nil
}

// checkSchema reports whether the database has this package's schema, and
// refuses a newer one.
func (d *drv) checkSchema(ctx context.Context) (bool, error) {
	var v int
	if err := d.wconn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return false, openError(d.path, err)
	}
	if v > schemaVersion {
		return false, fmt.Errorf("sqlite: open %q: %w: the database has schema version %d, this package knows up to %d (upgrade esv2)",
			d.displayPath(), ErrSchemaVersion, v, schemaVersion)
	}
	return v == schemaVersion, nil
}
