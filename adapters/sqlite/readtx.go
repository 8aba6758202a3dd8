package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/validate"
)

// ReadTx runs fn in a transaction on one of the store's reader connections:
// the way to query what a subscription's transactional handler keeps in
// the store's own database (a read model), which an in-memory store's
// database cannot be opened from outside for. fn sees one consistent
// snapshot of the database, and cannot write (the reader connections are
// query_only). fn must not call the store's methods while it runs: an
// in-memory store's writer waits for it (see memlock.go). fn's error is
// returned as it is; the transaction is always rolled back.
//
// A file store's tables can also be read with a database/sql pool of the
// application's own on the same file.
func (s *Store) ReadTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := validate.Context(ctx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if fn == nil {
		return &eventstore.ValidationError{Field: "fn", Index: -1, Reason: "nil"}
	}
	d := s.d
	if d.closed.Load() {
		return eventstore.ErrClosed
	}
	unlock := d.readLock()
	defer unlock()
	tx, err := d.readDB.BeginTx(ctx, nil)
	if err != nil {
		if d.closed.Load() || errors.Is(err, sql.ErrConnDone) {
			return eventstore.ErrClosed
		}
		return fmt.Errorf("sqlite: read transaction: %w", translateError(err, nil))
	}
	defer func() { _ = tx.Rollback() }() // read-only: nothing to keep
	return fn(tx)
}
