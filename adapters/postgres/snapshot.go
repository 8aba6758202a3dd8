package postgres

import (
	"context"
	"fmt"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

// SaveSnapshot stores snap as the latest snapshot of (StreamID, Name)
// unless one with a higher version is stored there already (then it does
// nothing and returns nil). A snapshot past the stream's head is refused
// with a *eventstore.ValidationError, and a deleted stream's with a
// *eventstore.StreamDeletedError, checked by the saving statement itself
// (see queries.saveSnap). Time is set by the database.
func (d *pgDriver) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if d.closed.Load() {
		return eventstore.ErrClosed
	}
	ctx, done := d.callCtx(ctx)
	defer done()
	data := snap.Data
	if data == nil {
		data = []byte{}
	}
	var head int64
	var deleted bool
	err := d.pool.QueryRow(ctx, d.q.saveSnap, snap.StreamID, snap.Name, int64(snap.Version), snap.Schema, data,
		snap.StreamID == eventstore.AllStreams).Scan(&head, &deleted)
	if err != nil {
		return d.callErr(ctx, err, "save snapshot")
	}
	if deleted {
		return &eventstore.StreamDeletedError{StreamID: snap.StreamID, Version: uint64(head)}
	}
	return driver.SnapshotPastHead(snap, uint64(head))
}

// LoadSnapshot returns the latest snapshot of (streamID, name), or an
// error matching eventstore.ErrNotFound.
func (d *pgDriver) LoadSnapshot(ctx context.Context, streamID, name string) (eventstore.Snapshot, error) {
	if d.closed.Load() {
		return eventstore.Snapshot{}, eventstore.ErrClosed
	}
	ctx, done := d.callCtx(ctx)
	defer done()
	snap := eventstore.Snapshot{StreamID: streamID, Name: name}
	var v int64
	err := d.pool.QueryRow(ctx, d.q.loadSnap, streamID, name).Scan(&v, &snap.Schema, &snap.Data, &snap.Time)
	if err != nil {
		return eventstore.Snapshot{}, d.callErr(ctx, err, fmt.Sprintf("load snapshot %q of stream %q", name, streamID))
	}
	snap.Version = uint64(v)
	snap.Time = snap.Time.UTC()
	if len(snap.Data) == 0 {
		snap.Data = nil
	}
	return snap, nil
}
