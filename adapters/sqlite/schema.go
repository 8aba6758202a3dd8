package sqlite

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// schemaVersion is the version of the schema this package creates and
// reads, kept in PRAGMA user_version. Every schema change adds a numbered
// migration file and bumps it.
const schemaVersion = 7

// migrationFiles holds the schema migrations, one numbered file per
// version: migrations/000N_*.sql brings the schema from version N-1 to N
// (the files are named as adapters/postgres names its own).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations[i] brings the schema from version i to version i+1.
var migrations = loadMigrations(migrationFiles)

// loadMigrations reads the numbered migration files. A gap, a duplicate or
// a count other than schemaVersion is a build mistake, caught by every test
// that opens a store: it panics at package init, before any user input is
// involved.
func loadMigrations(fsys fs.FS) []string {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	sort.Strings(names)
	out := make([]string, 0, len(names))
	for i, name := range names {
		n, err := strconv.Atoi(strings.SplitN(path.Base(name), "_", 2)[0])
		if err != nil || n != i+1 {
			panic(fmt.Sprintf("sqlite: migration %s: want number %d", name, i+1))
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			panic(err)
		}
		out = append(out, string(b))
	}
	if len(out) != schemaVersion {
		panic(fmt.Sprintf("sqlite: %d migration files for schema version %d", len(out), schemaVersion))
	}
	return out
}

// migrate creates the schema in a new database, brings an older one up to
// schemaVersion, and refuses one written by a newer version of this
// package. It runs in one write transaction so that processes opening a
// file at once do not race: the first migrates, the others find it done.
func (d *drv) migrate(ctx context.Context) (err error) {
	c := d.wconn
	// The common case, an up-to-date schema, needs no write lock: opening
	// then neither waits for another process's writer nor fails on a
	// read-only database (mode=ro).
	v, err := d.checkSchema(ctx)
	if err != nil || v == schemaVersion {
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
	// Another process may have migrated meanwhile.
	if v, err = d.checkSchema(ctx); err != nil {
		return err
	}
	if v < schemaVersion {
		// Version 0 is a new database (or one created before versions
		// were kept, whose tables 0001's IF NOT EXISTS leaves as they are).
		for _, m := range migrations[v:] {
			if _, err := c.ExecContext(ctx, m); err != nil {
				return openError(d.path, err)
			}
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

// checkSchema returns the database's schema version, and refuses a newer
// one than this package knows.
func (d *drv) checkSchema(ctx context.Context) (int, error) {
	var v int
	if err := d.wconn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, openError(d.path, err)
	}
	if v < 0 {
		// Not a version this package ever wrote: some other program's.
		return 0, fmt.Errorf("sqlite: open %q: %w: the database has schema version %d, not one of esv2's",
			d.displayPath(), ErrSchemaVersion, v)
	}
	if v > schemaVersion {
		return 0, fmt.Errorf("sqlite: open %q: %w: the database has schema version %d, this package knows up to %d (upgrade esv2)",
			d.displayPath(), ErrSchemaVersion, v, schemaVersion)
	}
	return v, nil
}
