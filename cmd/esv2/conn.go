package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esv2/esv2/adapters/postgres"
	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
)

// envDSN names the environment variable --dsn defaults to.
const envDSN = "ESV2_DSN"

// conn is an open store with what the commands need of it.
type conn struct {
	store eventstore.Store
	insp  eventstore.Inspector
	sq    *sqlite.Store   // nil for PostgreSQL
	pg    *postgres.Store // nil for SQLite
	pool  *pgxpool.Pool   // ours to close, PostgreSQL only
}

func (c *conn) Close() error {
	err := c.store.Close()
	if c.pool != nil {
		c.pool.Close()
	}
	return err
}

// openMode says what a command does with the store.
type openMode int

const (
	readOnly      openMode = iota // refuse a missing file; no writes
	readWrite                     // create a missing SQLite file or PostgreSQL schema
	writeExisting                 // write to a store that must exist
	watching                      // read-only, and follow other processes' appends
)

// openErr marks an error of opening the store (exit status 5).
func openErr(err error) error { return &statusError{code: exitOpen, err: err} }

// dsnOrEnv is --dsn, or ESV2_DSN when neither --dsn nor --db is given.
func (a *app) dsnOrEnv() string {
	if a.dsn == "" && a.db == "" {
		return os.Getenv(envDSN)
	}
	return a.dsn
}

// open connects to the store named by --db or --dsn/ESV2_DSN.
func (a *app) open(ctx context.Context, mode openMode) (*conn, error) {
	dsn := a.dsnOrEnv()
	switch {
	case a.db != "" && dsn != "":
		return nil, usageErr("give either --db or --dsn, not both")
	case a.db == "" && dsn == "":
		return nil, usageErr("no store: give --db FILE (SQLite) or --dsn URL (PostgreSQL; or set %s)", envDSN)
	case a.db != "":
		if a.schema != "" {
			return nil, usageErr("--schema is for PostgreSQL (--dsn); SQLite has none")
		}
		return a.openSQLite(ctx, mode)
	}
	return a.openPostgres(ctx, dsn, mode)
}

func (a *app) openSQLite(ctx context.Context, mode openMode) (*conn, error) {
	path := a.db
	if strings.HasPrefix(path, "file:") {
		return nil, usageErr("--db takes a file name, not an SQLite URI: %q", path)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && mode != readWrite:
		// sqlite.Open would create an empty store: for a command that
		// only reads, a typo in the name must not leave a new file.
		return nil, openErr(fmt.Errorf("open %q: no such file (esv2 creates a store only for import)", path))
	case err == nil && fi.IsDir():
		return nil, openErr(fmt.Errorf("open %q: is a directory, not an SQLite file", path))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, openErr(err)
	}
	name := path
	if mode == readOnly || mode == watching {
		// mode=ro: nothing can be written, not even a migration.
		name = "file:" + escapePath(path) + "?mode=ro"
	}
	s, err := sqlite.Open(ctx, name)
	if err != nil {
		if mode != readWrite && errors.Is(err, sqlite.ErrDatabase) && strings.Contains(err.Error(), "read-only") {
			// sqlite.Open writes only to migrate an older schema.
			err = fmt.Errorf("%w (if the store was written by an older esv2, a read-only command cannot upgrade its schema: open it once with the application first)", err)
		}
		return nil, openErr(err)
	}
	return &conn{store: s, insp: s, sq: s}, nil
}

// escapePath turns a file name into the path part of an SQLite URI.
func escapePath(p string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")
	return r.Replace(p)
}

func (a *app) openPostgres(ctx context.Context, dsn string, mode openMode) (*conn, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, openErr(fmt.Errorf("--dsn: %w", err))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	if mode == readOnly || mode == watching {
		// The server then refuses any write of ours; the store's
		// best-effort housekeeping at open fails harmlessly.
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	postgres.JITOff(cfg) // as postgres.Open: reads page through long streams
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, openErr(fmt.Errorf("postgres: %w", err))
	}
	var opts []postgres.Option
	if a.schema != "" {
		opts = append(opts, postgres.WithSchema(a.schema))
	}
	switch mode {
	case readOnly:
		// Nothing to follow: no LISTEN connection, no poll.
		opts = append(opts, postgres.WithoutListen(), postgres.WithoutPoll())
	case writeExisting:
		opts = append(opts, postgres.WithoutListen(), postgres.WithoutPoll())
	case readWrite:
		// import into a new schema sets it up, as sqlite.Open does a
		// new file.
		opts = append(opts, postgres.WithoutListen(), postgres.WithoutPoll(), postgres.WithMigrate())
	}
	s, err := postgres.New(ctx, pool, opts...)
	if err != nil {
		pool.Close()
		return nil, openErr(err)
	}
	return &conn{store: s, insp: s, pg: s, pool: pool}, nil
}
