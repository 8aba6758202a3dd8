package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

var _ subscription.Store[pgx.Tx] = (*Store)(nil)

// Subscriptions returns the store's subscription backend, which keeps
// subscriptions in the tables subscriptions, subscription_members and
// subscription_parked of the store's schema (migration 4). A
// transactional handler's pgx.Tx is a READ COMMITTED transaction on the
// store's pool, separate from the appends' (it never takes their advisory
// lock), in which the checkpoint is written after the handler's rows.
//
// Leases and members' lives are measured by the database's clock
// (clock_timestamp()), so that members on machines whose clocks disagree
// still agree on who holds what. A lease is fenced by its epoch: a
// checkpoint is written only under the epoch its member was given, by a
// conditional UPDATE in the handler's transaction.
func (s *Store) Subscriptions() subscription.Backend[pgx.Tx] { return s.subs }

// subBackend is the Store's subscription.Backend.
type subBackend struct {
	d *pgDriver
	q subQueries
}

// subQueries holds the subscription backend's SQL, built once per store.
type subQueries struct {
	registerFirst, registerRest, count string
	heartbeat                          string
	lockAll, lockAllForDelete          string
	acquire                            string
	lockOwned, release, forget         string
	checkpoint, exists                 string
	park, parked, unpark               string
	replayRequests, requestReplay      string
	clearReplay                        string
	partitionsAll, partitionsOf        string
	reset                              string
	deleteSub, deleteMembers           string
	deleteParked, keepEpoch            string
}

func newSubBackend(d *pgDriver) *subBackend {
	s := d.schema
	subs, members, parked := s+".subscriptions", s+".subscription_members", s+".subscription_parked"
	// A new subscription's epochs start where a deleted one of its name
	// left them (migration 5).
	firstEpoch := "coalesce((SELECT epoch FROM " + s + ".subscription_epochs WHERE name = $1), 0)"
	// ttl is passed in whole microseconds, the resolution of timestamptz.
	const ttl = "::bigint * interval '1 microsecond'"
	// Statements that change several partitions of a subscription first
	// lock them in partition order (lockAll, lockOwned), as a checkpoint
	// does (Commit sorts them): every transaction takes its row locks in
	// one order, so none deadlocks with another.
	return &subBackend{d: d, q: subQueries{
		// Partition 0 is the subscription's claim: a Register racing
		// another waits on its row, then sees the winner's committed
		// partitions in count (a new statement, so a new snapshot).
		registerFirst: "INSERT INTO " + subs + " (name, partition, position, updated, epoch) VALUES ($1, 0, $2, clock_timestamp(), " + firstEpoch + ")" +
			" ON CONFLICT (name, partition) DO NOTHING RETURNING updated",
		registerRest: "INSERT INTO " + subs + " (name, partition, position, updated, epoch)" +
			" SELECT $1, g, $2, $3, " + firstEpoch + " FROM generate_series(1, $4::int - 1) AS g",
		count: "SELECT count(*) FROM " + subs + " WHERE name = $1",

		// One statement: the member's row is written only while partition
		// 0 exists (FOR KEY SHARE keeps a Delete from removing it until
		// this commits), the expired members are forgotten (skipping the
		// rows another transaction is writing, so that two heartbeats
		// never wait on each other), and the live ones are returned. No
		// row: the subscription does not exist.
		heartbeat: `WITH t AS (SELECT clock_timestamp() AS now),
sub AS (SELECT 1 FROM ` + subs + ` WHERE name = $1 AND partition = 0 FOR KEY SHARE),
beat AS (
	INSERT INTO ` + members + ` AS m (name, member, expires)
	SELECT $1, $2, t.now + $3` + ttl + ` FROM t, sub
	ON CONFLICT (name, member) DO UPDATE SET expires = excluded.expires
	RETURNING m.member
),
gone AS (
	DELETE FROM ` + members + ` m WHERE (m.name, m.member) IN (
		SELECT o.name, o.member FROM ` + members + ` o, t
		WHERE o.name = $1 AND o.member <> $2 AND o.expires <= t.now
		FOR UPDATE OF o SKIP LOCKED)
)
SELECT member FROM beat
UNION ALL
SELECT o.member FROM ` + members + ` o, t
WHERE o.name = $1 AND o.member <> $2 AND o.expires > t.now AND EXISTS (SELECT 1 FROM beat)`,

		lockAll:          "SELECT partition FROM " + subs + " WHERE name = $1 ORDER BY partition FOR NO KEY UPDATE",
		lockAllForDelete: "SELECT partition FROM " + subs + " WHERE name = $1 ORDER BY partition FOR UPDATE",

		// Under lockAll. The rows it changes: those member owns (kept and
		// extended when wanted, released otherwise) and the wanted ones
		// that are free or whose lease ended (taken, a new epoch). A row
		// member owns keeps its epoch even if its lease ended: no one
		// took it, so its checkpoints still hold.
		acquire: `UPDATE ` + subs + ` s SET
	owner = CASE WHEN s.partition = ANY($3::int[]) THEN $2 END,
	lease_until = CASE WHEN s.partition = ANY($3::int[]) THEN t.now + $4` + ttl + ` END,
	epoch = CASE WHEN s.owner IS DISTINCT FROM $2 THEN s.epoch + 1 ELSE s.epoch END
FROM (SELECT clock_timestamp() AS now) t
WHERE s.name = $1 AND (s.owner = $2 OR (s.partition = ANY($3::int[]) AND (s.owner IS NULL OR s.lease_until <= t.now)))
RETURNING s.partition, s.epoch, s.position, s.owner IS NOT NULL`,

		lockOwned: "SELECT partition FROM " + subs + " WHERE name = $1 AND owner = $2 ORDER BY partition FOR NO KEY UPDATE",
		release:   "UPDATE " + subs + " SET owner = NULL, lease_until = NULL WHERE name = $1 AND owner = $2",
		forget:    "DELETE FROM " + members + " WHERE name = $1 AND member = $2",

		// The fence: the row changes only under the lease's owner and
		// epoch, whether or not the lease has ended.
		checkpoint: "UPDATE " + subs + " SET position = greatest(position, $4::bigint)," +
			" updated = CASE WHEN $4::bigint > position THEN clock_timestamp() ELSE updated END" +
			" WHERE name = $1 AND partition = $2 AND owner = $3 AND epoch = $5",
		exists: "SELECT EXISTS (SELECT 1 FROM " + subs + " WHERE name = $1 AND partition = 0)",

		park: `INSERT INTO ` + parked + ` (name, position, stream_id, version, type, event_id, error, attempts, parked_at, replay_requested)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, clock_timestamp()), $10
FROM (SELECT 1 FROM ` + subs + ` WHERE name = $1 AND partition = 0 FOR KEY SHARE) sub
ON CONFLICT (name, position) DO UPDATE SET stream_id = excluded.stream_id, version = excluded.version,
	type = excluded.type, event_id = excluded.event_id, error = excluded.error, attempts = excluded.attempts,
	parked_at = excluded.parked_at, replay_requested = excluded.replay_requested`,
		// One row with NULLs when the subscription has no parked event;
		// ok false when it does not exist.
		parked: `SELECT s.ok, p.position, p.stream_id, p.version, p.type, p.event_id, p.error, p.attempts, p.parked_at, p.replay_requested
FROM (SELECT EXISTS (SELECT 1 FROM ` + subs + ` WHERE name = $1) AS ok) s
LEFT JOIN ` + parked + ` p ON s.ok AND p.name = $1
ORDER BY p.position`,
		// As parked, by the partial index of migration 10.
		replayRequests: `SELECT s.ok, p.position, p.stream_id, p.version, p.type, p.event_id, p.error, p.attempts, p.parked_at, p.replay_requested
FROM (SELECT EXISTS (SELECT 1 FROM ` + subs + ` WHERE name = $1) AS ok) s
LEFT JOIN ` + parked + ` p ON s.ok AND p.name = $1 AND p.replay_requested IS NOT NULL
ORDER BY p.position`,
		// ok false when the subscription does not exist; the row
		// changes only under the request the member saw.
		clearReplay: `WITH sub AS (SELECT EXISTS (SELECT 1 FROM ` + subs + ` WHERE name = $1 AND partition = 0) AS ok),
cleared AS (
	UPDATE ` + parked + ` p SET error = $3, attempts = $4, parked_at = coalesce($5, clock_timestamp()), replay_requested = NULL
	FROM sub WHERE sub.ok AND p.name = $1 AND p.position = $2 AND p.replay_requested = $6
	RETURNING 1
)
SELECT sub.ok, (SELECT count(*) FROM cleared) FROM sub`,
		// ok false when the subscription does not exist; position 0
		// marks all of its parked events.
		requestReplay: `WITH sub AS (SELECT EXISTS (SELECT 1 FROM ` + subs + ` WHERE name = $1 AND partition = 0) AS ok),
marked AS (
	UPDATE ` + parked + ` p SET replay_requested = clock_timestamp()
	FROM sub WHERE sub.ok AND p.name = $1 AND ($2::bigint = 0 OR p.position = $2::bigint)
	RETURNING 1
)
SELECT sub.ok, (SELECT count(*) FROM marked) FROM sub`,
		unpark: "DELETE FROM " + parked + " WHERE name = $1 AND position = $2",

		partitionsAll: "SELECT name, partition, position, coalesce(owner, ''), lease_until, epoch, updated FROM " + subs +
			" ORDER BY name, partition",
		partitionsOf: "SELECT name, partition, position, coalesce(owner, ''), lease_until, epoch, updated FROM " + subs +
			" WHERE name = $1 ORDER BY partition",

		reset: "UPDATE " + subs + " SET position = $2, owner = NULL, lease_until = NULL, epoch = epoch + 1, updated = clock_timestamp()" +
			" WHERE name = $1",
		deleteSub: "DELETE FROM " + subs + " WHERE name = $1",
		keepEpoch: "INSERT INTO " + s + ".subscription_epochs AS e (name, epoch)" +
			" SELECT name, max(epoch) FROM " + subs + " WHERE name = $1 GROUP BY name" +
			" ON CONFLICT (name) DO UPDATE SET epoch = greatest(e.epoch, excluded.epoch)",
		deleteMembers: "DELETE FROM " + members + " WHERE name = $1",
		deleteParked:  "DELETE FROM " + parked + " WHERE name = $1",
	}}
}

// begin starts a call: ErrClosed after Close, else the call's context
// (ended by Close too, see callCtx).
func (b *subBackend) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if b.d.closed.Load() {
		return nil, nil, eventstore.ErrClosed
	}
	ctx, done := b.d.callCtx(ctx)
	return ctx, done, nil
}

// inTx runs fn in a READ COMMITTED transaction and commits it unless fn
// fails. fn's error is returned as it is: fn translates database errors
// itself (with b.d.callErr), so that a handler's error passes untouched.
func (b *subBackend) inTx(ctx context.Context, op string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, done, err := b.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	tx, err := b.d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return b.d.callErr(ctx, err, op)
	}
	// A rollback after a commit, or on a broken connection, does nothing
	// worth reporting: the transaction's outcome is already decided.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return b.d.callErr(ctx, err, op+": commit")
	}
	return nil
}

// notFound is the error for a subscription that does not exist.
func notFound(op, name string) error {
	return fmt.Errorf("postgres: %s: subscription %q: %w", op, name, eventstore.ErrNotFound)
}

// micros is ttl in whole microseconds, rounded up: a positive ttl never
// becomes a lease that has already ended.
func micros(ttl time.Duration) int64 {
	return int64((ttl + time.Microsecond - 1) / time.Microsecond)
}

// checkPos refuses a position or version the bigint columns cannot hold
// (the events table cannot hold one either).
func checkPos(field string, v uint64) error {
	if v > math.MaxInt64 {
		return &eventstore.ValidationError{Field: field, Index: -1, Reason: fmt.Sprintf("%d is larger than %d", v, int64(math.MaxInt64))}
	}
	return nil
}

// checkText refuses a name PostgreSQL cannot store: text holds no NUL
// byte. (The subscription package checks length and UTF-8.)
func checkText(field, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return &eventstore.ValidationError{Field: field, Index: -1, Reason: "contains a NUL byte"}
	}
	return nil
}

// cleanError makes a handler's error text storable: invalid UTF-8 and
// NUL bytes become U+FFFD rather than making Park fail, since the text
// only informs.
func cleanError(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// Register creates subscription name with n partitions at position start
// unless it exists, and returns the number of partitions stored.
func (b *subBackend) Register(ctx context.Context, name string, n int, start uint64) (int, error) {
	if err := errors.Join(checkText("subscription name", name), checkPos("start position", start)); err != nil {
		return 0, err
	}
	if n < 1 || n > subscription.MaxPartitions {
		return 0, &eventstore.ValidationError{Field: "partitions", Index: -1, Reason: fmt.Sprintf("%d is not in [1, %d]", n, subscription.MaxPartitions)}
	}
	const op = "register subscription"
	var got int
	err := b.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		// A Delete may remove the subscription between the claim and the
		// count: then claim again.
		for range 3 {
			var at time.Time
			err := tx.QueryRow(ctx, b.q.registerFirst, name, int64(start)).Scan(&at)
			if err == nil {
				if n > 1 {
					if _, err := tx.Exec(ctx, b.q.registerRest, name, int64(start), at, n); err != nil {
						return b.d.callErr(ctx, err, op)
					}
				}
				got = n
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return b.d.callErr(ctx, err, op)
			}
			var c int64
			if err := tx.QueryRow(ctx, b.q.count, name).Scan(&c); err != nil {
				return b.d.callErr(ctx, err, op)
			}
			if c > 0 {
				got = int(c)
				return nil
			}
		}
		return fmt.Errorf("postgres: %s %q: deleted and created again concurrently, retry", op, name)
	})
	if err != nil {
		return 0, err
	}
	return got, nil
}

// Heartbeat records that member is alive until ttl from now, forgets the
// members whose time has passed and returns the live ones, sorted.
func (b *subBackend) Heartbeat(ctx context.Context, name, member string, ttl time.Duration) ([]string, error) {
	if err := errors.Join(checkText("subscription name", name), checkText("member name", member)); err != nil {
		return nil, err
	}
	ctx, done, err := b.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	const op = "heartbeat"
	rows, err := b.d.pool.Query(ctx, b.q.heartbeat, name, member, micros(ttl))
	if err != nil {
		return nil, b.d.callErr(ctx, err, op)
	}
	live, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, b.d.callErr(ctx, err, op)
	}
	if len(live) == 0 {
		return nil, notFound(op, name)
	}
	// Go's order (bytes), which the C collation of the column shares;
	// sorted here because UNION ALL keeps none.
	slices.Sort(live)
	return live, nil
}

// Acquire makes member hold the partitions of want it can, releases those
// it holds outside want, and returns the leases it holds, in partition
// order.
func (b *subBackend) Acquire(ctx context.Context, name, member string, want []int, ttl time.Duration) ([]subscription.Lease, error) {
	if err := errors.Join(checkText("subscription name", name), checkText("member name", member)); err != nil {
		return nil, err
	}
	const op = "acquire partitions"
	ws := make([]int32, 0, len(want))
	for _, p := range want {
		if p >= 0 && p < subscription.MaxPartitions {
			ws = append(ws, int32(p))
		}
	}
	var leases []subscription.Lease
	err := b.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		leases = nil
		rows, err := tx.Query(ctx, b.q.lockAll, name)
		if err != nil {
			return b.d.callErr(ctx, err, op)
		}
		locked, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return b.d.callErr(ctx, err, op)
		}
		if len(locked) == 0 {
			return notFound(op, name)
		}
		rows, err = tx.Query(ctx, b.q.acquire, name, member, ws, micros(ttl))
		if err != nil {
			return b.d.callErr(ctx, err, op)
		}
		var (
			p         int32
			epoch, at int64
			held      bool
		)
		_, err = pgx.ForEachRow(rows, []any{&p, &epoch, &at, &held}, func() error {
			if held {
				leases = append(leases, subscription.Lease{Partition: int(p), Epoch: uint64(epoch), Position: uint64(at)})
			}
			return nil
		})
		if err != nil {
			return b.d.callErr(ctx, err, op)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(leases, func(a, b subscription.Lease) int { return a.Partition - b.Partition })
	return leases, nil
}

// Leave releases every partition member holds and forgets the member.
func (b *subBackend) Leave(ctx context.Context, name, member string) error {
	if err := errors.Join(checkText("subscription name", name), checkText("member name", member)); err != nil {
		return err
	}
	const op = "leave"
	return b.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		batch := &pgx.Batch{}
		batch.Queue(b.q.lockOwned, name, member)
		batch.Queue(b.q.release, name, member)
		batch.Queue(b.q.forget, name, member)
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return b.d.callErr(ctx, err, op)
		}
		return nil
	})
}

// Commit runs fn and writes the checkpoints in one transaction, each
// provided member still owns its partition under its epoch.
func (b *subBackend) Commit(ctx context.Context, name, member string, cps []subscription.Lease, fn func(ctx context.Context, tx pgx.Tx) error) error {
	if err := errors.Join(checkText("subscription name", name), checkText("member name", member)); err != nil {
		return err
	}
	for _, cp := range cps {
		if err := checkPos("checkpoint position", cp.Position); err != nil {
			return err
		}
	}
	// Partition order: the order in which every statement here locks a
	// subscription's rows (see newSubBackend).
	cps = slices.Clone(cps)
	slices.SortStableFunc(cps, func(a, b subscription.Lease) int { return a.Partition - b.Partition })
	const op = "commit subscription"
	return b.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		if fn != nil {
			if err := fn(ctx, tx); err != nil {
				return err
			}
		}
		if len(cps) == 0 {
			var ok bool
			if err := tx.QueryRow(ctx, b.q.exists, name).Scan(&ok); err != nil {
				return b.d.callErr(ctx, err, op)
			}
			if !ok {
				return notFound(op, name)
			}
			return nil
		}
		batch := &pgx.Batch{}
		for _, cp := range cps {
			batch.Queue(b.q.checkpoint, name, cp.Partition, member, int64(cp.Position), int64(cp.Epoch))
		}
		br := tx.SendBatch(ctx, batch)
		lost := -1
		for i := range cps {
			tag, err := br.Exec()
			if err != nil {
				_ = br.Close() // the Exec's error says it all
				return b.d.callErr(ctx, err, op)
			}
			if tag.RowsAffected() == 0 && lost < 0 {
				lost = i
			}
		}
		if err := br.Close(); err != nil {
			return b.d.callErr(ctx, err, op)
		}
		if lost < 0 {
			return nil
		}
		cp := cps[lost]
		err := fmt.Errorf("postgres: %s %q: partition %d is not owned by %q under epoch %d: %w",
			op, name, cp.Partition, member, cp.Epoch, subscription.ErrLeaseLost)
		// A deleted subscription is a lost lease and a missing
		// subscription both.
		var ok bool
		if qerr := tx.QueryRow(ctx, b.q.exists, name).Scan(&ok); qerr == nil && !ok {
			err = fmt.Errorf("%w (%w)", err, eventstore.ErrNotFound)
		}
		return err
	})
}

// Park stores p among name's parked events, replacing an entry at the
// same position.
func (b *subBackend) Park(ctx context.Context, name string, p subscription.Parked) error {
	if err := errors.Join(checkText("subscription name", name), checkPos("parked position", p.Position),
		checkPos("parked version", p.Version)); err != nil {
		return err
	}
	ctx, done, err := b.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	const op = "park event"
	at := pgtype.Timestamptz{Time: p.Time, Valid: !p.Time.IsZero()}
	requested := pgtype.Timestamptz{Time: p.ReplayRequested, Valid: !p.ReplayRequested.IsZero()}
	tag, err := b.d.pool.Exec(ctx, b.q.park, name, int64(p.Position), p.StreamID, int64(p.Version), p.Type, p.EventID,
		cleanError(p.Error), int64(p.Attempts), at, requested)
	if err != nil {
		return b.d.callErr(ctx, err, op)
	}
	if tag.RowsAffected() == 0 {
		return notFound(op, name)
	}
	return nil
}

// Parked returns name's parked events, in position order.
func (b *subBackend) Parked(ctx context.Context, name string) ([]subscription.Parked, error) {
	return b.parked(ctx, name, "read parked events", b.q.parked)
}

// ReplayRequests returns name's parked events whose replay is requested,
// in position order.
func (b *subBackend) ReplayRequests(ctx context.Context, name string) ([]subscription.Parked, error) {
	return b.parked(ctx, name, "read replay requests", b.q.replayRequests)
}

// RequestReplay marks name's parked event at position (every one of them
// for position 0) as to be replayed, and returns how many it marked.
func (b *subBackend) RequestReplay(ctx context.Context, name string, position uint64) (int, error) {
	if err := checkText("subscription name", name); err != nil {
		return 0, err
	}
	const op = "request replay"
	noEvent := fmt.Errorf("postgres: %s: subscription %q has no parked event at position %d: %w", op, name, position, eventstore.ErrNotFound)
	if position > math.MaxInt64 {
		return 0, noEvent
	}
	ctx, done, err := b.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	var ok bool
	var n int64
	if err := b.d.pool.QueryRow(ctx, b.q.requestReplay, name, int64(position)).Scan(&ok, &n); err != nil {
		return 0, b.d.callErr(ctx, err, op)
	}
	switch {
	case !ok:
		return 0, notFound(op, name)
	case n == 0 && position != 0:
		return 0, noEvent
	}
	return int(n), nil
}

// ClearReplay records a failed replay of p and clears its request, if the
// request is still p's.
func (b *subBackend) ClearReplay(ctx context.Context, name string, p subscription.Parked) (bool, error) {
	if err := checkText("subscription name", name); err != nil {
		return false, err
	}
	ctx, done, err := b.begin(ctx)
	if err != nil {
		return false, err
	}
	defer done()
	const op = "clear replay request"
	if p.Position > math.MaxInt64 {
		return false, nil
	}
	at := pgtype.Timestamptz{Time: p.Time, Valid: !p.Time.IsZero()}
	var ok bool
	var n int64
	if err := b.d.pool.QueryRow(ctx, b.q.clearReplay, name, int64(p.Position), cleanError(p.Error), int64(p.Attempts), at,
		p.ReplayRequested).Scan(&ok, &n); err != nil {
		return false, b.d.callErr(ctx, err, op)
	}
	if !ok {
		return false, notFound(op, name)
	}
	return n > 0, nil
}

// parked runs query, which lists name's parked events, or some of them.
func (b *subBackend) parked(ctx context.Context, name, op, query string) ([]subscription.Parked, error) {
	if err := checkText("subscription name", name); err != nil {
		return nil, err
	}
	ctx, done, err := b.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := b.d.pool.Query(ctx, query, name)
	if err != nil {
		return nil, b.d.callErr(ctx, err, op)
	}
	var (
		ok                            bool
		pos, version, attempts        pgtype.Int8
		stream, typ, eventID, errText pgtype.Text
		at, requested                 pgtype.Timestamptz
		out                           []subscription.Parked
		seen                          bool
	)
	_, err = pgx.ForEachRow(rows, []any{&ok, &pos, &stream, &version, &typ, &eventID, &errText, &attempts, &at, &requested}, func() error {
		seen = true
		if pos.Valid {
			p := subscription.Parked{
				Position: uint64(pos.Int64),
				StreamID: stream.String,
				Version:  uint64(version.Int64),
				Type:     typ.String,
				EventID:  eventID.String,
				Error:    errText.String,
				Attempts: int(attempts.Int64),
				Time:     at.Time.UTC(),
			}
			if requested.Valid {
				p.ReplayRequested = requested.Time.UTC()
			}
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, b.d.callErr(ctx, err, op)
	}
	if !seen || !ok {
		return nil, notFound(op, name)
	}
	return out, nil
}

// Unpark deletes the parked event of name at position and runs fn, in one
// transaction.
func (b *subBackend) Unpark(ctx context.Context, name string, position uint64, fn func(ctx context.Context, tx pgx.Tx) error) error {
	if err := checkText("subscription name", name); err != nil {
		return err
	}
	const op = "unpark event"
	if position > math.MaxInt64 {
		return fmt.Errorf("postgres: %s: subscription %q has no parked event at position %d: %w", op, name, position, eventstore.ErrNotFound)
	}
	return b.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		// The row first: a concurrent Unpark of the same event waits for
		// this one, then finds nothing, so fn runs once; and fn does not
		// run for an event that is not there.
		tag, err := tx.Exec(ctx, b.q.unpark, name, int64(position))
		if err != nil {
			return b.d.callErr(ctx, err, op)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("postgres: %s: subscription %q has no parked event at position %d: %w", op, name, position, eventstore.ErrNotFound)
		}
		if fn != nil {
			return fn(ctx, tx)
		}
		return nil
	})
}

// Partitions returns the partitions of name, or of every subscription
// when name is "", ordered by name and partition.
func (b *subBackend) Partitions(ctx context.Context, name string) ([]subscription.Partition, error) {
	if err := checkText("subscription name", name); err != nil {
		return nil, err
	}
	ctx, done, err := b.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	const op = "read partitions"
	var rows pgx.Rows
	if name == "" {
		rows, err = b.d.pool.Query(ctx, b.q.partitionsAll)
	} else {
		rows, err = b.d.pool.Query(ctx, b.q.partitionsOf, name)
	}
	if err != nil {
		return nil, b.d.callErr(ctx, err, op)
	}
	var (
		p              subscription.Partition
		part           int32
		pos, epoch     int64
		until, updated pgtype.Timestamptz
		out            = []subscription.Partition{}
	)
	_, err = pgx.ForEachRow(rows, []any{&p.Subscription, &part, &pos, &p.Owner, &until, &epoch, &updated}, func() error {
		p.Partition, p.Position, p.Epoch = int(part), uint64(pos), uint64(epoch)
		p.LeaseUntil, p.Updated = time.Time{}, updated.Time.UTC()
		if until.Valid {
			p.LeaseUntil = until.Time.UTC()
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, b.d.callErr(ctx, err, op)
	}
	return out, nil
}

// Reset sets every partition of name to position, ends its leases and
// grows its epochs.
func (b *subBackend) Reset(ctx context.Context, name string, position uint64) error {
	if err := errors.Join(checkText("subscription name", name), checkPos("position", position)); err != nil {
		return err
	}
	const op = "reset subscription"
	return b.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, b.q.lockAll, name); err != nil {
			return b.d.callErr(ctx, err, op)
		}
		tag, err := tx.Exec(ctx, b.q.reset, name, int64(position))
		if err != nil {
			return b.d.callErr(ctx, err, op)
		}
		if tag.RowsAffected() == 0 {
			return notFound(op, name)
		}
		return nil
	})
}

// Delete removes subscription name: its partitions, members and parked
// events.
func (b *subBackend) Delete(ctx context.Context, name string) error {
	if err := checkText("subscription name", name); err != nil {
		return err
	}
	const op = "delete subscription"
	return b.inTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, b.q.lockAllForDelete, name); err != nil {
			return b.d.callErr(ctx, err, op)
		}
		if _, err := tx.Exec(ctx, b.q.keepEpoch, name); err != nil {
			return b.d.callErr(ctx, err, op)
		}
		tag, err := tx.Exec(ctx, b.q.deleteSub, name)
		if err != nil {
			return b.d.callErr(ctx, err, op)
		}
		if tag.RowsAffected() == 0 {
			return notFound(op, name)
		}
		batch := &pgx.Batch{}
		batch.Queue(b.q.deleteMembers, name)
		batch.Queue(b.q.deleteParked, name)
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return b.d.callErr(ctx, err, op)
		}
		return nil
	})
}
