package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

var _ driver.Deleter = (*pgDriver)(nil)

// lifecycleTx runs fn in a transaction that holds the append lock (the
// advisory lock append_batch takes), so that no group commit interleaves
// with a deletion: versions and positions read by fn stay the last ones
// until it commits. Before fn runs, the high-water mark is raised to the
// last position handed out, so that removing the newest events cannot make
// their positions come back (migrations/0006).
func (d *pgDriver) lifecycleTx(ctx context.Context, op string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	if d.closed.Load() {
		return eventstore.ErrClosed
	}
	tx, err := d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return d.callErr(ctx, err, op)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", d.lockKey); err != nil {
		return d.callErr(ctx, err, op)
	}
	if _, err := tx.Exec(ctx, "UPDATE "+d.schema+".high_water SET position = greatest(position, (SELECT coalesce(max(position), 0) FROM "+d.schema+".events))"); err != nil {
		return d.callErr(ctx, err, op)
	}
	if err := fn(ctx, tx); err != nil {
		var de *eventstore.StreamDeletedError
		if errors.Is(err, eventstore.ErrNotFound) || errors.As(err, &de) || driver.Translated(err) {
			return err
		}
		return d.callErr(ctx, err, op)
	}
	if err := tx.Commit(ctx); err != nil {
		return d.callErr(ctx, err, op)
	}
	return nil
}

// streamState reads a stream's version, first stored version and
// tombstone under the append lock. A stream without a row never had an
// event: ErrNotFound.
func (d *pgDriver) streamState(ctx context.Context, tx pgx.Tx, streamID string) (version, first uint64, deleted bool, err error) {
	var v, f int64
	err = tx.QueryRow(ctx, "SELECT greatest(coalesce((SELECT max(version) FROM "+d.schema+".events WHERE stream_id = $1), 0), st.last_version), "+
		"st.first_version, st.deleted FROM "+d.schema+".streams st WHERE st.stream_id = $1", streamID).Scan(&v, &f, &deleted)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, 0, false, fmt.Errorf("postgres: stream %q has no events: %w", streamID, eventstore.ErrNotFound)
	case err != nil:
		return 0, 0, false, err
	}
	return uint64(v), uint64(f), deleted, nil
}

// removeEvents deletes the rows of a stream below version before (all of
// them when before is 0) and counts them in high_water.removed.
func (d *pgDriver) removeEvents(ctx context.Context, tx pgx.Tx, streamID string, before uint64) error {
	q := "WITH gone AS (DELETE FROM " + d.schema + ".events WHERE stream_id = $1 AND ($2::bigint = 0 OR version < $2::bigint) RETURNING 1) " +
		"UPDATE " + d.schema + ".high_water SET removed = removed + (SELECT count(*) FROM gone)"
	_, err := tx.Exec(ctx, q, streamID, int64(before))
	return err
}

// DeleteStream removes a stream's events and snapshots and leaves its row
// as a tombstone with its version; see [driver.Deleter]. The rows are
// gone for every reader at commit; their bytes stay in the table's pages
// until VACUUM reclaims them ([Store.Purge], [Store.PurgeFull]).
func (d *pgDriver) DeleteStream(ctx context.Context, streamID string, expected eventstore.ExpectedVersion) error {
	return d.lifecycleTx(ctx, "delete stream", func(ctx context.Context, tx pgx.Tx) error {
		v, _, deleted, err := d.streamState(ctx, tx, streamID)
		if err != nil {
			return err
		}
		if !expected.Matches(v) {
			return &eventstore.ConflictError{StreamID: streamID, Expected: expected, Actual: v}
		}
		if deleted {
			return nil
		}
		// The tombstone first: its row lock orders the deletion with
		// snapshot saves (queries.saveSnap reads the row FOR SHARE), so
		// that a snapshot saved meanwhile is either refused or committed
		// before the DELETE below, which then removes it.
		if _, err := tx.Exec(ctx, "UPDATE "+d.schema+".streams SET deleted = true, last_version = $2::bigint, first_version = $2::bigint + 1 WHERE stream_id = $1", streamID, int64(v)); err != nil {
			return err
		}
		if err := d.removeEvents(ctx, tx, streamID, 0); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM "+d.schema+".snapshots WHERE stream_id = $1", streamID)
		return err
	})
}

// TruncateStream removes a stream's events below version before; see
// [driver.Deleter].
func (d *pgDriver) TruncateStream(ctx context.Context, streamID string, before uint64) error {
	return d.lifecycleTx(ctx, "truncate stream", func(ctx context.Context, tx pgx.Tx) error {
		v, first, deleted, err := d.streamState(ctx, tx, streamID)
		if err != nil {
			return err
		}
		if deleted {
			return &eventstore.StreamDeletedError{StreamID: streamID, Version: v}
		}
		if err := driver.TruncatePastHead(streamID, before, v); err != nil {
			return err
		}
		if before <= first {
			return nil
		}
		if err := d.removeEvents(ctx, tx, streamID, before); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE "+d.schema+".streams SET first_version = $2, last_version = $3 WHERE stream_id = $1", streamID, int64(before), int64(v))
		return err
	})
}

// DeleteSnapshots removes the snapshot (streamID, name), or all of the
// stream's when name is ""; see [driver.Deleter].
func (d *pgDriver) DeleteSnapshots(ctx context.Context, streamID, name string) error {
	if d.closed.Load() {
		return eventstore.ErrClosed
	}
	ctx, done := d.callCtx(ctx)
	defer done()
	_, err := d.pool.Exec(ctx, "DELETE FROM "+d.schema+".snapshots WHERE stream_id = $1 AND ($2::text = '' OR name = $2::text)", streamID, name)
	if err != nil {
		return d.callErr(ctx, err, "delete snapshots")
	}
	return nil
}
