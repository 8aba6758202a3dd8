package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/eventstore"
)

// The operator's view of a store ([eventstore.Inspector]): listings,
// a summary and a check of the invariants, over this package's tables.
// Each method runs in one read-only repeatable-read transaction, so it
// sees one consistent state of the schema while appends go on.

var _ eventstore.Inspector = (*Store)(nil)

// maxProblems caps the problems one check reports: a badly damaged store
// would otherwise produce one per event.
const maxProblems = 1000

// inspectTx runs fn in a read-only snapshot of the database.
func (s *Store) inspectTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	if s.d.closed.Load() {
		return eventstore.ErrClosed
	}
	err := pgx.BeginTxFunc(ctx, s.d.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
	if err != nil {
		return translateError(err, opErr(op))
	}
	return nil
}

// ListStreams returns up to limit streams (all when limit <= 0) whose IDs
// start with prefix and sort after after, in byte order of their IDs
// (COLLATE "C", whatever the database's collation); see
// [eventstore.Inspector].
func (s *Store) ListStreams(ctx context.Context, prefix, after string, limit int) ([]eventstore.StreamSummary, error) {
	var lim *int64 // NULL: LIMIT ALL
	if limit > 0 {
		n := int64(limit)
		lim = &n
	}
	sc := s.d.schema
	var out []eventstore.StreamSummary
	err := s.inspectTx(ctx, "list streams", func(tx pgx.Tx) error {
		// Each row's last event comes from the (stream_id, version)
		// index; a stream whose events were removed keeps its version
		// in its row (migration 9).
		rows, err := tx.Query(ctx, `SELECT s.stream_id, greatest(coalesce(e.version, 0), s.last_version), e.occurred_at
			FROM `+sc+`.streams s LEFT JOIN LATERAL (SELECT version, occurred_at FROM `+sc+`.events ev
				WHERE ev.stream_id = s.stream_id ORDER BY version DESC LIMIT 1) e ON true
			WHERE s.stream_id COLLATE "C" > $1 AND starts_with(s.stream_id, $2)
			ORDER BY s.stream_id COLLATE "C" LIMIT $3`, after, prefix, lim)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var st eventstore.StreamSummary
			var t *time.Time
			if err := rows.Scan(&st.StreamID, &st.Version, &t); err != nil {
				return err
			}
			if t != nil {
				st.LastTime = t.UTC()
			}
			out = append(out, st)
		}
		return rows.Err()
	})
	return out, err
}

// Summary describes the store; see [eventstore.Inspector]. SizeBytes
// counts the schema's tables with their indexes and TOAST data.
func (s *Store) Summary(ctx context.Context) (eventstore.StoreSummary, error) {
	sc := s.d.schema
	var sum eventstore.StoreSummary
	err := s.inspectTx(ctx, "summary", func(tx pgx.Tx) error {
		var oldest, newest *time.Time
		err := tx.QueryRow(ctx, `SELECT greatest(coalesce(max(position), 0), (SELECT position FROM `+sc+`.high_water)), count(*),
			(SELECT occurred_at FROM `+sc+`.events ORDER BY position LIMIT 1),
			(SELECT occurred_at FROM `+sc+`.events ORDER BY position DESC LIMIT 1),
			(SELECT count(*) FROM `+sc+`.streams), (SELECT count(*) FROM `+sc+`.snapshots),
			(SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
				JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'),
			(SELECT coalesce(max(version), 0) FROM `+sc+`.schema_version)
			FROM `+sc+`.events`, s.d.cfg.schema).Scan(&sum.Position, &sum.Events, &oldest, &newest,
			&sum.Streams, &sum.Snapshots, &sum.SizeBytes, &sum.SchemaVersion)
		if oldest != nil {
			sum.Oldest, sum.Newest = oldest.UTC(), newest.UTC()
		}
		return err
	})
	return sum, err
}

// ListSnapshots returns the snapshots of streamID by name; see
// [eventstore.Inspector].
func (s *Store) ListSnapshots(ctx context.Context, streamID string) ([]eventstore.Snapshot, error) {
	var out []eventstore.Snapshot
	err := s.inspectTx(ctx, "list snapshots", func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT name, version, schema_tag, data, saved_at FROM `+s.d.schema+`.snapshots
			WHERE stream_id = $1 ORDER BY name COLLATE "C"`, streamID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			sn := eventstore.Snapshot{StreamID: streamID}
			if err := rows.Scan(&sn.Name, &sn.Version, &sn.Schema, &sn.Data, &sn.Time); err != nil {
				return err
			}
			sn.Time = sn.Time.UTC()
			out = append(out, sn)
		}
		return rows.Err()
	})
	return out, err
}

// Verify checks the invariants named by the eventstore.Check* constants
// that this schema can break and returns what is broken; see
// [eventstore.Inspector]. CheckHead checks the count of the high-water
// row (the head is the greater of the events' highest position and the
// high-water mark). Not checked here: CheckIntegrity
// (PostgreSQL's amcheck is an extension that may not be installed).
func (s *Store) Verify(ctx context.Context) ([]eventstore.Problem, error) {
	sc := s.d.schema
	checks := []struct{ check, query string }{
		{eventstore.CheckSchema, fmt.Sprintf(`SELECT '', 0::bigint, 'schema version ' || v || ', want %d'
			FROM (SELECT coalesce(max(version), 0) AS v FROM %s.schema_version) x WHERE v != %d`, SchemaVersion, sc, SchemaVersion)},
		// lag() over the (stream_id, version) index: a version that is
		// not its predecessor's plus one is a gap (or a repeat).
		{eventstore.CheckVersions, `SELECT stream_id, position,
				CASE WHEN prev IS NULL THEN 'first version is ' || version || ', want ' || first
				ELSE 'version ' || version || ' follows version ' || prev END
			FROM (SELECT e.stream_id, e.version, e.position, lag(e.version) OVER w AS prev, coalesce(s.first_version, 1) AS first
				FROM ` + sc + `.events e LEFT JOIN ` + sc + `.streams s ON s.stream_id = e.stream_id
				WINDOW w AS (PARTITION BY e.stream_id ORDER BY e.version)) x
			WHERE version != coalesce(prev, first - 1) + 1`},
		{eventstore.CheckPositions, `SELECT stream_id, position,
				'version ' || version || ' at position ' || position || ' is not after version ' || prev || ' at position ' || prevpos
			FROM (SELECT stream_id, version, position, lag(version) OVER w AS prev, lag(position) OVER w AS prevpos
				FROM ` + sc + `.events WINDOW w AS (PARTITION BY stream_id ORDER BY version)) x
			WHERE position <= prevpos`},
		{eventstore.CheckStreams, `SELECT e.stream_id, min(e.position), 'no streams row; the events end at version ' || max(e.version)
			FROM ` + sc + `.events e WHERE NOT EXISTS (SELECT 1 FROM ` + sc + `.streams s WHERE s.stream_id = e.stream_id)
			GROUP BY e.stream_id`},
		// Rows without events are tombstones of deleted streams (issue 12;
		// a truncation keeps the last event).
		{eventstore.CheckStreams, `SELECT s.stream_id, 0::bigint, 'streams row has no events'
			FROM ` + sc + `.streams s WHERE NOT s.deleted
				AND NOT EXISTS (SELECT 1 FROM ` + sc + `.events e WHERE e.stream_id = s.stream_id)`},
		{eventstore.CheckStreams, `SELECT s.stream_id, 0::bigint, 'stream is deleted but has events'
			FROM ` + sc + `.streams s WHERE s.deleted AND EXISTS (SELECT 1 FROM ` + sc + `.events e WHERE e.stream_id = s.stream_id)`},
		// A deleted stream takes no snapshot; a store written before that
		// was enforced may keep one saved after the deletion.
		{eventstore.CheckStreams, `SELECT s.stream_id, 0::bigint, 'stream is deleted but keeps snapshot ' || quote_literal(n.name) || ' at version ' || n.version
			FROM ` + sc + `.streams s JOIN ` + sc + `.snapshots n ON n.stream_id = s.stream_id WHERE s.deleted`},
		// The events stored are those the writers counted minus those
		// removed (migrations/0011), which Info counts; the count and the
		// events commit together, so one snapshot sees both agree.
		{eventstore.CheckHead, `SELECT '', x.c, 'the writers counted ' || x.c || ' events stored (' || hw.counted || ' + ' || o.s || ' minus ' || hw.removed || ' removed), the events number ' || e.n
			FROM (SELECT count(*) AS n FROM ` + sc + `.events) e, ` + sc + `.high_water hw,
				(SELECT coalesce(sum(events), 0) AS s FROM ` + sc + `.append_outcomes) o,
				LATERAL (SELECT hw.counted + o.s - hw.removed AS c) x
			WHERE x.c != e.n`},
		// Positions are drawn from the sequence: one past it would be
		// handed out again.
		{eventstore.CheckHead, `SELECT '', e.m, 'position ' || e.m || ' is past the sequence ` + sc + `.positions at ' || q.last_value
			FROM (SELECT max(position) AS m FROM ` + sc + `.events) e, ` + sc + `.positions q WHERE e.m > q.last_value`},
		{eventstore.CheckEventIDs, `SELECT '', 0::bigint, 'the unique index ` + constraintEventID + ` is missing, not unique or not valid'
			WHERE NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
				JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = '` + strings.ReplaceAll(s.d.cfg.schema, "'", "''") + `' AND c.relname = '` + constraintEventID + `'
				AND i.indisunique AND i.indisvalid)`},
		// Rows stored before schema 6 have no hash (reads compute it);
		// a wrong one would put a stream in the wrong partition.
		{eventstore.CheckStreamHash, `SELECT stream_id, position, 'stream hash ' || stream_hash || ', want ' || ` + sc + `.stream_hash(stream_id)
			FROM ` + sc + `.events WHERE stream_hash IS NOT NULL AND stream_hash != ` + sc + `.stream_hash(stream_id)`},
		{eventstore.CheckEventIDs, `SELECT min(stream_id), min(position), 'event ID ' || quote_literal(event_id) || ' is stored ' || count(*) || ' times'
			FROM ` + sc + `.events WHERE event_id IS NOT NULL GROUP BY event_id HAVING count(*) > 1`},
	}
	var out []eventstore.Problem
	err := s.inspectTx(ctx, "verify", func(tx pgx.Tx) error {
		for _, c := range checks {
			ps, err := queryProblems(ctx, tx, c.check, c.query)
			if err != nil {
				return fmt.Errorf("check %s: %w", c.check, err)
			}
			out = append(out, ps...)
		}
		return nil
	})
	return out, err
}

// queryProblems runs one check's query, whose rows are (stream_id,
// position, detail), keeping at most maxProblems problems and saying how
// many more there were.
func queryProblems(ctx context.Context, tx pgx.Tx, check, query string) ([]eventstore.Problem, error) {
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []eventstore.Problem
	n := 0
	for rows.Next() {
		p := eventstore.Problem{Check: check}
		if err := rows.Scan(&p.StreamID, &p.Position, &p.Detail); err != nil {
			return nil, err
		}
		if n++; n <= maxProblems {
			out = append(out, p)
		}
	}
	if n > maxProblems {
		out = append(out, eventstore.Problem{Check: check, Detail: fmt.Sprintf("and %d more problems of this kind", n-maxProblems)})
	}
	return out, rows.Err()
}
