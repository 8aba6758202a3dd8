package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// SaveSnapshot stores sn as the latest snapshot of (sn.StreamID, sn.Name)
// unless a snapshot with a higher version is stored there already; see
// [driver.Driver.SaveSnapshot]. The save goes through the writer like an
// append (and may share its transaction, in a savepoint of its own), which
// checks in that transaction that sn is not past the stream's head. Its
// cancellation rule is Append's.
func (d *drv) SaveSnapshot(ctx context.Context, sn eventstore.Snapshot) error {
	sn.Time = time.Now()
	r := &request{ctx: ctx, streamID: sn.StreamID, snapshot: &sn, done: make(chan result, 1)}
	return d.submit(ctx, r).err
}

// snapshotHead is the head a snapshot may not pass: the stream's version,
// or the last position for the all-streams log; and whether the stream is
// deleted (a deleted stream takes no snapshot, as it takes no event). It
// runs in the writer's transaction, before the save, so nothing can
// append or remove between the check and the write.
const snapshotHead = `SELECT CASE WHEN ?1 THEN (SELECT position FROM head WHERE id = 1)
	ELSE coalesce((SELECT version FROM streams WHERE stream_id = ?2), 0) END,
	coalesce((SELECT deleted FROM streams WHERE stream_id = ?2), 0)`

// saveSnapshot runs one snapshot save inside the writer's transaction.
func (w *writer) saveSnapshot(ctx context.Context, sn *eventstore.Snapshot) error {
	// A snapshot past the head would be trusted by a load and make every
	// later append conflict (issue 9 item 7). Snapshot saves are rare: the
	// statement is not worth keeping prepared.
	var head, deleted int64
	if err := w.conn.QueryRowContext(ctx, snapshotHead, sn.StreamID == eventstore.AllStreams, sn.StreamID).Scan(&head, &deleted); err != nil {
		return translateError(err, nil)
	}
	if deleted != 0 {
		return &eventstore.StreamDeletedError{StreamID: sn.StreamID, Version: uint64(head)}
	}
	if err := driver.SnapshotPastHead(*sn, uint64(head)); err != nil {
		return err
	}
	var data any
	if sn.Data != nil {
		data = sn.Data
	}
	_, err := w.saveS.ExecContext(ctx, sn.StreamID, sn.Name, int64(sn.Version), sn.Schema, data, sn.Time.Truncate(eventstore.TimePrecision).UnixNano())
	return translateError(err, nil)
}

// LoadSnapshot returns the latest snapshot of (streamID, name), or an error
// satisfying errors.Is(err, [eventstore.ErrNotFound]); see
// [driver.Driver.LoadSnapshot].
func (d *drv) LoadSnapshot(ctx context.Context, streamID, name string) (eventstore.Snapshot, error) {
	sn := eventstore.Snapshot{StreamID: streamID, Name: name}
	var v, t int64
	unlock := d.readLock()
	err := d.queryRow(ctx, "SELECT version, schema, data, time FROM snapshots WHERE stream_id = ? AND name = ?", streamID, name).
		Scan(&v, &sn.Schema, &sn.Data, &t)
	unlock()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return eventstore.Snapshot{}, fmt.Errorf("%w: no snapshot %q of stream %q", eventstore.ErrNotFound, name, streamID)
	case err != nil:
		return eventstore.Snapshot{}, d.readError(ctx, err)
	}
	sn.Version, sn.Time = uint64(v), time.Unix(0, t).UTC()
	return sn, nil
}
