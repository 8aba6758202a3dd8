package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

var _ driver.Deleter = (*drv)(nil)

// streamState reads a stream's row in a write transaction: its version,
// whether it is deleted, and the first version that may be stored. A
// stream without a row never had an event: ErrNotFound.
func streamState(ctx context.Context, tx *sql.Tx, streamID string) (version, first uint64, deleted bool, err error) {
	var v, f, del int64
	err = tx.QueryRowContext(ctx, "SELECT version, first_version, deleted FROM streams WHERE stream_id = ?", streamID).Scan(&v, &f, &del)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, 0, false, fmt.Errorf("sqlite: stream %q has no events: %w", streamID, eventstore.ErrNotFound)
	case err != nil:
		return 0, 0, false, translateError(err, nil)
	}
	return uint64(v), uint64(f), del != 0, nil
}

// removed subtracts the events res removed from the store's count.
func removed(ctx context.Context, tx *sql.Tx, res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return translateError(err, nil)
	}
	if n == 0 {
		return nil
	}
	// The head keeps its position (the highest handed out); its time is
	// the last event's still stored, as Info(AllStreams) reports it on
	// PostgreSQL too.
	_, err = tx.ExecContext(ctx, `UPDATE head SET count = count - ?,
		last_time = coalesce((SELECT time FROM events ORDER BY position DESC LIMIT 1), 0) WHERE id = 1`, n)
	return translateError(err, nil)
}

// DeleteStream removes a stream's events and snapshots and marks its row
// deleted, keeping its version; see [driver.Deleter]. It runs through the
// writer (writeTx), so no append interleaves with it. The rows' bytes are
// overwritten with zeros in the pages that held them (the writer's
// connection has secure_delete on); the write-ahead log keeps the old
// pages until a checkpoint (see [Store.Purge]).
func (d *drv) DeleteStream(ctx context.Context, streamID string, expected eventstore.ExpectedVersion) error {
	return d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		v, _, deleted, err := streamState(ctx, tx, streamID)
		if err != nil {
			return err
		}
		if !expected.Matches(v) {
			return &eventstore.ConflictError{StreamID: streamID, Expected: expected, Actual: v}
		}
		if deleted {
			return nil
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM events WHERE stream_id = ?", streamID)
		if err != nil {
			return translateError(err, nil)
		}
		if err := removed(ctx, tx, res); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM snapshots WHERE stream_id = ?", streamID); err != nil {
			return translateError(err, nil)
		}
		_, err = tx.ExecContext(ctx, "UPDATE streams SET deleted = 1, first_version = version + 1 WHERE stream_id = ?", streamID)
		return translateError(err, nil)
	})
}

// TruncateStream removes a stream's events below version before; see
// [driver.Deleter].
func (d *drv) TruncateStream(ctx context.Context, streamID string, before uint64) error {
	return d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		v, first, deleted, err := streamState(ctx, tx, streamID)
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
		res, err := tx.ExecContext(ctx, "DELETE FROM events WHERE stream_id = ? AND version < ?", streamID, int64(before))
		if err != nil {
			return translateError(err, nil)
		}
		if err := removed(ctx, tx, res); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "UPDATE streams SET first_version = ? WHERE stream_id = ?", int64(before), streamID)
		return translateError(err, nil)
	})
}

// DeleteSnapshots removes the snapshot (streamID, name), or all of the
// stream's when name is ""; see [driver.Deleter].
func (d *drv) DeleteSnapshots(ctx context.Context, streamID, name string) error {
	return d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM snapshots WHERE stream_id = ?1 AND (?2 = '' OR name = ?2)", streamID, name)
		return translateError(err, nil)
	})
}
