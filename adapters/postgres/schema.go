package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esv2/esv2/eventstore"
)

// SchemaVersion is the version of the database schema this package writes
// and reads.
const SchemaVersion = 2

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

// migrations[i] brings the schema from version i to version i+1. "{schema}" is
// replaced by the sanitized schema name.
var migrations = withV2([]string{
	// 1: events, streams, snapshots and the append function.
	`
-- streams lists the streams, one row written at a stream's first event.
-- Versions are read from the events' (stream_id, version) index, so that
-- appending to an existing stream writes its events and nothing else.
CREATE TABLE {schema}.streams (
	stream_id  text        NOT NULL,
	created_at timestamptz NOT NULL,
	CONSTRAINT streams_pkey PRIMARY KEY (stream_id)
);

CREATE TABLE {schema}.events (
	position    bigint      NOT NULL,
	stream_id   text        NOT NULL,
	version     bigint      NOT NULL,
	event_id    text,
	type        text        NOT NULL,
	data        bytea       NOT NULL,
	metadata    jsonb,
	occurred_at timestamptz NOT NULL,
	CONSTRAINT events_pkey PRIMARY KEY (position),
	CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);
-- Partial: events without an ID cost no entry.
CREATE UNIQUE INDEX events_event_id_key ON {schema}.events (event_id) WHERE event_id IS NOT NULL;

CREATE TABLE {schema}.snapshots (
	stream_id  text        NOT NULL,
	name       text        NOT NULL,
	version    bigint      NOT NULL,
	schema_tag text        NOT NULL,
	data       bytea       NOT NULL,
	saved_at   timestamptz NOT NULL,
	CONSTRAINT snapshots_pkey PRIMARY KEY (stream_id, name)
);

-- append_batch appends the requests of one group commit in one statement.
-- Request i targets stream d_stream[r_sidx[i]] (d_stream lists the group's
-- streams once each) with expectation r_expected[i] (-1 any, -2 stream
-- exists, >= 0 exact) and owns the next r_count[i] elements of the e_*
-- arrays (e_req[j] is the request of event j). No event ID appears in two
-- requests of a group (the writer splits groups so). p_ids says whether
-- any event has an ID.
--
-- It returns one row per request, in order: o_status 0 = ok, 1 = version
-- conflict (o_version = actual), 2 = an event ID stored in another stream
-- (o_other_id, o_other_stream); o_dup_index / o_dup_version list the
-- events already stored in the same stream (0-based index in the request)
-- and the versions they have; o_position is the position of the request's
-- last new event, 0 if none.
--
-- The requests are checked in order against the state the previous ones
-- leave, in memory; then one INSERT stores every accepted event and one
-- more registers new streams: a fixed number of statements per group,
-- none per request or per event.
--
-- Positions are allocated as max(position)+1 while holding the advisory
-- lock p_lock until commit, so they are gapless and in commit order.
CREATE FUNCTION {schema}.append_batch(
	p_lock bigint, p_channel text, p_ids bool, d_stream text[],
	r_sidx int[], r_expected bigint[], r_count int[],
	e_req int[], e_id text[], e_type text[], e_data bytea[], e_meta jsonb[], e_time timestamptz[])
RETURNS TABLE (o_status int, o_version bigint, o_position bigint,
	o_dup_index int[], o_dup_version bigint[], o_other_id text, o_other_stream text)
LANGUAGE plpgsql AS $fn$
DECLARE
	v_start  bigint;
	v_head   bigint;
	d_ver    bigint[];
	d_created bool[];
	s_ord    bigint[] := '{}';
	s_stream text[] := '{}';
	s_ver    bigint[] := '{}';
	v_ns     int;
	v_p      int := 1;
	r_ok     bool[];
	r_base   bigint[];
	v_skip   bool[]; -- v_skip[j]: event j is stored already (NULL: none is)
	v_off    int := 0;
	v_n      int;
	v_k      int;
	v_si     int;
	v_cur    bigint;
	v_exp    bigint;
	v_now    timestamptz := now();
BEGIN
	PERFORM pg_advisory_xact_lock(p_lock);
	SELECT coalesce(max(ev.position), 0) INTO v_start FROM {schema}.events ev;
	v_head := v_start;
	SELECT array_agg(coalesce((SELECT max(ev.version) FROM {schema}.events ev WHERE ev.stream_id = d.s), 0) ORDER BY d.k)
	INTO d_ver
	FROM unnest(d_stream) WITH ORDINALITY AS d(s, k);
	d_created := array_fill(false, ARRAY[cardinality(d_stream)]);
	IF p_ids THEN
		SELECT coalesce(array_agg(x.ord ORDER BY x.ord), '{}'),
		       coalesce(array_agg(ev.stream_id ORDER BY x.ord), '{}'),
		       coalesce(array_agg(ev.version ORDER BY x.ord), '{}')
		INTO s_ord, s_stream, s_ver
		FROM unnest(e_id) WITH ORDINALITY AS x(id, ord)
		JOIN {schema}.events ev ON ev.event_id = x.id
		WHERE x.id IS NOT NULL AND ev.event_id IS NOT NULL; -- lets the partial index serve
	END IF;
	v_ns := cardinality(s_ord);
	r_ok := array_fill(false, ARRAY[cardinality(r_sidx)]);
	r_base := array_fill(0::bigint, ARRAY[cardinality(r_sidx)]);
	FOR i IN 1 .. cardinality(r_sidx) LOOP
		v_n := r_count[i];
		v_si := r_sidx[i];
		v_cur := d_ver[v_si];
		o_position := 0;
		o_dup_index := '{}';
		o_dup_version := '{}';
		o_other_id := NULL;
		o_other_stream := NULL;
		-- The stored IDs among this request's events (s_ord is sorted).
		WHILE v_p <= v_ns AND s_ord[v_p] <= v_off + v_n LOOP
			IF s_stream[v_p] = d_stream[v_si] THEN
				o_dup_index := o_dup_index || (s_ord[v_p] - v_off - 1)::int;
				o_dup_version := o_dup_version || s_ver[v_p];
			ELSIF o_other_id IS NULL THEN
				o_other_id := e_id[s_ord[v_p]];
				o_other_stream := s_stream[v_p];
			END IF;
			v_p := v_p + 1;
		END LOOP;
		v_exp := r_expected[i];
		IF o_other_id IS NOT NULL THEN
			o_status := 2;
			o_dup_index := '{}';
			o_dup_version := '{}';
		ELSIF v_n > 0 AND cardinality(o_dup_index) = v_n THEN
			o_status := 0; -- a retry of a stored batch: ok whatever the expectation
		ELSIF NOT (v_exp = -1 OR (v_exp = -2 AND v_cur > 0) OR v_exp = v_cur) THEN
			o_status := 1;
			o_dup_index := '{}';
			o_dup_version := '{}';
		ELSE
			o_status := 0;
			v_k := v_n - cardinality(o_dup_index);
			IF v_k > 0 THEN
				r_ok[i] := true;
				r_base[i] := v_cur;
				IF cardinality(o_dup_index) > 0 AND v_skip IS NULL THEN
					v_skip := array_fill(false, ARRAY[cardinality(e_req)]);
				END IF;
				FOR j IN 1 .. cardinality(o_dup_index) LOOP
					v_skip[v_off + 1 + o_dup_index[j]] := true;
				END LOOP;
				IF v_cur = 0 THEN
					d_created[v_si] := true;
				END IF;
				v_cur := v_cur + v_k;
				v_head := v_head + v_k;
				d_ver[v_si] := v_cur;
				o_position := v_head;
			END IF;
		END IF;
		o_version := v_cur;
		v_off := v_off + v_n;
		RETURN NEXT;
	END LOOP;
	IF v_head > v_start THEN
		INSERT INTO {schema}.events (position, stream_id, version, event_id, type, data, metadata, occurred_at)
		SELECT v_start + row_number() OVER (ORDER BY x.ord),
		       d_stream[r_sidx[x.req]],
		       r_base[x.req] + row_number() OVER (PARTITION BY x.req ORDER BY x.ord),
		       x.id, x.typ, coalesce(x.dat, '\x'::bytea), x.meta, coalesce(x.tm, v_now)
		FROM unnest(e_req, e_id, e_type, e_data, e_meta, e_time) WITH ORDINALITY AS x(req, id, typ, dat, meta, tm, ord)
		WHERE r_ok[x.req] AND NOT coalesce(v_skip[x.ord], false);
		INSERT INTO {schema}.streams (stream_id, created_at)
		SELECT d.s, v_now FROM unnest(d_stream, d_created) AS d(s, created) WHERE d.created
		ON CONFLICT (stream_id) DO NOTHING;
		-- One NOTIFY per transaction, never per event.
		PERFORM pg_notify(p_channel, v_head::text);
	END IF;
END
$fn$;
`,
})

// withV2 appends migration 2 to version 1: append_batch stamps events
// (those without a Time) and new streams with clock_timestamp() read
// right after it takes the append lock, instead of now(), the start of
// its transaction, taken before the wait. Positions are allocated in
// lock order, so the times the store gives no longer go backwards as
// positions go up, across processes too. The function is version 1's
// with those two lines changed (checked by TestMigrationV2Text).
func withV2(m []string) []string {
	fn := m[0][strings.Index(m[0], "CREATE FUNCTION {schema}.append_batch("):]
	fn = strings.Replace(fn, "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
	fn = strings.Replace(fn, "v_now    timestamptz := now();", "v_now    timestamptz;", 1)
	fn = strings.Replace(fn, "PERFORM pg_advisory_xact_lock(p_lock);\n",
		"PERFORM pg_advisory_xact_lock(p_lock);\n\t-- After the wait: times follow the lock (and position) order.\n\tv_now := clock_timestamp();\n", 1)
	return append(m, "-- 2: append_batch stamps times after taking the lock.\n"+fn)
}

// Migrate creates the store's schema or brings it to SchemaVersion; see
// the package function Migrate. Stores refuse to open on a schema that
// is not at SchemaVersion unless WithMigrate is given, so this method
// matters only for a store that must upgrade while running.
func (s *Store) Migrate(ctx context.Context) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	return migrate(ctx, s.pool, s.cfg.schema)
}

// Migrate creates the schema named by WithSchema (default DefaultSchema)
// in the database of pool, or brings it to SchemaVersion, without opening
// a store: for a deployment step run with a role allowed to create
// tables, while the application opens its stores without WithMigrate.
// Other options are ignored.
//
// It is safe to run from several processes (or stores) at once: they
// serialise on a session-level advisory lock taken before the migration's
// transaction, and only the first one does the work.
// A schema at a newer version is refused with a *SchemaVersionError.
func Migrate(ctx context.Context, pool *pgxpool.Pool, opts ...Option) error {
	if pool == nil {
		return &eventstore.ValidationError{Field: "pool", Index: -1, Reason: "nil"}
	}
	cfg := config{schema: DefaultSchema}
	for _, o := range opts {
		o(&cfg)
	}
	if err := checkSchemaName(cfg.schema); err != nil {
		return err
	}
	return migrate(ctx, pool, cfg.schema)
}

func migrate(ctx context.Context, pool *pgxpool.Pool, name string) error {
	if err := eventstore.CheckContext(ctx); err != nil {
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
			// to the pool: closing it ends the session and the lock.
			conn.Conn().Close(uctx)
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
func (s *Store) checkVersion(ctx context.Context) error {
	found, err := readVersion(ctx, s.pool, s.schema)
	if err != nil {
		return err
	}
	if found != SchemaVersion {
		return &SchemaVersionError{Schema: s.cfg.schema, Found: found, Supported: SchemaVersion}
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
	appendCall    string
	streamHead    string
	streamVersion string
	allHead       string
	saveSnap      string
	loadSnap      string
	cols          string
}

func buildQueries(schema string) queries {
	return queries{
		head:          "SELECT coalesce(max(position), 0) FROM " + schema + ".events",
		appendCall:    "SELECT o_status, o_version, o_position, o_dup_index, o_dup_version, o_other_id, o_other_stream FROM " + schema + ".append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
		streamHead:    "SELECT version, occurred_at FROM " + schema + ".events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1",
		streamVersion: "SELECT coalesce(max(version), 0) FROM " + schema + ".events WHERE stream_id = $1",
		allHead:       "SELECT position, occurred_at FROM " + schema + ".events ORDER BY position DESC LIMIT 1",
		// The head a snapshot may not pass ($6: the all-streams log's
		// last position, else the stream's version) is read by the
		// INSERT's own statement, and it returns the head so that a
		// refusal can say so (issue 9 item 7). Versions only grow, so a
		// head seen by the statement cannot be undone by a concurrent
		// change.
		saveSnap: "WITH head AS (SELECT CASE WHEN $6::boolean THEN (SELECT coalesce(max(position), 0) FROM " + schema + ".events) " +
			"ELSE (SELECT coalesce(max(version), 0) FROM " + schema + ".events WHERE stream_id = $1) END AS v), " +
			"saved AS (INSERT INTO " + schema + ".snapshots AS sn (stream_id, name, version, schema_tag, data, saved_at) " +
			"SELECT $1, $2, $3, $4, $5, now() FROM head WHERE head.v >= $3 " +
			"ON CONFLICT (stream_id, name) DO UPDATE SET version = excluded.version, schema_tag = excluded.schema_tag, data = excluded.data, saved_at = excluded.saved_at " +
			"WHERE sn.version <= excluded.version) " +
			"SELECT v FROM head",
		loadSnap: "SELECT version, schema_tag, data, saved_at FROM " + schema + ".snapshots WHERE stream_id = $1 AND name = $2",
		cols:     "position, stream_id, version, event_id, type, data, metadata, occurred_at",
	}
}
