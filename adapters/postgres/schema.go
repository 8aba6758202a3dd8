package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/esv2/esv2/eventstore"
)

// SchemaVersion is the version of the database schema this package writes
// and reads.
const SchemaVersion = 1

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

func (e *SchemaVersionError) Error() string {
	switch {
	case e.Found > e.Supported:
		return fmt.Sprintf("postgres: schema %q is at version %d, newer than version %d supported by this build: upgrade esv2",
			e.Schema, e.Found, e.Supported)
	case e.Found == 0:
		return fmt.Sprintf("postgres: schema %q is not set up: call Store.Migrate or open with WithMigrate", e.Schema)
	default:
		return fmt.Sprintf("postgres: schema %q is at version %d, older than version %d: call Store.Migrate or open with WithMigrate",
			e.Schema, e.Found, e.Supported)
	}
}

// Unwrap returns ErrSchemaVersion.
func (e *SchemaVersionError) Unwrap() error { return ErrSchemaVersion }

// migrations[i] brings the schema from version i to version i+1. "{schema}" is
// replaced by the sanitized schema name.
var migrations = []string{
	// 1: events, streams, snapshots and the append function.
	`
CREATE TABLE {schema}.streams (
	stream_id  text        NOT NULL,
	version    bigint      NOT NULL,
	updated_at timestamptz NOT NULL,
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
	CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
	CONSTRAINT events_event_id_key UNIQUE (event_id)
);

CREATE TABLE {schema}.snapshots (
	stream_id  text        NOT NULL,
	name       text        NOT NULL,
	version    bigint      NOT NULL,
	schema_tag text        NOT NULL,
	data       bytea       NOT NULL,
	saved_at   timestamptz NOT NULL,
	CONSTRAINT snapshots_pkey PRIMARY KEY (stream_id, name)
);

-- append_batch appends the requests of one group commit. Request i targets
-- r_stream[i] with expectation r_expected[i] (-1 any, -2 stream exists,
-- >= 0 exact) and owns the next r_count[i] elements of the e_* arrays.
-- It returns one row per request, in order: o_status 0 = ok, 1 = version
-- conflict (o_version = actual), 2 = an event ID stored in another stream
-- (o_other_id, o_other_stream); o_dup_index / o_dup_version list the events
-- already stored in the same stream (0-based index in the request).
--
-- Positions are allocated as max(position)+1 while holding the advisory
-- lock p_lock until commit, so they are gapless and in commit order.
CREATE FUNCTION {schema}.append_batch(
	p_lock bigint, p_channel text,
	r_stream text[], r_expected bigint[], r_count int[], r_has_ids bool[],
	e_id text[], e_type text[], e_data bytea[], e_meta jsonb[], e_time timestamptz[])
RETURNS TABLE (o_status int, o_version bigint, o_position bigint,
	o_dup_index int[], o_dup_version bigint[], o_other_id text, o_other_stream text)
LANGUAGE plpgsql AS $fn$
DECLARE
	v_head  bigint;
	v_start bigint;
	v_off   int := 0;
	v_n     int;
	v_cur   bigint;
	v_exp   bigint;
	v_k     bigint;
	v_now   timestamptz := now();
BEGIN
	PERFORM pg_advisory_xact_lock(p_lock);
	SELECT coalesce(max(ev.position), 0) INTO v_head FROM {schema}.events ev;
	v_start := v_head;
	FOR i IN 1 .. coalesce(cardinality(r_stream), 0) LOOP
		v_n := r_count[i];
		o_position := 0;
		o_dup_index := '{}';
		o_dup_version := '{}';
		o_other_id := NULL;
		o_other_stream := NULL;
		v_cur := NULL;
		SELECT st.version INTO v_cur FROM {schema}.streams st WHERE st.stream_id = r_stream[i];
		v_cur := coalesce(v_cur, 0);
		IF v_n > 0 AND r_has_ids[i] THEN
			SELECT coalesce(array_agg(x.ord::int - 1 ORDER BY x.ord) FILTER (WHERE ev.stream_id = r_stream[i]), '{}'),
			       coalesce(array_agg(ev.version ORDER BY x.ord) FILTER (WHERE ev.stream_id = r_stream[i]), '{}'),
			       (array_agg(ev.event_id ORDER BY x.ord) FILTER (WHERE ev.stream_id <> r_stream[i]))[1],
			       (array_agg(ev.stream_id ORDER BY x.ord) FILTER (WHERE ev.stream_id <> r_stream[i]))[1]
			INTO o_dup_index, o_dup_version, o_other_id, o_other_stream
			FROM unnest(e_id[v_off + 1 : v_off + v_n]) WITH ORDINALITY AS x(id, ord)
			JOIN {schema}.events ev ON ev.event_id = x.id;
			IF o_other_id IS NOT NULL THEN
				o_status := 2;
				o_version := v_cur;
				v_off := v_off + v_n;
				RETURN NEXT;
				CONTINUE;
			END IF;
			IF cardinality(o_dup_index) = v_n THEN
				-- A retry of a stored batch: success whatever the expectation.
				o_status := 0;
				o_version := v_cur;
				v_off := v_off + v_n;
				RETURN NEXT;
				CONTINUE;
			END IF;
		END IF;
		v_exp := r_expected[i];
		IF NOT (v_exp = -1 OR (v_exp = -2 AND v_cur > 0) OR v_exp = v_cur) THEN
			o_status := 1;
			o_version := v_cur;
			o_dup_index := '{}';
			o_dup_version := '{}';
			v_off := v_off + v_n;
			RETURN NEXT;
			CONTINUE;
		END IF;
		IF v_n > 0 THEN
			INSERT INTO {schema}.events (position, stream_id, version, event_id, type, data, metadata, occurred_at)
			SELECT v_head + t.rn, r_stream[i], v_cur + t.rn, t.id, t.typ, coalesce(t.dat, '\x'::bytea), t.meta, coalesce(t.tm, v_now)
			FROM (
				SELECT x.id, x.typ, x.dat, x.meta, x.tm, row_number() OVER (ORDER BY x.ord) AS rn
				FROM unnest(e_id[v_off + 1 : v_off + v_n], e_type[v_off + 1 : v_off + v_n], e_data[v_off + 1 : v_off + v_n],
				            e_meta[v_off + 1 : v_off + v_n], e_time[v_off + 1 : v_off + v_n])
				     WITH ORDINALITY AS x(id, typ, dat, meta, tm, ord)
				WHERE NOT (x.ord::int - 1 = ANY (o_dup_index))
			) t;
			GET DIAGNOSTICS v_k = ROW_COUNT;
			v_head := v_head + v_k;
			v_cur := v_cur + v_k;
			INSERT INTO {schema}.streams AS st (stream_id, version, updated_at) VALUES (r_stream[i], v_cur, v_now)
			ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at;
			o_position := v_head;
		END IF;
		o_status := 0;
		o_version := v_cur;
		v_off := v_off + v_n;
		RETURN NEXT;
	END LOOP;
	IF v_head > v_start THEN
		-- One NOTIFY per transaction, never per event.
		PERFORM pg_notify(p_channel, v_head::text);
	END IF;
END
$fn$;
`,
}

// Migrate creates the store's schema or brings it to SchemaVersion. It is
// safe to run from several processes at once: they serialise on a
// transaction-scoped advisory lock and only the first one does the work.
// A schema at a newer version is refused with a *SchemaVersionError.
func (s *Store) Migrate(ctx context.Context) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	if err := eventstore.CheckContext(ctx); err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return translateError(err, opErr("migrate"))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", advisoryKey("migrate", s.cfg.schema)); err != nil {
		return translateError(err, opErr("migrate: lock"))
	}
	stmts := []string{
		"CREATE SCHEMA IF NOT EXISTS " + s.schema,
		"CREATE TABLE IF NOT EXISTS " + s.schema + ".schema_version (version int NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
	}
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return translateError(err, opErr("migrate: create schema"))
		}
	}
	var found int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+s.schema+".schema_version").Scan(&found); err != nil {
		return translateError(err, opErr("migrate: read version"))
	}
	if found > SchemaVersion {
		return &SchemaVersionError{Schema: s.cfg.schema, Found: found, Supported: SchemaVersion}
	}
	if found == SchemaVersion {
		return nil // nothing to do; the rollback releases the lock
	}
	for v := found; v < SchemaVersion; v++ {
		sql := strings.ReplaceAll(migrations[v], "{schema}", s.schema)
		if _, err := tx.Exec(ctx, sql); err != nil {
			return translateError(err, opErr(fmt.Sprintf("migrate to version %d", v+1)))
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+s.schema+".schema_version (version) VALUES ($1)", v+1); err != nil {
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
	var found int
	err := s.pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+s.schema+".schema_version").Scan(&found)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000") { // undefined table / schema
		found, err = 0, nil
	}
	if err != nil {
		return translateError(err, opErr("check schema version"))
	}
	if found != SchemaVersion {
		return &SchemaVersionError{Schema: s.cfg.schema, Found: found, Supported: SchemaVersion}
	}
	return nil
}

// queries holds the SQL texts that do not depend on the call, built once
// per store. pgx prepares and caches each per connection.
type queries struct {
	head       string
	appendCall string
	streamHead string
	allHead    string
	saveSnap   string
	loadSnap   string
	cols       string
}

func buildQueries(schema string) queries {
	return queries{
		head:       "SELECT coalesce(max(position), 0) FROM " + schema + ".events",
		appendCall: "SELECT o_status, o_version, o_position, o_dup_index, o_dup_version, o_other_id, o_other_stream FROM " + schema + ".append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
		streamHead: "SELECT version, occurred_at FROM " + schema + ".events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1",
		allHead:    "SELECT position, occurred_at FROM " + schema + ".events ORDER BY position DESC LIMIT 1",
		saveSnap: "INSERT INTO " + schema + ".snapshots AS sn (stream_id, name, version, schema_tag, data, saved_at) VALUES ($1, $2, $3, $4, $5, now()) " +
			"ON CONFLICT (stream_id, name) DO UPDATE SET version = excluded.version, schema_tag = excluded.schema_tag, data = excluded.data, saved_at = excluded.saved_at " +
			"WHERE sn.version <= excluded.version",
		loadSnap: "SELECT version, schema_tag, data, saved_at FROM " + schema + ".snapshots WHERE stream_id = $1 AND name = $2",
		cols:     "position, stream_id, version, event_id, type, data, metadata, occurred_at",
	}
}
