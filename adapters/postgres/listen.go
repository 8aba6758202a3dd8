package postgres

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reconnection backoff of the LISTEN connection.
const (
	listenMinBackoff = 50 * time.Millisecond
	listenMaxBackoff = 5 * time.Second
)

// listen keeps one dedicated connection (not from the pool: LISTEN needs a
// session of its own) subscribed to the store's channel, and turns each
// notification that carries a new head position into one Notify. After
// every (re)subscription it notifies unconditionally: notifications sent
// while it was disconnected are lost, and watchers catch up by reading.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	backoff := listenMinBackoff
	for ctx.Err() == nil {
		if s.listenOnce(ctx, cfg) {
			backoff = listenMinBackoff // it worked for a while: retry soon
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, listenMaxBackoff)
	}
}

// listenOnce connects, subscribes and relays notifications until the
// connection fails or ctx ends. It reports whether it subscribed.
func (s *Store) listenOnce(ctx context.Context, cfg *pgx.ConnConfig) bool {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false
	}
	defer func() {
		s.listenerPID.Store(0)
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		// The listener is being dropped either way (the loop reconnects);
		// a failed goodbye leaves nothing to undo.
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return false
	}
	s.listenerPID.Store(conn.PgConn().PID())
	s.connects.Add(1)
	s.notifiers.NotifyAll() // catch up with whatever was missed while away
	select {
	case s.listening <- struct{}{}:
	default:
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true
		}
		s.notes.Add(1)
		h, err := strconv.ParseUint(n.Payload, 10, 64)
		if err != nil || s.advanceHeadAfterCommit(h) {
			s.notifiers.NotifyAll()
		}
	}
}

// poll is the safety net behind LISTEN (or the only detector when LISTEN is
// off): it reads the head position every interval and wakes watchers only
// when it moved, so a thousand idle watchers cost one cheap query per
// interval.
func (s *Store) poll(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var h int64
		err := s.pool.QueryRow(ctx, s.q.head).Scan(&h)
		s.polls.Add(1)
		if err != nil {
			continue // transient; the next tick tries again
		}
		if s.advanceHeadAfterCommit(uint64(h)) {
			s.notifiers.NotifyAll()
		}
	}
}
