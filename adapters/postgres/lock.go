package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
)

var _ driver.StreamLocker = (*pgDriver)(nil)

// maxLockConns bounds the connections that hold or wait for stream locks
// at once, per store: package aggregate takes at most one per hot
// aggregate (its Updates of one aggregate take turns in the process
// first), so this is the number of aggregates whose Updates can be
// serialised across processes at the same time. More wait for a
// connection.
const maxLockConns = 16

// lockIdle is how long an idle lock connection stays open for the next
// turn.
const lockIdle = 30 * time.Second

// streamLockKey is the advisory-lock key of a stream's lock: derived from
// the schema and the stream ID, so that stores on different schemas of one
// database do not serialise each other. Two streams whose keys collide
// (one chance in 2^64) share a lock, which costs them waits, never
// correctness: the lock only spares optimistic attempts.
func (d *pgDriver) streamLockKey(streamID string) int64 {
	return advisoryKey("stream", d.cfg.schema+"\x00"+streamID)
}

// lockPool returns the pool of the connections that hold stream locks,
// made at the first use. They are not the store's pool's: a lock holder
// still needs a connection of that pool to load and append, and holders
// taking those would starve each other.
func (d *pgDriver) lockPool(ctx context.Context) (*pgxpool.Pool, error) {
	d.lockMu.Lock()
	defer d.lockMu.Unlock()
	if d.locks != nil {
		return d.locks, nil
	}
	if d.closed.Load() {
		return nil, fmt.Errorf("postgres: lock stream: %w", eventstore.ErrClosed)
	}
	cfg := d.pool.Config()
	cfg.MaxConns, cfg.MinConns = maxLockConns, 0
	cfg.MaxConnIdleTime = lockIdle
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, translateError(err, opErr("lock stream"))
	}
	d.locks = p
	return p, nil
}

// LockStream takes the session-level advisory lock of streamID on a
// connection of its own, held until unlock (see [eventstore.StreamLocker]).
//
// If ctx ends while the lock is awaited, pgx closes the connection after
// sending the server a cancel request, so the session stops waiting
// (closing the socket alone would leave the server waiting, to take the
// lock and only then find the client gone); the connection is closed
// whatever the wait's outcome, so that a lock
// granted just before the cancel ends with the session instead of being
// held by a connection back in the pool. Likewise unlock hands the
// connection back only when pg_advisory_unlock said it released the lock,
// and otherwise closes it: the session ends and the lock with it. Close
// cancels the waits and ends the sessions of the locks still held (their
// unlocks then return ErrClosed), rather than waiting for them.
func (d *pgDriver) LockStream(ctx context.Context, streamID string) (func(context.Context) error, error) {
	p, err := d.lockPool(ctx)
	if err != nil {
		return nil, err
	}
	// Close ends the wait too (bgCtx).
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(d.bgCtx, cancel)()
	conn, err := p.Acquire(wctx)
	if err != nil {
		return nil, d.lockError(ctx, err, "lock stream")
	}
	key := d.streamLockKey(streamID)
	if _, err := conn.Exec(wctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		destroy(conn)
		return nil, d.lockError(ctx, err, "lock stream")
	}
	h := &heldLock{conn: conn}
	d.lockMu.Lock()
	closed := d.closed.Load()
	if !closed {
		if d.held == nil {
			d.held = make(map[*heldLock]struct{})
		}
		d.held[h] = struct{}{}
	}
	d.lockMu.Unlock()
	if err := wctx.Err(); err != nil || closed {
		// Granted as ctx ended or the store closed: give it back, as the
		// caller will not.
		destroy(conn)
		return nil, d.lockError(ctx, err, "lock stream")
	}
	return func(ctx context.Context) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.done {
			if d.closed.Load() {
				return fmt.Errorf("postgres: unlock stream %q: %w (the lock ended with its session)", streamID, eventstore.ErrClosed)
			}
			return fmt.Errorf("postgres: unlock stream %q: already unlocked", streamID)
		}
		h.done = true
		d.lockMu.Lock()
		delete(d.held, h)
		d.lockMu.Unlock()
		var released bool
		err := conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", key).Scan(&released)
		if err == nil && !released {
			err = fmt.Errorf("postgres: unlock stream %q: the session did not hold its lock", streamID)
		}
		if err != nil {
			destroy(conn)
			return translateError(err, opErr("unlock stream"))
		}
		conn.Release()
		return nil
	}, nil
}

// heldLock is a stream lock LockStream returned: its connection, and
// whether unlock (or Close) has ended it. mu orders the two.
type heldLock struct {
	mu   sync.Mutex
	conn *pgxpool.Conn
	done bool
}

// lockError is the error of a LockStream that failed: ctx's own error if
// it ended (the server's query_canceled says less), ErrClosed if the store
// closed, or err.
func (d *pgDriver) lockError(ctx context.Context, err error, op string) error {
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case d.closed.Load():
		return fmt.Errorf("postgres: %s: %w", op, eventstore.ErrClosed)
	}
	return translateError(err, opErr(op))
}

// closeLocks ends the sessions of the stream locks still held, so that
// the lock pool's Close need not wait for their unlocks (which then
// return ErrClosed), and closes the pool. LockStream's waits end with
// bgCtx, already cancelled.
func (d *pgDriver) closeLocks() {
	d.lockMu.Lock()
	locks, held := d.locks, d.held
	d.held = nil
	d.lockMu.Unlock()
	for h := range held {
		h.mu.Lock()
		if !h.done {
			h.done = true
			c := h.conn.Hijack() // out of the pool, whose Close would wait for it
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = c.Close(ctx)
			cancel()
		}
		h.mu.Unlock()
	}
	if locks != nil {
		locks.Close()
	}
}

// StreamLocked asks whether a session holds or awaits streamID's lock: a
// shared lock on the key cannot be had then (try never waits, and yields
// to waiters too). The shared lock is the statement's transaction's, so
// no connection of the store's pool keeps it, whatever happens to the
// statement. It takes one round trip on the store's pool.
func (d *pgDriver) StreamLocked(ctx context.Context, streamID string) (bool, error) {
	var locked bool
	err := d.pool.QueryRow(ctx, "SELECT NOT pg_try_advisory_xact_lock_shared($1)", d.streamLockKey(streamID)).Scan(&locked)
	if err != nil {
		return false, translateError(err, opErr("stream locked"))
	}
	return locked, nil
}

// destroy closes a connection that may hold a lock instead of handing it
// back to the pool: the session ends and its locks with it. Release then
// drops the closed connection from the pool. Close's error adds nothing:
// a connection whose Close fails is closed all the same (pgx drops the
// socket, and the server ends the session).
func destroy(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = conn.Conn().Close(ctx)
	cancel()
	conn.Release()
}
