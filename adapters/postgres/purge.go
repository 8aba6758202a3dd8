package postgres

import (
	"context"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/validate"
)

// Purge is the online housekeeping after deletions (DeleteStream,
// TruncateStream, DeleteSnapshots): it runs VACUUM (INDEX_CLEANUP ON) on
// the store's events, snapshots and streams tables, which removes the
// deleted rows and their index entries for good, so that their space is
// reused. It holds no lock that stops appends or reads. See concepts.md,
// "Deletion, truncation and erasure".
//
// Removed is not overwritten: VACUUM marks the space of a removed row
// free, and its bytes stay in the page until a later row takes that
// space (a page whose rows were all removed keeps them until it is
// reused). For the bytes to leave the files now, use [Store.PurgeFull].
//
// VACUUM can remove a row only once no transaction that might still see
// it is running, in any session of the database (a long report, an idle
// transaction left open, a replication slot or hot_standby_feedback hold
// it back): the row then stays until a later Purge, or autovacuum.
// Purge needs the right to VACUUM the tables (their owner's).
func (s *Store) Purge(ctx context.Context) error {
	return s.vacuum(ctx, "purge", "VACUUM (INDEX_CLEANUP ON) ")
}

// PurgeFull is the housekeeping that makes what deletions removed leave
// the database's files: VACUUM FULL of the store's events, snapshots and
// streams tables writes each table and its indexes into new files, without
// the removed rows, and deletes the old files. The rows' bytes are gone
// from the data files once the server's next checkpoint has written the
// new pages; the write-ahead log (pg_wal, and any WAL archive), base
// backups and replicas keep what they hold (see concepts.md).
//
// It takes an ACCESS EXCLUSIVE lock on each table while it rewrites it:
// appends and reads wait meanwhile, for a time that grows with the table
// (run it at a quiet time). As for [Store.Purge], rows still visible to a
// running transaction are kept (copied) until a later run. It needs the
// tables' owner's rights, and disk space for a copy of each table.
func (s *Store) PurgeFull(ctx context.Context) error {
	return s.vacuum(ctx, "purge full", "VACUUM FULL ")
}

func (s *Store) vacuum(ctx context.Context, op, stmt string) error {
	if err := validate.Context(ctx); err != nil {
		return err
	}
	d := s.d
	if d.closed.Load() {
		return eventstore.ErrClosed
	}
	// VACUUM cannot run in a transaction: one statement, sent alone.
	_, err := d.pool.Exec(ctx, stmt+d.schema+".events, "+d.schema+".snapshots, "+d.schema+".streams")
	if err != nil {
		return d.callErr(ctx, err, op)
	}
	return nil
}
