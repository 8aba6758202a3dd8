package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

var _ subscription.Store[*sql.Tx] = (*Store)(nil)

// Subscriptions returns the store's subscription backend, which keeps
// subscriptions' checkpoints, leases, members and parked events in the
// store's database (schema version 2). Applications use it through
// package subscription.
//
// Every change goes through the store's writer, in a transaction of its
// own: the *sql.Tx that Commit and Unpark give their function is a real
// transaction on the writer's connection, holding the database's write
// lock, in which a transactional handler writes its read model. That
// function must use only the transaction, never the store (the store's
// writer is busy running it). If it panics, the transaction is rolled
// back and Commit or Unpark panics with the same value.
//
// SQLite has no clock of its own: leases and members' lives are measured
// with this machine's clock, which every process sharing the file also
// reads. Times are kept to the microsecond, [eventstore.TimePrecision].
// Positions and epochs are stored as SQLite's signed 64-bit integers.
func (s *Store) Subscriptions() subscription.Backend[*sql.Tx] {
	return subscriptions{s.d}
}

// subscriptions is the [subscription.Backend] of a store's driver.
type subscriptions struct{ d *drv }

// now returns the current time in Unix nanoseconds, at the store's
// precision.
func now() int64 {
	return time.Now().Truncate(eventstore.TimePrecision).UnixNano()
}

// after returns the time ttl from now, as now does.
func after(ttl time.Duration) int64 {
	return time.Now().Add(ttl).Truncate(eventstore.TimePrecision).UnixNano()
}

// nanos turns a time into its stored form, as fromNanos reads it: 0 for
// the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Truncate(eventstore.TimePrecision).UnixNano()
}

// fromNanos turns a stored time back into a time.Time; 0 stands for none.
func fromNanos(t int64) time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(0, t).UTC()
}

func notFound(name string) error {
	return fmt.Errorf("%w: no subscription %q", eventstore.ErrNotFound, name)
}

// txError prefers the context's error to what SQLite made of a statement
// it interrupted.
func txError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return translateError(err, nil)
}

// exists reports whether subscription name has partitions.
func exists(ctx context.Context, tx *sql.Tx, name string) (bool, error) {
	var ok bool
	err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM subscriptions WHERE name = ?)", name).Scan(&ok)
	if err != nil {
		return false, txError(ctx, err)
	}
	return ok, nil
}

// mustExist returns an ErrNotFound error when subscription name does not
// exist.
func mustExist(ctx context.Context, tx *sql.Tx, name string) error {
	ok, err := exists(ctx, tx, name)
	if err == nil && !ok {
		err = notFound(name)
	}
	return err
}

// Register creates subscription name with n partitions at position start,
// unless it exists; see [subscription.Backend].
func (b subscriptions) Register(ctx context.Context, name string, n int, start uint64) (int, error) {
	var stored int
	err := b.d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM subscriptions WHERE name = ?", name).Scan(&stored); err != nil {
			return txError(ctx, err)
		}
		if stored > 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO subscriptions (name, partition, position, owner, lease_until, epoch, updated)
			WITH RECURSIVE p(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM p WHERE i + 1 < ?2)
			SELECT ?1, i, ?3, '', 0, coalesce((SELECT epoch FROM subscription_epochs WHERE name = ?1), 0), ?4 FROM p`, name, n, int64(start), now())
		if err != nil {
			return txError(ctx, err)
		}
		stored = n
		return nil
	})
	if err != nil {
		return 0, err
	}
	return stored, nil
}

// Heartbeat records that member is alive until ttl from now and returns
// the live members; see [subscription.Backend].
func (b subscriptions) Heartbeat(ctx context.Context, name, member string, ttl time.Duration) ([]string, error) {
	var members []string
	err := b.d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		members = members[:0]
		if err := mustExist(ctx, tx, name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM subscription_members WHERE name = ? AND expires <= ?", name, now()); err != nil {
			return txError(ctx, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO subscription_members (name, member, expires) VALUES (?, ?, ?)
			ON CONFLICT (name, member) DO UPDATE SET expires = excluded.expires`, name, member, after(ttl)); err != nil {
			return txError(ctx, err)
		}
		// BINARY collation: byte order, as Go sorts strings.
		rows, err := tx.QueryContext(ctx, "SELECT member FROM subscription_members WHERE name = ? ORDER BY member", name)
		if err != nil {
			return txError(ctx, err)
		}
		defer rows.Close()
		for rows.Next() {
			var m string
			if err := rows.Scan(&m); err != nil {
				return txError(ctx, err)
			}
			members = append(members, m)
		}
		if err := rows.Err(); err != nil {
			return txError(ctx, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return members, nil
}

// Acquire makes member hold the partitions of want it can, releases the
// others it holds, and returns its leases; see [subscription.Backend].
func (b subscriptions) Acquire(ctx context.Context, name, member string, want []int, ttl time.Duration) ([]subscription.Lease, error) {
	if want == nil {
		want = []int{} // json "[]", not "null": NOT IN (NULL) matches nothing
	}
	list, err := json.Marshal(want)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding partitions: %w", ErrDatabase, err)
	}
	var leases []subscription.Lease
	err = b.d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		leases = leases[:0]
		if err := mustExist(ctx, tx, name); err != nil {
			return err
		}
		t, until := now(), after(ttl)
		for _, st := range []struct {
			sql  string
			args []any
		}{
			// Release what member holds and no longer wants: no owner,
			// lease ended, epoch unchanged.
			{`UPDATE subscriptions SET owner = '', lease_until = 0
				WHERE name = ? AND owner = ? AND partition NOT IN (SELECT value FROM json_each(?))`,
				[]any{name, member, string(list)}},
			// Extend what it holds, its lease ended or not: no one took it.
			{`UPDATE subscriptions SET lease_until = ?
				WHERE name = ? AND owner = ? AND partition IN (SELECT value FROM json_each(?))`,
				[]any{until, name, member, string(list)}},
			// Take what no one holds, or whose owner's lease has ended.
			{`UPDATE subscriptions SET owner = ?, lease_until = ?, epoch = epoch + 1
				WHERE name = ? AND owner <> ? AND (owner = '' OR lease_until <= ?)
					AND partition IN (SELECT value FROM json_each(?))`,
				[]any{member, until, name, member, t, string(list)}},
		} {
			if _, err := tx.ExecContext(ctx, st.sql, st.args...); err != nil {
				return txError(ctx, err)
			}
		}
		rows, err := tx.QueryContext(ctx, "SELECT partition, epoch, position FROM subscriptions WHERE name = ? AND owner = ? ORDER BY partition", name, member)
		if err != nil {
			return txError(ctx, err)
		}
		defer rows.Close()
		for rows.Next() {
			var l subscription.Lease
			var epoch, pos int64
			if err := rows.Scan(&l.Partition, &epoch, &pos); err != nil {
				return txError(ctx, err)
			}
			l.Epoch, l.Position = uint64(epoch), uint64(pos)
			leases = append(leases, l)
		}
		if err := rows.Err(); err != nil {
			return txError(ctx, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return leases, nil
}

// Leave releases the partitions member holds and forgets the member; see
// [subscription.Backend].
func (b subscriptions) Leave(ctx context.Context, name, member string) error {
	return b.d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE subscriptions SET owner = '', lease_until = 0 WHERE name = ? AND owner = ?", name, member); err != nil {
			return txError(ctx, err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM subscription_members WHERE name = ? AND member = ?", name, member); err != nil {
			return txError(ctx, err)
		}
		return nil
	})
}

// Commit runs fn and writes the checkpoints cps in one transaction,
// provided member still owns each partition under its epoch; see
// [subscription.Backend]. The *sql.Tx fn receives is the writer's
// transaction (see [Store.Subscriptions]).
func (b subscriptions) Commit(ctx context.Context, name, member string, cps []subscription.Lease, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return b.d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if fn != nil {
			if err := fn(ctx, tx); err != nil {
				return err
			}
		}
		t := now()
		for _, cp := range cps {
			// One conditional update per checkpoint fences a member whose
			// partition changed hands: its epoch is no longer the stored
			// one. The SET expressions read the row's old position.
			res, err := tx.ExecContext(ctx, `UPDATE subscriptions
				SET position = max(position, ?1), updated = CASE WHEN ?1 > position THEN ?2 ELSE updated END
				WHERE name = ?3 AND partition = ?4 AND owner = ?5 AND epoch = ?6`,
				int64(cp.Position), t, name, cp.Partition, member, int64(cp.Epoch))
			if err != nil {
				return txError(ctx, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return txError(ctx, err)
			}
			if n != 1 {
				return leaseLost(ctx, tx, name, member, cp)
			}
		}
		if len(cps) == 0 {
			return mustExist(ctx, tx, name)
		}
		return nil
	})
}

// leaseLost is Commit's error for checkpoint cp, which member does not
// own under cp.Epoch. A deleted subscription gives an error satisfying
// both ErrLeaseLost (the subscription lost it) and ErrNotFound.
func leaseLost(ctx context.Context, tx *sql.Tx, name, member string, cp subscription.Lease) error {
	ok, err := exists(ctx, tx, name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("sqlite: subscription %q: %w: %w", name, subscription.ErrLeaseLost, notFound(name))
	}
	return fmt.Errorf("sqlite: subscription %q: %w: partition %d is not held by %q under epoch %d",
		name, subscription.ErrLeaseLost, cp.Partition, member, cp.Epoch)
}

// Park stores p among name's parked events; see [subscription.Backend].
// A zero p.Time is stored as now.
func (b subscriptions) Park(ctx context.Context, name string, p subscription.Parked) error {
	t := p.Time.Truncate(eventstore.TimePrecision).UnixNano()
	if p.Time.IsZero() {
		t = now()
	}
	return b.d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := mustExist(ctx, tx, name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO subscription_parked (name, position, stream_id, version, type, event_id, error, attempts, time, replay_requested)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (name, position) DO UPDATE SET stream_id = excluded.stream_id, version = excluded.version,
				type = excluded.type, event_id = excluded.event_id, error = excluded.error,
				attempts = excluded.attempts, time = excluded.time, replay_requested = excluded.replay_requested`,
			name, int64(p.Position), p.StreamID, int64(p.Version), p.Type, p.EventID, p.Error, p.Attempts, t, nanos(p.ReplayRequested))
		if err != nil {
			return txError(ctx, err)
		}
		return nil
	})
}

// Parked returns name's parked events in position order; see
// [subscription.Backend]. It reads through the reader pool.
func (b subscriptions) Parked(ctx context.Context, name string) ([]subscription.Parked, error) {
	return b.parked(ctx, name, "")
}

// ReplayRequests returns name's parked events whose replay is requested,
// in position order; see [subscription.Backend]. It reads through the
// reader pool, by the partial index of migration 7.
func (b subscriptions) ReplayRequests(ctx context.Context, name string) ([]subscription.Parked, error) {
	return b.parked(ctx, name, " AND replay_requested != 0")
}

// parked reads name's parked events that also match where.
func (b subscriptions) parked(ctx context.Context, name, where string) ([]subscription.Parked, error) {
	d := b.d
	if d.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	var out []subscription.Parked
	var found bool
	err := func() error {
		unlock := d.readLock()
		defer unlock()
		if err := d.queryRow(ctx, "SELECT EXISTS (SELECT 1 FROM subscriptions WHERE name = ?)", name).Scan(&found); err != nil || !found {
			return err
		}
		rows, err := d.query(ctx, `SELECT position, stream_id, version, type, event_id, error, attempts, time, replay_requested
			FROM subscription_parked WHERE name = ?`+where+` ORDER BY position`, name)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p subscription.Parked
			var pos, ver, t, req int64
			if err := rows.Scan(&pos, &p.StreamID, &ver, &p.Type, &p.EventID, &p.Error, &p.Attempts, &t, &req); err != nil {
				return err
			}
			p.Position, p.Version, p.Time, p.ReplayRequested = uint64(pos), uint64(ver), fromNanos(t), fromNanos(req)
			out = append(out, p)
		}
		return rows.Err()
	}()
	switch {
	case err != nil:
		return nil, d.readError(ctx, err)
	case !found:
		return nil, notFound(name)
	}
	return out, nil
}

// RequestReplay marks name's parked event at position (every one of them
// for position 0) as to be replayed; see [subscription.Backend].
func (b subscriptions) RequestReplay(ctx context.Context, name string, position uint64) (int, error) {
	var n int64
	err := b.d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := mustExist(ctx, tx, name); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "UPDATE subscription_parked SET replay_requested = ?1 WHERE name = ?2 AND (?3 = 0 OR position = ?3)",
			now(), name, int64(position))
		if err != nil {
			return txError(ctx, err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return txError(ctx, err)
		}
		if n == 0 && position != 0 {
			return fmt.Errorf("%w: no event parked at position %d by subscription %q", eventstore.ErrNotFound, position, name)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// ClearReplay records a failed replay of p and clears its request, if the
// request is still p's; see [subscription.Backend].
func (b subscriptions) ClearReplay(ctx context.Context, name string, p subscription.Parked) (bool, error) {
	var n int64
	err := b.d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := mustExist(ctx, tx, name); err != nil {
			return err
		}
		t := nanos(p.Time)
		if t == 0 {
			t = now()
		}
		res, err := tx.ExecContext(ctx, `UPDATE subscription_parked SET error = ?, attempts = ?, time = ?, replay_requested = 0
			WHERE name = ? AND position = ? AND replay_requested = ? AND replay_requested != 0`,
			p.Error, p.Attempts, t, name, int64(p.Position), nanos(p.ReplayRequested))
		if err != nil {
			return txError(ctx, err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return txError(ctx, err)
		}
		return nil
	})
	return n > 0, err
}

// Unpark runs fn and deletes the parked event of name at position in one
// transaction; see [subscription.Backend]. fn is not run when there is no
// such event.
func (b subscriptions) Unpark(ctx context.Context, name string, position uint64, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return b.d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var ok bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM subscription_parked WHERE name = ? AND position = ?)", name, int64(position)).Scan(&ok); err != nil {
			return txError(ctx, err)
		}
		if !ok {
			return fmt.Errorf("%w: no event parked at position %d by subscription %q", eventstore.ErrNotFound, position, name)
		}
		if fn != nil {
			if err := fn(ctx, tx); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM subscription_parked WHERE name = ? AND position = ?", name, int64(position)); err != nil {
			return txError(ctx, err)
		}
		return nil
	})
}

// Partitions returns the partitions of name, or of every subscription for
// ""; see [subscription.Backend]. It reads through the reader pool.
func (b subscriptions) Partitions(ctx context.Context, name string) ([]subscription.Partition, error) {
	d := b.d
	if d.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	const cols = "SELECT name, partition, position, owner, lease_until, epoch, updated FROM subscriptions"
	var out []subscription.Partition
	err := func() error {
		unlock := d.readLock()
		defer unlock()
		var rows *sql.Rows
		var err error
		if name == "" {
			rows, err = d.query(ctx, cols+" ORDER BY name, partition")
		} else {
			rows, err = d.query(ctx, cols+" WHERE name = ? ORDER BY partition", name)
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p subscription.Partition
			var pos, until, epoch, updated int64
			if err := rows.Scan(&p.Subscription, &p.Partition, &pos, &p.Owner, &until, &epoch, &updated); err != nil {
				return err
			}
			p.Position, p.Epoch, p.Updated = uint64(pos), uint64(epoch), fromNanos(updated)
			if p.Owner != "" {
				p.LeaseUntil = fromNanos(until)
			}
			out = append(out, p)
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, d.readError(ctx, err)
	}
	return out, nil
}

// Reset moves every partition of name to position, ends its leases and
// grows its epochs; see [subscription.Backend].
func (b subscriptions) Reset(ctx context.Context, name string, position uint64) error {
	return b.d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE subscriptions SET position = ?, owner = '', lease_until = 0, epoch = epoch + 1, updated = ?
			WHERE name = ?`, int64(position), now(), name)
		if err != nil {
			return txError(ctx, err)
		}
		return mustHaveChanged(ctx, res, name)
	})
}

// Delete removes subscription name, its members and its parked events;
// see [subscription.Backend].
func (b subscriptions) Delete(ctx context.Context, name string) error {
	return b.d.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// A subscription created again under this name starts its epochs
		// where this one left them (migration 3).
		if _, err := tx.ExecContext(ctx, `INSERT INTO subscription_epochs (name, epoch)
			SELECT name, max(epoch) FROM subscriptions WHERE name = ?1 GROUP BY name
			ON CONFLICT (name) DO UPDATE SET epoch = max(epoch, excluded.epoch)`, name); err != nil {
			return txError(ctx, err)
		}
		for _, table := range []string{"subscription_members", "subscription_parked"} {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE name = ?", name); err != nil {
				return txError(ctx, err)
			}
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM subscriptions WHERE name = ?", name)
		if err != nil {
			return txError(ctx, err)
		}
		return mustHaveChanged(ctx, res, name)
	})
}

// mustHaveChanged returns an ErrNotFound error when res changed no row of
// subscription name.
func mustHaveChanged(ctx context.Context, res sql.Result, name string) error {
	n, err := res.RowsAffected()
	switch {
	case err != nil:
		return txError(ctx, err)
	case n == 0:
		return notFound(name)
	}
	return nil
}
