package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/validate"
)

// SchemaVersion is the version of the database schema this package writes
// and reads.
const SchemaVersion = 12

// ErrSchemaVersion reports a database schema this package cannot use: not
// created yet, older than SchemaVersion without WithMigrate, or newer than
// SchemaVersion. The error is a *SchemaVersionError.
var ErrSchemaVersion = errors.New("postgres: unusable schema version")

// SchemaVersionError says which schema version was found. It unwraps to
// ErrSchemaVersion.
type SchemaVersionError struct {
	Schema    string // the PostgreSQL schema
	Found     int    // version found, 0 when the schema is not set up
	Supported int    // SchemaVersion
}

// Error says what was found and what to do.
func (e *SchemaVersionError) Error() string {
	switch {
	case e.Found > e.Supported:
		return fmt.Sprintf("postgres: schema %q is at version %d, newer than version %d supported by this build: upgrade esv2",
			e.Schema, e.Found, e.Supported)
	case e.Found == 0:
		return fmt.Sprintf("postgres: schema %q is not set up: run postgres.Migrate or open with WithMigrate", e.Schema)
	default:
		return fmt.Sprintf("postgres: schema %q is at version %d, older than version %d: run postgres.Migrate or open with WithMigrate",
			e.Schema, e.Found, e.Supported)
	}
}

// Unwrap returns ErrSchemaVersion.
func (e *SchemaVersionError) Unwrap() error { return ErrSchemaVersion }

// migrationFiles holds the schema migrations, one numbered file per
// version: migrations/000N_*.sql brings the schema from version N-1 to N.
// "{schema}" in them is replaced by the sanitized schema name.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations[i] brings the schema from version i to version i+1, read
// from migrationFiles in the order of their numbers.
var migrations = loadMigrations(migrationFiles)

// loadMigrations reads the numbered migration files. A gap or a duplicate
// in the numbers is a build mistake, caught by every test that opens a
// store (and by TestMigrationFiles): it panics at package init, before
// any user input is involved.
func loadMigrations(fsys fs.FS) []string {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	sort.Strings(names)
	out := make([]string, 0, len(names))
	for i, name := range names {
		base := path.Base(name)
		n, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil || n != i+1 {
			panic(fmt.Sprintf("postgres: migration %s: want number %d", name, i+1))
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			panic(err)
		}
		out = append(out, string(b))
	}
	return out
}

// Migrate creates the store's schema or brings it to SchemaVersion; see
// the package function Migrate. Stores refuse to open on a schema that
// is not at SchemaVersion unless WithMigrate is given, so this method
// matters only for a store that must upgrade while running.
func (s *Store) Migrate(ctx context.Context) error {
	if s.d.closed.Load() {
		return eventstore.ErrClosed
	}
	return migrate(ctx, s.d.pool, s.d.cfg.schema)
}

// Migrate creates the schema named by WithSchema (default DefaultSchema)
// in the database of pool, or brings it to SchemaVersion, without opening
// a store: for a deployment step run with a role allowed to create
// tables, while the application opens its stores without WithMigrate.
// Other options are checked and otherwise ignored.
//
// It is safe to run from several processes (or stores) at once: they
// serialise on a session-level advisory lock taken before the migration's
// transaction, and only the first one does the work.
// A schema at a newer version is refused with a *SchemaVersionError.
func Migrate(ctx context.Context, pool *pgxpool.Pool, opts ...Option) error {
	if pool == nil {
		return &eventstore.ValidationError{Field: "pool", Index: -1, Reason: "nil"}
	}
	cfg, err := applyOptions(opts)
	if err != nil {
		return err
	}
	return migrate(ctx, pool, cfg.schema)
}

func migrate(ctx context.Context, pool *pgxpool.Pool, name string) error {
	if err := validate.Context(ctx); err != nil {
		return err
	}
	schema := pgx.Identifier{name}.Sanitize()
	// Up to date (the usual case): done without DDL, which the
	// application's role may not be allowed to run.
	found, err := readVersion(ctx, pool, schema)
	switch {
	case err != nil:
		return err
	case found > SchemaVersion:
		return &SchemaVersionError{Schema: name, Found: found, Supported: SchemaVersion}
	case found == SchemaVersion:
		return nil
	}
	// Serialise migrations with a session-level advisory lock taken
	// before the transaction begins: a transaction that waited for the
	// lock inside itself would keep the snapshot (and, at any isolation
	// level, the catalog state) from before the wait, and re-run DDL the
	// instance ahead of it had committed (a duplicate-key error on
	// pg_namespace, or "relation already exists" at repeatable read).
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return translateError(err, opErr("migrate"))
	}
	defer conn.Release()
	key := advisoryKey("migrate", name)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return translateError(err, opErr("migrate: lock"))
	}
	defer func() {
		uctx := context.WithoutCancel(ctx)
		if _, err := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			// Never hand a connection that may still hold the lock back
			// to the pool: closing it ends the session and the lock. Its
			// error adds nothing: a connection whose Close fails is closed
			// (pgx drops the socket) and the server ends the session.
			_ = conn.Conn().Close(uctx)
		}
	}()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return translateError(err, opErr("migrate"))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	stmts := []string{
		"CREATE SCHEMA IF NOT EXISTS " + schema,
		"CREATE TABLE IF NOT EXISTS " + schema + ".schema_version (version int NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
	}
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return translateError(err, opErr("migrate: create schema"))
		}
	}
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+schema+".schema_version").Scan(&found); err != nil {
		return translateError(err, opErr("migrate: read version"))
	}
	if found > SchemaVersion {
		return &SchemaVersionError{Schema: name, Found: found, Supported: SchemaVersion}
	}
	if found == SchemaVersion {
		return nil // nothing to do; the deferred unlock releases the lock
	}
	for v := found; v < SchemaVersion; v++ {
		sql := strings.ReplaceAll(migrations[v], "{schema}", schema)
		if _, err := tx.Exec(ctx, sql); err != nil {
			return translateError(err, opErr(fmt.Sprintf("migrate to version %d", v+1)))
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+schema+".schema_version (version) VALUES ($1)", v+1); err != nil {
			return translateError(err, opErr("migrate: record version"))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return translateError(err, opErr("migrate: commit"))
	}
	return nil
}

// checkVersion refuses a schema that is missing, older or newer than
// SchemaVersion.
func (d *pgDriver) checkVersion(ctx context.Context) error {
	found, err := readVersion(ctx, d.pool, d.schema)
	if err != nil {
		return err
	}
	if found != SchemaVersion {
		return &SchemaVersionError{Schema: d.cfg.schema, Found: found, Supported: SchemaVersion}
	}
	return nil
}

// readVersion returns the version of a schema, 0 when it is not set up.
func readVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, schema string) (int, error) {
	var found int
	err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+schema+".schema_version").Scan(&found)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000") { // undefined table / schema
		return 0, nil
	}
	if err != nil {
		return 0, translateError(err, opErr("read schema version"))
	}
	return found, nil
}

// queries holds the SQL texts that do not depend on the call, built once
// per store. pgx prepares and caches each per connection.
type queries struct {
	head          string
	setHead       string
	appendCall    string
	notifyCall    string
	streamHead    string
	streamVersion string
	allHead       string
	saveSnap      string
	fenceOutcome  string
	readOutcome   string
	retireOutcome string
	dropOutcomes  string
	loadSnap      string
	findEvent     string
	cols          string
	// pageCols holds, for each eventstore.Fields value a read omits,
	// its page query's columns and event size (readColumns), built once.
	pageCols [eventstore.AllFields + 1]struct{ cols, size string }
}

func buildQueries(schema string) queries {
	var pageCols [eventstore.AllFields + 1]struct{ cols, size string }
	for omit := range pageCols {
		pageCols[omit].cols, pageCols[omit].size = readColumns(eventstore.Fields(omit))
	}
	cols := pageCols[0].cols
	return queries{
		pageCols: pageCols,
		// The head is the last position no event can still commit below
		// (migrations/0011): appends commit side by side. $1 is the
		// append lock's key.
		head: "SELECT " + schema + ".safe_head($1)",
		// The same, also left in the transaction's safeHeadSetting for
		// the page query after it (see fetchSafe).
		setHead: "SELECT set_config('" + safeHeadSetting + "', " + schema + ".safe_head($1)::text, true)::int8",
		// The writer's call leaves the NOTIFY to notifyCall (see
		// migrations/0011); $17 says whether the call sends it itself.
		appendCall: "SELECT o_status, o_version, o_position, o_dup_index, o_dup_version, o_other_id, o_other_stream FROM " + schema + ".append_batch($17, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
		// The announcer's NOTIFY of position $2 on channel $1, in a
		// transaction of its own that does not wait for its WAL flush.
		notifyCall: "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)",
		// A stream's version is its last event's, or the one its row
		// keeps when that event was removed (migrations/0007).
		streamHead: "SELECT greatest(coalesce(e.version, 0), coalesce(st.last_version, 0)), coalesce(e.position, 0), e.occurred_at, " +
			"coalesce(st.first_version, 1), coalesce(st.deleted, false) FROM (SELECT $1::text AS id) x " +
			"LEFT JOIN " + schema + ".streams st ON st.stream_id = x.id " +
			"LEFT JOIN LATERAL (SELECT version, position, occurred_at FROM " + schema + ".events WHERE stream_id = x.id ORDER BY version DESC LIMIT 1) e ON true",
		streamVersion: "SELECT greatest(coalesce((SELECT max(version) FROM " + schema + ".events WHERE stream_id = $1), 0), " +
			"coalesce((SELECT last_version FROM " + schema + ".streams WHERE stream_id = $1), 0))",
		// The store's head, count (see migrations/0011) and newest time.
		allHead: "SELECT s.h, hw.counted + coalesce((SELECT sum(o.events) FROM " + schema + ".append_outcomes o), 0) - hw.removed, " +
			"(SELECT occurred_at FROM " + schema + ".events WHERE position <= s.h ORDER BY position DESC LIMIT 1) " +
			"FROM (SELECT " + schema + ".safe_head($1) AS h) s, " + schema + ".high_water hw",
		// See lookupOutcome and migrations/0003.
		fenceOutcome: "INSERT INTO " + schema + ".append_outcomes AS o (writer_id, token, updated_at) VALUES ($1, $2, now()) " +
			"ON CONFLICT (writer_id) DO UPDATE SET token = excluded.token, statuses = NULL, versions = NULL, positions = NULL, extras = NULL, updated_at = excluded.updated_at " +
			"WHERE o.token < excluded.token",
		readOutcome: "SELECT token, statuses, versions, positions, to_jsonb(extras)::text FROM " + schema + ".append_outcomes WHERE writer_id = $1",
		// Close fences its writer's row for good (the largest token): a
		// group of the writer still alive on a server session the client
		// gave up on can then never commit. Deleting the row instead
		// would let such a group insert a fresh one and commit after its
		// caller was told ErrClosed (found in review).
		retireOutcome: "INSERT INTO " + schema + ".append_outcomes AS o (writer_id, token, updated_at) VALUES ($1, 9223372036854775807, now()) " +
			"ON CONFLICT (writer_id) DO UPDATE SET token = excluded.token, statuses = NULL, versions = NULL, positions = NULL, extras = NULL, updated_at = excluded.updated_at",
		// Rows untouched for a day (retired, or of stores that did not
		// close: a killed process) are deleted by the next Open. A
		// look-up runs within cfg.resolveTimeout of its group, and no
		// server session outlives a day waiting for the append lock
		// unnoticed, so no row in use is that old.
		// The events they counted move to high_water.counted in the same
		// statement, so that the store's count stays (migrations/0011).
		dropOutcomes: "WITH gone AS (DELETE FROM " + schema + ".append_outcomes WHERE updated_at < now() - interval '1 day' RETURNING events) " +
			"UPDATE " + schema + ".high_water SET counted = counted + (SELECT coalesce(sum(events), 0) FROM gone) WHERE EXISTS (SELECT 1 FROM gone)",
		// The head a snapshot may not pass ($6: the all-streams log's
		// last position, else the stream's version) is read by the
		// INSERT's own statement, and it returns the head so that a
		// refusal can say so (issue 9 item 7). Versions only grow, so a
		// head seen by the statement cannot be undone by a concurrent
		// change. A deleted stream takes no snapshot (d): its streams row
		// is read FOR SHARE, so that a deletion committing meanwhile is
		// waited for and seen (READ COMMITTED re-reads a locked row's
		// latest version), and a deletion that comes after waits for the
		// save to commit (it updates that row first) and then removes
		// the snapshot with the others.
		saveSnap: "WITH head AS (SELECT CASE WHEN $6::boolean THEN (SELECT greatest(coalesce(max(position), 0), (SELECT position FROM " + schema + ".high_water)) FROM " + schema + ".events) " +
			"ELSE greatest(coalesce((SELECT max(version) FROM " + schema + ".events WHERE stream_id = $1), 0), " +
			"coalesce((SELECT last_version FROM " + schema + ".streams WHERE stream_id = $1), 0)) END AS v, " +
			"NOT $6::boolean AND coalesce((SELECT deleted FROM " + schema + ".streams WHERE stream_id = $1 FOR SHARE), false) AS d), " +
			"saved AS (INSERT INTO " + schema + ".snapshots AS sn (stream_id, name, version, schema_tag, data, saved_at) " +
			"SELECT $1, $2, $3, $4, $5, now() FROM head WHERE head.v >= $3 AND NOT head.d " +
			"ON CONFLICT (stream_id, name) DO UPDATE SET version = excluded.version, schema_tag = excluded.schema_tag, data = excluded.data, saved_at = excluded.saved_at " +
			"WHERE sn.version <= excluded.version) " +
			"SELECT v, d FROM head",
		loadSnap: "SELECT version, schema_tag, data, saved_at FROM " + schema + ".snapshots WHERE stream_id = $1 AND name = $2",
		cols:     cols,
		// "IS NOT NULL" lets the partial unique index on event_id serve
		// a generic plan too.
		findEvent: "SELECT " + cols + " FROM " + schema + ".events WHERE event_id = $1 AND event_id IS NOT NULL",
	}
}
