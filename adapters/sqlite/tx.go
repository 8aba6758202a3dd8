package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/esv2/esv2/eventstore"
)

// panicValue is what a writeTx function panicked with.
type panicValue struct{ v any }

// writeTx runs fn in a write transaction of its own on the writer's
// connection, through the writer goroutine: the one connection that writes
// keeps doing all the writing, and fn's transaction is never grouped with
// appends (a function that fails rolls back its own work only). The
// transaction takes the write lock at BEGIN (BEGIN IMMEDIATE), so fn's
// reads see what its writes will be based on.
//
// fn receives ctx, and its statements (and writeTx's waiting for the
// writer) stop when ctx ends, as Append's waiting does; the transaction
// itself belongs to the writer. fn must use only tx: a call on the store
// from inside fn would wait for the writer, which is running fn.
//
// fn's error is returned as it is, after the rollback. If fn panics, the
// writer recovers, rolls back, and writeTx panics with the same value in
// the caller's goroutine: the writer lives on, and the panic reaches the
// code that gave fn. A failed COMMIT is [ErrBusy] (nothing written) or
// [eventstore.ErrUnknownOutcome].
func (d *drv) writeTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if d.closed.Load() {
		return eventstore.ErrClosed
	}
	r := &request{ctx: ctx, run: fn, done: make(chan result, 1)}
	res := d.submit(ctx, r)
	if res.panicked != nil {
		panic(res.panicked.v)
	}
	return res.err
}

// runTx is the writer's side of writeTx.
func (d *drv) runTx(r *request) {
	if err := r.ctx.Err(); err != nil {
		if r.state.CompareAndSwap(reqQueued, reqWithdrawn) {
			r.done <- result{err: err}
		}
		return
	}
	if !r.state.CompareAndSwap(reqQueued, reqTaken) {
		return
	}
	if d.memMu != nil {
		// As for a group commit: the in-memory store's readers wait for
		// the transaction (memlock.go).
		d.memMu.Lock()
		defer d.memMu.Unlock()
	}
	if r.raw != nil {
		r.done <- result{err: r.raw(r.ctx, d.wconn)}
		return
	}
	r.done <- d.execTx(r.ctx, r.run)
}

func (d *drv) execTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) (res result) {
	// Not ctx: database/sql rolls a transaction back on its own goroutine
	// when the transaction's context ends, which would race the writer's
	// next use of its connection. fn's statements take ctx instead.
	bg := context.WithoutCancel(ctx)
	tx, err := d.wconn.BeginTx(bg, nil)
	if err != nil && strings.Contains(err.Error(), "within a transaction") {
		// An earlier transaction was left open (a ROLLBACK that failed);
		// undo it rather than wedge the writer, as beginTx does.
		_, _ = d.w.rollback.ExecContext(bg)
		tx, err = d.wconn.BeginTx(bg, nil)
	}
	if err != nil {
		return result{err: translateError(err, nil)}
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			res = result{panicked: &panicValue{p}}
		}
	}()
	if err := fn(ctx, tx); err != nil {
		// A failed ROLLBACK is dealt with by the next BEGIN.
		_ = tx.Rollback()
		return result{err: err}
	}
	if err := tx.Commit(); err != nil {
		// database/sql forgets the transaction whatever COMMIT did, but
		// SQLite keeps it open after SQLITE_BUSY: end it here. As for
		// appends (append.go), BUSY means nothing was written; any other
		// failure may have reached the WAL file.
		_, _ = d.w.rollback.ExecContext(bg)
		err = translateError(err, nil)
		if errors.Is(err, ErrBusy) {
			return result{err: err}
		}
		return result{err: fmt.Errorf("sqlite: %w: COMMIT failed: %w", eventstore.ErrUnknownOutcome, err)}
	}
	return result{}
}
