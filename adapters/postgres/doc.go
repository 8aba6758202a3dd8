// Package postgres is the PostgreSQL adapter of esv2: an [eventstore.Store]
// kept in one schema of a PostgreSQL database (12 or later) through
// github.com/jackc/pgx/v5 and its pgxpool.
//
//	store, err := postgres.Open(ctx, "postgres://app@db/app", postgres.WithMigrate())
//	defer store.Close()
//	res, err := store.Append(ctx, "account-42", eventstore.NoStream, eventstore.Event{Type: "opened"})
//
// [Open] makes (and Close closes) its own pool; [New] uses the caller's.
// Any number of stores, in any number of processes, may use the same
// schema: they share its events and see each other's appends.
//
// The package is a driver under the front every esv2 adapter shares
// (package eventstore/driver): the front makes the checks (context,
// closed store, validation, in one order), runs the Read loop and the
// whole of watching, and wakes the watchers of its own appends; this
// package talks to PostgreSQL. [Store] is the front plus the methods only
// PostgreSQL has ([Store.Stats], [Store.Migrate], [Store.Pool],
// [Store.Schema]). Options that are given a value they cannot take make
// Open, New and Migrate fail with [eventstore.ErrInvalidInput].
//
// # Schema and migrations
//
// The tables live in a schema the caller names ([WithSchema], default
// "esv2"; identifiers are quoted with pgx.Identifier.Sanitize):
//
//   - events: one row per event; position (primary key) is the global
//     position; unique (stream_id, version) keeps versions dense and gives
//     a stream's version with one index probe; a partial unique index on
//     event_id makes idempotency durable across restarts and processes.
//     Metadata is a jsonb column.
//   - streams: one row per stream, written at its first event, so that
//     appending to an existing stream writes its events and nothing else.
//   - snapshots: the latest snapshot per (stream_id, name).
//   - append_outcomes: one row per store, holding its last group's token
//     and results, written in that group's transaction (see "Connection
//     faults while committing"); Close fences it for good, and Open
//     deletes rows untouched for a day.
//   - subscriptions, subscription_members, subscription_parked: the
//     state of package subscription's durable consumers (see
//     "Subscriptions").
//   - schema_version: one row per applied migration.
//   - append_batch: the PL/pgSQL function that performs a group of appends
//     in one statement (below).
//
// The migrations are numbered SQL files embedded in the package
// (migrations/0001_init.sql, …), applied in order.
//
// [WithMigrate] at open (or [Migrate], e.g. in a deployment step run by a
// role allowed to create tables) creates the schema or upgrades it to
// [SchemaVersion] in one READ COMMITTED transaction, taken under a
// session-level advisory lock (pg_advisory_lock) acquired before the
// transaction begins, so that it sees whatever the instance ahead of it
// committed: instances or stores starting together migrate once. A schema
// already up to date is recognised without any DDL. Without migrating,
// opening a schema that is missing or older fails with a
// [*SchemaVersionError]; a schema written by a newer esv2 is always
// refused with one ([ErrSchemaVersion]), never half-used.
//
// Upgrading: a release that raises SchemaVersion migrates the schema when
// its first instance starts with WithMigrate (or when Migrate runs).
// Instances of the older release that are still running keep working
// (version 2 only replaced the body of append_batch; version 3 added
// append_outcomes and an append_batch taking two more arguments, keeping
// the old one; version 4 only added the subscription tables), but an
// older instance that restarts afterwards refuses the newer schema. Roll
// forward: migrate, then replace every instance; do not restart old ones.
//
// # Global order
//
// A sequence value is taken at INSERT but becomes visible at COMMIT, so with
// plain sequences a transaction that started later can commit (and be read)
// before an earlier one; a reader that checkpoints at the highest position
// it saw would then skip the earlier event forever.
//
// Until schema version 11 this adapter serialised appends: append_batch
// held a transaction-scoped advisory lock from reading max(position) to
// its COMMIT, so positions were gapless and committed in order. But the
// lock spanned the COMMIT's WAL flush, and several processes' appends
// could never share one: 4 processes x 16 goroutines appended at 0.34x
// to 0.59x the rate of 1 process x 64 (cmd/esbench append_multiprocess).
//
// Since version 11 appends commit side by side. append_batch takes that
// lock shared (deletions and truncations still take it exclusively, so
// they wait for the appends in flight and hold new ones back), checks its
// requests, then draws its positions from the sequence positions in a
// short critical section under a session-level lock, released at once;
// there it also takes its marker, a transaction-level advisory lock whose
// key encodes the first position it drew, which pg_locks shows until the
// transaction commits or aborts (PostgreSQL releases locks only after the
// commit is visible). The function safe_head() reads the sequence, then
// the markers, then the newest committed position, each in a statement of
// its own: every position at or below the lowest of (sequence, first
// marker - 1, newest committed) has committed or never will. Readers of
// the whole log stop there: the first page of a Read or Watch of
// AllStreams reads the safe head just before it, in a statement of its
// own sent in the same round trip, later pages read up to the head the
// store knows settled and ask again only when a commit past it was seen,
// and Head and Info(AllStreams) report it. So [Store.Read] of AllStreams from a
// checkpoint and [Store.Watch] with [eventstore.After] never skip an
// event, and an append held uncommitted (a stalled writer, a long
// transaction) holds back the readers of the whole log past it, never
// the writers (TestGlobalOrder holds one).
//
// Groups that append to the same stream do not run side by side: since
// version 12 each group first takes a transaction-level advisory lock on
// each of its streams (keyed by the stream's hash, in key order), so a
// group waits for the one that has the stream in flight and then reads
// the version it left. Without the locks both read the stream's version
// before either committed, the second failed on the (stream, version)
// key, and under contention an append expecting Any ran out of retries.
//
// Positions still increase and are never reused, but a group that rolls
// back after drawing leaves its positions unused (holes, as deletions
// leave). So the store's count is no longer the head minus the events
// removed: each writer counts what it stored in its append_outcomes row,
// in the same transaction, and Info(AllStreams).Count is those counts
// plus high_water.counted (the rows dropped and the events stored before
// version 11) minus high_water.removed; esv2 verify checks it against
// count(*). A rolled-back group sends no NOTIFY: the store follows the
// safe head (every 50 ms to 1 s) while a position it saw committed is
// past it, and wakes the watchers when it moves.
//
// PostgreSQL serialises the COMMITs of transactions that NOTIFY (a lock
// held until the commit's flush, to keep the notification queue in commit
// order), so a group's transaction does not NOTIFY: a goroutine of the
// store sends the NOTIFY after the commit, in a transaction of its own
// with synchronous_commit off, at once after a quiet moment and then at
// most once per [WithNotifyInterval] (each NOTIFY wakes every listening
// session, which cost several processes appending side by side a third
// of their rate when every commit sent one).
//
// The writer also lingers after a group, up to half its commit time, for
// the group's callers to append again: without it the callers of a busy
// store split into two cohorts taking turns, and every group carried half
// of them.
//
// The sequence's value a reader saw is durable once a group past it
// commits (its commit flushes the sequence's WAL record before it): safe
// head never passes the newest committed position, so a crash cannot hand
// out again a position a reader has passed. Events appended without a
// Time are stamped with clock_timestamp() read under the drawing lock, so
// the times the store gives follow positions, across processes too.
//
// The alternatives DESIGN.md lists were weighed: waiting at gaps (Marten's
// high-water mark) makes every reader pay a timeout whenever a writer
// stalls or rolls back, and reading below pg_snapshot_xmin (xid8) makes
// one long transaction anywhere in the database delay every watcher; the
// markers delay readers only for the appends of this schema still in
// flight, and only those.
//
// Instances of a release before version 11 still running during a rolling
// upgrade append correctly (their append_batch signatures go through the
// new one), but read the whole log without the safe head: replace them
// promptly, and do not run subscriptions on them meanwhile.
//
// # Appending and group commit
//
// Each store has one writer goroutine. Append (its input validated by the
// front) queues the append and waits; the writer takes
// every queued append (up to [WithGroupCommitLimit] events and 64 MiB of
// payload; an append over [WithMaxAppendSize], 256 MiB by default, is
// refused before it is queued, as PostgreSQL takes no message of 1 GiB or
// more) and runs them
// as one call of append_batch: one statement, one round trip, one
// transaction, one WAL flush and one NOTIFY (see above) for the whole group, with the
// events passed as arrays and inserted with unnest (no statement per
// event). Inside, each append is checked on its own against the state
// left by the ones before it: the stream's version against the
// expectation, event IDs already stored in the same stream (skipped and
// reported in AppendResult.Duplicates, with the version they have; a batch
// made only of those succeeds whatever its expectation) or in another
// stream ([*eventstore.IdempotencyError], nothing of that append written).
// A refused append does not affect the others of its group, and each
// caller gets its own result. The checks run in memory inside the
// function after two lookups (the group's streams, its stored event IDs);
// then one INSERT ... SELECT FROM unnest stores every accepted event and
// one more registers new streams, so a group costs a fixed number of
// statements whatever its size. Two appends carrying the same event ID
// never share a group (the second waits for the next one). So 64
// goroutines appending one event each cost a few transactions, not 64
// serialised ones; [Store.Stats] shows it (Commits below Appends).
//
// Cancellation follows the rule of every esv2 store: an append whose
// context ends while it waits in the writer's queue is withdrawn (nothing
// is written) and Append returns the context's error; once the writer has
// taken it, Append waits for its real outcome and returns it, even if the
// context has ended meanwhile (until issue 10 it returned the context's
// error then, and the caller could not tell whether its events were
// stored). The writer never reads an append's events after its Append
// returned.
//
// Unique indexes still back the checks: a unique violation, serialization
// failure or deadlock caused by a writer that bypassed the lock is retried,
// then reported as [*eventstore.ConflictError] or
// [*eventstore.IdempotencyError] — except for an append expecting
// [eventstore.Any], which cannot conflict: it gets a wrapped database error
// saying a concurrent writer refused it, to retry. Driver errors are
// translated in one function and never reach callers raw for a condition
// the eventstore contract names.
//
// # Stream locks
//
// [Store.LockStream] and [Store.StreamLocked] (eventstore.StreamLocker,
// which package aggregate uses to make the Updates of a contended
// aggregate take turns across processes) use a session-level advisory
// lock whose key is derived from the schema and the stream ID. A held
// lock keeps a connection of a small pool of the store's own (at most 16
// connections, idle ones closed after 30 s), apart from the store's pool
// so that holders never starve the loads and appends they are waiting
// to make. A wait whose context ends is cancelled on the server; a
// connection goes back to that pool only after pg_advisory_unlock said
// it released the lock, and is closed otherwise (ending the session ends
// the lock). StreamLocked is one statement, pg_try_advisory_xact_lock_shared,
// which keeps nothing. Like the LISTEN connection, the lock connections
// need session state, so they must not go through a pgbouncer in
// transaction mode.
//
// # Watching, LISTEN and pgbouncer
//
// Watching is the front's (see package eventstore/driver): its watchers
// wait on one notifier for AllStreams and one per watched stream, and
// nothing is polled per watcher. They are woken
//
//   - right after each of the store's own appends, by the front: the
//     watchers of the stream written and of AllStreams, not the others
//     (with a thousand watchers on a hundred streams, waking all of them
//     cost a thousand queries per append);
//   - for appends of other stores and processes, which this package
//     reports to the front as changes of unknown streams
//     ([driver.Listener]): by LISTEN on one dedicated connection per store
//     (a pgx.Conn, not from the pool), as append_batch calls pg_notify once
//     per transaction with the new head position. If the connection
//     drops, the store reconnects with backoff (50 ms doubling to 5 s) and
//     reports a change after re-subscribing, so notifications missed
//     meanwhile cost nothing but a read;
//   - by a slow poll of the head position ([WithPollInterval], default 1 s;
//     [WithoutPoll] turns it off) as a safety net; it reports a change only
//     when the head moved.
//
// A change seen by LISTEN or the poll names no streams, so it wakes every
// watcher; the store's own commits, which the writer has recorded before
// either can see them, are not reported, and wake only their streams'
// watchers. A commit of the store whose positions do not follow the safe
// head directly (another process's group drew positions between) is
// followed until the safe head passes it (see "Global order").
//
// A watcher whose page read finds its pooled connection lost (a
// terminated backend, a server restart) gets an error wrapping
// [driver.ErrConnectionLost] from this package, and the front reads the
// same page again on a new connection, waiting 50 ms doubling to 2 s
// between attempts, ten times (about 12 s) before the watch ends with the
// error; re-reading from the same key can neither skip nor repeat an
// event.
//
// LISTEN needs a session of its own. Behind pgbouncer in transaction
// pooling mode it does not work: give the listener a direct (or
// session-pooled) connection string with [WithListenDSN], or turn it off
// with [WithoutListen] and rely on the poll, choosing its interval as the
// latency other processes' appends may take to reach watchers. The
// pool itself works through pgbouncer in transaction mode only if
// pgbouncer handles prepared statements (1.21 or later with
// max_prepared_statements set); otherwise add
// default_query_exec_mode=exec to the pool's connection string.
//
// # Reading
//
// The front reads in pages by key, each one query of this package
// (keyset pagination: position or version between two bounds, LIMIT a
// page size the front grows from 64 to 4096 rows), and each page ends
// early once its events reach eventstore.PageBytes, 4 MiB: the server
// cuts it with a running sum of the events' sizes on every page of a
// watch, on the first page of a read, and on a read's later ones once its
// events are large enough to reach it, so no more is sent than is kept; reading 1,200 events of 1 MiB
// peaks at about 20 MB above the process's baseline, cmd/esbench
// read_large. The connection goes back to the pool before a page is
// yielded, so the loop body holds none: it may append to the store (a
// projection writing back) or read again whatever the pool's size. From
// the large pages on (of an unfiltered read), the front fetches the next
// two pages while the loop body consumes the current one (read-ahead, on
// for this package), which keeps reading as fast as one cursor
// (cmd/esbench read_stream). A stream's versions are dense and committed
// in order, and a page of the whole log ends at the safe head, so the
// pages join up without a snapshot. Filters run in SQL: event types with
// = ANY, metadata with metadata->>key = value, = ANY(values) or
// starts_with, and the stream prefix of AllStreams reads with starts_with
// (no LIKE pattern, so % and _ need no escaping). Query texts depend only
// on which filters are present, so pgx prepares each shape once per
// connection and caches it. [Store.FindEvent] is one probe of the unique
// index on event_id.
//
// # Connection faults while committing
//
// A group is run again only when it certainly stored nothing: it failed
// before it was sent, or the server refused one of its statements before
// COMMIT (the rest of the pipeline is then skipped). Once COMMIT's result
// has arrived the group is committed, whatever the connection does next (a
// backend terminated just after a commit reports FATAL 57P01 when the batch
// is closed). When the connection is lost after the group was sent and
// before COMMIT's result arrived, the outcome cannot be seen on that
// connection, so the writer asks on another one: every group writes its
// token and per-append results into the store's row of append_outcomes in
// its own transaction, and the look-up upserts that row with the token and
// no results unless the group's row is already there. The upsert waits for
// a group still committing, and fences one that has not written its row
// yet (it then fails at its own upsert and rolls back, even if its server
// session is still alive and gets the lock later). So the look-up answers
// "committed, with these results" (each caller gets them) or "not
// committed, and never will be" (the group runs again, up to 5 times). If
// the database cannot be asked within 10 s, or Close cuts the look-up
// short, each caller gets [eventstore.ErrUnknownOutcome]: never a conflict
// and never a second copy. [Store.Stats] counts the look-ups and the
// unknown outcomes. The cost is one upsert of one row per group (not per
// append), inside the group's transaction.
//
// # Subscriptions
//
// [Store.Subscriptions] is the backend of package subscription: one row
// per partition of a subscription (position, owner, lease end, epoch),
// one per live member, one per parked event, in the store's schema.
// Leases and members' lives are measured by the database's clock, so
// members on different machines agree. A partition changes hands only by
// a conditional UPDATE under row locks taken in partition order (which
// also keeps Acquire, Reset, Leave and Commit from deadlocking each
// other), and its epoch grows each time; a checkpoint is an UPDATE that
// matches only the owner and epoch its member was given, written in the
// transaction of a transactional handler after the handler's own writes,
// so that the two commit together or not at all. That transaction is not
// an append's: it never takes the append lock.
//
// # Closing
//
// [Store.Close] (the front's) refuses new calls with
// [eventstore.ErrClosed] and ends watchers with it; then this package
// fails queued appends with it, lets the group being committed finish for
// up to [WithCloseTimeout] (default 5 s), then cancels it (its appends get
// ErrClosed if it certainly stored nothing, else their true result or
// ErrUnknownOutcome after a look-up bounded by the same timeout), stops
// the listener and the poller, cuts short the calls still waiting on the
// database (they get ErrClosed), and closes the pool if [Open] made it.
// It is idempotent.
//
// # Deletion and erasure
//
// DeleteStream, TruncateStream and DeleteSnapshots (eventstore.Lifecycle)
// take the append lock exclusively, raise the high-water mark to the last position
// handed out (migration 6) and remove rows in one transaction; a deleted
// stream's streams row is its tombstone (migration 9). The rows leave the
// tables' files only through VACUUM: [Store.Purge] (online; frees the
// space, which later rows overwrite) or [Store.PurgeFull] (VACUUM FULL:
// new files, locks). See concepts.md, "Deletion, truncation and erasure",
// for what neither can reach (WAL, archives, backups, replicas).
package postgres
