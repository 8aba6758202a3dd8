package postgres

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/eventstore/driver"
)

// Reconnection backoff of the LISTEN connection.
const (
	listenMinBackoff = 50 * time.Millisecond
	listenMaxBackoff = 5 * time.Second
)

// Listen reports appends made by other stores and processes to n: it
// starts the LISTEN connection (unless WithoutListen) and the safety-net
// poll of the head (unless WithoutPoll), both stopped by Close. Appends of
// this store's own writer are not reported: the front wakes their
// watchers itself, and only theirs.
func (d *pgDriver) Listen(n driver.Notices) {
	d.notices = n
	d.bg.Go(func() { d.settle(d.bgCtx) })
	if d.listenCfg != nil {
		d.bg.Go(func() { d.listen(d.bgCtx, d.listenCfg) })
	}
	if d.cfg.pollInterval > 0 {
		d.bg.Go(func() { d.poll(d.bgCtx, d.cfg.pollInterval) })
	}
}

// listen keeps one dedicated connection (not from the pool: LISTEN needs a
// session of its own) subscribed to the store's channel, and turns each
// notification that carries a new head position into one Changed. After
// every (re)subscription it reports a change unconditionally:
// notifications sent while it was disconnected are lost, and watchers
// catch up by reading.
func (d *pgDriver) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	backoff := listenMinBackoff
	for ctx.Err() == nil {
		if d.listenOnce(ctx, cfg) {
			backoff = listenMinBackoff // it worked for a while: retry soon
		}
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, listenMaxBackoff)
	}
}

// listenOnce connects, subscribes and relays notifications until the
// connection fails or ctx ends. It reports whether it subscribed.
func (d *pgDriver) listenOnce(ctx context.Context, cfg *pgx.ConnConfig) bool {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		d.log(ctx, slog.LevelDebug, "esv2: postgres LISTEN connection failed, retrying", err)
		return false
	}
	defer func() {
		d.listenerPID.Store(0)
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		// The listener is being dropped either way (the loop reconnects);
		// a failed goodbye leaves nothing to undo.
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{d.channel}.Sanitize()); err != nil {
		return false
	}
	d.listenerPID.Store(conn.PgConn().PID())
	d.connects.Add(1)
	d.unknownChange() // catch up with whatever was missed while away
	select {
	case d.listening <- struct{}{}:
	default:
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			d.log(ctx, slog.LevelWarn, "esv2: postgres LISTEN connection lost, reconnecting", err)
			return true
		}
		d.notes.Add(1)
		h, err := strconv.ParseUint(n.Payload, 10, 64)
		switch {
		case err != nil:
			d.unknownChange()
		case d.notified(h):
			d.othersAppended()
		}
	}
}

// poll is the safety net behind LISTEN (or the only detector when LISTEN is
// off): it reads the head position every interval and reports a change
// only when it moved, so a thousand idle watchers cost one cheap query per
// interval.
func (d *pgDriver) poll(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h, err := d.safeHead(ctx)
		d.polls.Add(1)
		if err != nil {
			continue // transient; the next tick tries again
		}
		if d.advanceHeadAfterCommit(h) {
			d.othersAppended()
		}
	}
}

// log tells the store's logger (WithLogger), if any, of a problem of the
// notifier's; nothing once ctx has ended (the store is closing).
func (d *pgDriver) log(ctx context.Context, level slog.Level, msg string, err error) {
	if d.cfg.logger == nil || ctx.Err() != nil {
		return
	}
	d.cfg.logger.LogAttrs(ctx, level, msg, slog.String("schema", d.cfg.schema), slog.String("error", err.Error()))
}
