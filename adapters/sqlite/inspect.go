package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// The operator's view of a store ([eventstore.Inspector]): listings,
// a summary and a check of the invariants, over this package's tables.
// Each method runs in one read transaction (ReadTx), so it sees one
// consistent state of the database while appends go on.

var _ eventstore.Inspector = (*Store)(nil)

// maxProblems caps the problems one check reports: a badly damaged store
// would otherwise produce one per event.
const maxProblems = 1000

// ListStreams returns up to limit streams (all when limit <= 0) whose IDs
// start with prefix and sort after after, in byte order of their IDs; see
// [eventstore.Inspector].
func (s *Store) ListStreams(ctx context.Context, prefix, after string, limit int) ([]eventstore.StreamSummary, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	var out []eventstore.StreamSummary
	err := s.ReadTx(ctx, func(tx *sql.Tx) error {
		// The range on the primary key finds the first row; substr keeps
		// the prefix's rows (streams sort by BINARY, byte order).
		rows, err := tx.QueryContext(ctx, `SELECT stream_id, version, last_time FROM streams
			WHERE stream_id > ? AND stream_id >= ? AND substr(stream_id, 1, length(?)) = ?
			ORDER BY stream_id LIMIT ?`, after, prefix, prefix, prefix, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var st eventstore.StreamSummary
			var t int64
			if err := rows.Scan(&st.StreamID, &st.Version, &t); err != nil {
				return err
			}
			st.LastTime = time.Unix(0, t).UTC()
			out = append(out, st)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, inspectError("list streams", err)
	}
	return out, nil
}

// Summary describes the store; see [eventstore.Inspector]. SizeBytes is
// the main database file's pages (the WAL file is not counted).
func (s *Store) Summary(ctx context.Context) (eventstore.StoreSummary, error) {
	var sum eventstore.StoreSummary
	err := s.ReadTx(ctx, func(tx *sql.Tx) error {
		var newest, oldest sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT h.position, h.count, h.last_time,
			(SELECT time FROM events ORDER BY position LIMIT 1),
			(SELECT count(*) FROM streams), (SELECT count(*) FROM snapshots),
			(SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()),
			(SELECT user_version FROM pragma_user_version())
			FROM head h WHERE h.id = 1`).Scan(&sum.Position, &sum.Events, &newest, &oldest,
			&sum.Streams, &sum.Snapshots, &sum.SizeBytes, &sum.SchemaVersion)
		if err != nil {
			return err
		}
		if sum.Events > 0 {
			sum.Newest = time.Unix(0, newest.Int64).UTC()
			sum.Oldest = time.Unix(0, oldest.Int64).UTC()
		}
		return nil
	})
	if err != nil {
		return eventstore.StoreSummary{}, inspectError("summary", err)
	}
	return sum, nil
}

// ListSnapshots returns the snapshots of streamID by name; see
// [eventstore.Inspector].
func (s *Store) ListSnapshots(ctx context.Context, streamID string) ([]eventstore.Snapshot, error) {
	var out []eventstore.Snapshot
	err := s.ReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT name, version, schema, data, time FROM snapshots WHERE stream_id = ? ORDER BY name", streamID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			sn := eventstore.Snapshot{StreamID: streamID}
			var t int64
			if err := rows.Scan(&sn.Name, &sn.Version, &sn.Schema, &sn.Data, &t); err != nil {
				return err
			}
			sn.Time = time.Unix(0, t).UTC()
			out = append(out, sn)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, inspectError("list snapshots", err)
	}
	return out, nil
}

// Verify checks the invariants named by the eventstore.Check* constants
// (all but CheckStreamHash: this schema stores no hashes) and returns what
// is broken; see [eventstore.Inspector]. It reads every
// event more than once (PRAGMA integrity_check reads the whole file): on
// a large store it takes a while, without blocking appends.
func (s *Store) Verify(ctx context.Context) ([]eventstore.Problem, error) {
	var out []eventstore.Problem
	err := s.ReadTx(ctx, func(tx *sql.Tx) error {
		for _, c := range sqliteChecks {
			ps, err := collectProblems(ctx, tx, c.check, c.query)
			if err != nil {
				return fmt.Errorf("check %s: %w", c.check, err)
			}
			out = append(out, ps...)
		}
		return nil
	})
	if err != nil {
		return nil, inspectError("verify", err)
	}
	return out, nil
}

// sqliteChecks are the queries of Verify. Each returns rows of
// (stream_id, position, detail), one per problem.
var sqliteChecks = []struct{ check, query string }{
	{eventstore.CheckSchema, fmt.Sprintf(`SELECT '', 0, 'schema version ' || user_version || ', want %d'
		FROM pragma_user_version() WHERE user_version != %d`, schemaVersion, schemaVersion)},
	{eventstore.CheckIntegrity, `SELECT '', 0, integrity_check FROM pragma_integrity_check() WHERE integrity_check != 'ok'`},
	// lag() over the unique (stream_id, version) index: a version that
	// is not its predecessor's plus one is a gap (or a repeat).
	// A truncated stream starts at its first_version (issue 12).
	{eventstore.CheckVersions, `SELECT stream_id, position,
			CASE WHEN prev IS NULL THEN 'first version is ' || version || ', want ' || first
			ELSE 'version ' || version || ' follows version ' || prev END
		FROM (SELECT e.stream_id, e.version, e.position, lag(e.version) OVER w AS prev, coalesce(s.first_version, 1) AS first
			FROM events e LEFT JOIN streams s ON s.stream_id = e.stream_id WINDOW w AS (PARTITION BY e.stream_id ORDER BY e.version))
		WHERE version != coalesce(prev, first - 1) + 1`},
	{eventstore.CheckPositions, `SELECT stream_id, position,
			'version ' || version || ' at position ' || position || ' is not after version ' || prev || ' at position ' || prevpos
		FROM (SELECT stream_id, version, position, lag(version) OVER w AS prev, lag(position) OVER w AS prevpos
			FROM events WINDOW w AS (PARTITION BY stream_id ORDER BY version))
		WHERE position <= prevpos`},
	// AUTOINCREMENT's high-water mark must be at or past every position,
	// or a position could be handed out again.
	{eventstore.CheckPositions, `SELECT '', m, 'position ' || m || ' is past the high-water mark ' || coalesce(seq, 0)
		FROM (SELECT max(position) AS m FROM events) LEFT JOIN sqlite_sequence ON name = 'events'
		WHERE m > coalesce(seq, 0)`},
	{eventstore.CheckStreams, `SELECT m.stream_id, e.position,
			CASE WHEN s.stream_id IS NULL THEN 'no streams row; the events end at version ' || m.v
			ELSE 'streams row has version ' || s.version || ' and last time ' || ` + sqlTime("s.last_time") + ` ||
				', the events end at version ' || m.v || ' at time ' || ` + sqlTime("e.time") + ` END
		FROM (SELECT stream_id, max(version) AS v FROM events GROUP BY stream_id) m
		JOIN events e ON e.stream_id = m.stream_id AND e.version = m.v
		LEFT JOIN streams s ON s.stream_id = m.stream_id
		WHERE s.stream_id IS NULL OR s.version != m.v OR s.last_time != e.time`},
	{eventstore.CheckStreams, `SELECT s.stream_id, 0, 'stream is deleted but has events'
		FROM streams s WHERE s.deleted != 0 AND EXISTS (SELECT 1 FROM events e WHERE e.stream_id = s.stream_id)`},
	// A deleted stream takes no snapshot; a store written before that
	// was enforced may keep one saved after the deletion.
	{eventstore.CheckStreams, `SELECT s.stream_id, 0, 'stream is deleted but keeps snapshot ' || quote(n.name) || ' at version ' || n.version
		FROM streams s JOIN snapshots n ON n.stream_id = s.stream_id WHERE s.deleted != 0`},
	// Rows without events are tombstones of deleted streams (issue 12; a
	// truncation keeps the last event).
	{eventstore.CheckStreams, `SELECT s.stream_id, 0, 'streams row at version ' || s.version || ' has no events'
		FROM streams s WHERE s.deleted = 0
			AND NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = s.stream_id)`},
	{eventstore.CheckHead, `SELECT '', coalesce(e.p, 0), 'head has position ' || h.position || ', count ' || h.count ||
			', last time ' || ` + sqlTime("h.last_time") + ` || '; the events have last position ' || coalesce(e.p, 0) ||
			', count ' || e.n || ', last time ' || ` + sqlTime("coalesce(l.time, 0)") + `
		FROM head h, (SELECT max(position) AS p, count(*) AS n FROM events) e
		LEFT JOIN events l ON l.position = e.p
		WHERE h.id = 1 AND (h.position < coalesce(e.p, 0) OR h.count != e.n
			OR (h.position = coalesce(e.p, 0) AND h.last_time != coalesce(l.time, 0)))`},
	// The head may be past the last event (the newest were deleted), not
	// past AUTOINCREMENT's high-water mark.
	{eventstore.CheckHead, `SELECT '', h.position, 'head has position ' || h.position || ', past the high-water mark ' || coalesce(q.seq, 0)
		FROM head h LEFT JOIN sqlite_sequence q ON q.name = 'events' WHERE h.id = 1 AND h.position > coalesce(q.seq, 0)`},
	{eventstore.CheckHead, `SELECT '', 0, 'no head row' WHERE NOT EXISTS (SELECT 1 FROM head WHERE id = 1)`},
	{eventstore.CheckEventIDs, `SELECT '', 0, 'the unique index events_event_id is missing'
		WHERE NOT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'events_event_id')`},
	// NOT INDEXED: count from the table itself, not from the index
	// whose soundness is in question.
	{eventstore.CheckEventIDs, `SELECT min(stream_id), min(position), 'event ID ' || quote(event_id) || ' is stored ' || count(*) || ' times'
		FROM events NOT INDEXED WHERE event_id IS NOT NULL GROUP BY event_id HAVING count(*) > 1`},
}

// sqlTime is SQL that prints a time column (Unix nanoseconds) in RFC 3339
// with milliseconds, for people reading a problem.
func sqlTime(col string) string {
	return "strftime('%Y-%m-%dT%H:%M:%fZ', " + col + " / 1000000000.0, 'unixepoch')"
}

// collectProblems runs one check's query, keeping at most maxProblems
// problems and saying how many more there were.
func collectProblems(ctx context.Context, tx *sql.Tx, check, query string) ([]eventstore.Problem, error) {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []eventstore.Problem
	more := 0
	for rows.Next() {
		p := eventstore.Problem{Check: check}
		if err := rows.Scan(&p.StreamID, &p.Position, &p.Detail); err != nil {
			return nil, err
		}
		if len(out) < maxProblems {
			out = append(out, p)
		} else {
			more++
		}
	}
	if more > 0 {
		out = append(out, eventstore.Problem{Check: check, Detail: fmt.Sprintf("and %d more problems of this kind", more)})
	}
	return out, rows.Err()
}

// inspectError names the operation and translates SQLite's errors;
// errors of the store itself (ErrClosed, the context's) pass as they are.
func inspectError(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, eventstore.ErrClosed) {
		return err
	}
	return fmt.Errorf("sqlite: %s: %w", op, translateError(err, nil))
}
