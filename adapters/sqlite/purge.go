package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/validate"
)

// Purge is the housekeeping after deletions (DeleteStream, TruncateStream,
// DeleteSnapshots) that makes what they removed leave the database's
// files, as concepts.md ("Deletion, truncation and erasure") describes.
//
// The writer's connection has secure_delete on, so a deletion overwrites
// the removed rows (their pages, and freed pages) with zeros; but the
// write-ahead log (the -wal file) still holds the pages as they were
// before, until a checkpoint copies the new ones into the database and the
// log starts over. Purge runs that checkpoint now, wal_checkpoint(TRUNCATE):
// every page is copied back and the -wal file is cut to zero bytes. It
// needs every reader of the file (other processes' included) to be past
// the deletion: while one still reads an older snapshot, it fails with an
// error satisfying errors.Is(err, [ErrBusy]) and changes nothing; call it
// again later. On an in-memory store it does nothing.
//
// Rows deleted before esv2's schema 6 (which turned secure_delete on), or
// by other programs without it, may still sit in free pages: run VACUUM
// on the file (the sqlite3 shell, say, while no store appends), then
// Purge.
func (s *Store) Purge(ctx context.Context) error {
	if err := validate.Context(ctx); err != nil {
		return err
	}
	d := s.d
	if d.memory || d.w.walPath == "" {
		return nil
	}
	r := &request{ctx: ctx, done: make(chan result, 1),
		run: func(context.Context, *sql.Tx) error { return nil },
		raw: func(ctx context.Context, c *sql.Conn) error {
			var busy, frames, done int64
			if err := c.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done); err != nil {
				return translateError(err, nil)
			}
			if busy != 0 {
				return fmt.Errorf("sqlite: purge: %w: a reader still uses the write-ahead log; try again", ErrBusy)
			}
			return nil
		}}
	if d.closed.Load() {
		return eventstore.ErrClosed
	}
	return d.submit(ctx, r).err
}
