// Package sqlite is the SQLite adapter of esv2: an [eventstore.Store] kept in
// one SQLite database through modernc.org/sqlite (pure Go, no cgo).
//
//	store, err := sqlite.Open(ctx, "events.db") // "" or ":memory:" for in-memory
//	defer store.Close()
//	res, err := store.Append(ctx, "account-42", eventstore.NoStream, eventstore.Event{Type: "opened"})
//
// # Files and memory
//
// A file database is put in WAL mode: readers never block the writer and
// the writer never blocks readers. It runs with synchronous=FULL, so an
// append that returned is on disk; group commit amortises that fsync over
// every append waiting at the time. Several processes may open the same file
// and append to it concurrently; each write transaction takes SQLite's write
// lock (BEGIN IMMEDIATE) and waits up to the busy timeout
// ([WithBusyTimeout]) for another process to release it. An empty path or
// ":memory:" opens a new in-memory database (SQLite's memdb VFS, under a
// random name) that all of the Store's connections share and that no other
// Store can reach; it disappears at Close. memdb has no WAL, so a read and
// a write transaction cannot run at once; the Store orders them itself
// (one read-write lock: each read waits for the write transaction in
// progress, and the writer for the reads already started, never for new
// ones), so its reads and watches never fail with [ErrBusy] because of
// its own appends.
//
// A reader that keeps a read transaction open on the file (another
// process, a tool) stops checkpoints from recycling the WAL, which then
// grows with every append. Once it leaves, the file shrinks back to 4 MiB:
// the writer sets journal_size_limit, so the next append that restarts the
// WAL truncates it, and a store that has stopped appending checks the
// file's size every second and runs wal_checkpoint(TRUNCATE) (without
// waiting, so never delaying appends) while it is larger.
//
// The schema is created on first open and versioned with PRAGMA
// user_version; an older one is migrated on open, in one write
// transaction, by the numbered SQL files embedded in the package
// (migrations/000N_*.sql brings version N-1 to N). A database written by a
// newer esv2 is refused with [ErrSchemaVersion], and a file that is not a
// database with [ErrNotDatabase].
//
// # Schema
//
// events holds one row per event; its INTEGER PRIMARY KEY (AUTOINCREMENT,
// never reused) is the global position. A unique index on (stream_id,
// version) keeps versions dense, and a partial unique index on event_id
// makes idempotency durable across restarts and processes. streams keeps
// each stream's version and last time so that an append checks its
// expectation with one lookup; head keeps the global position and count
// for Info on [eventstore.AllStreams]; snapshots keeps the latest snapshot
// per (stream, name). Metadata is stored as a JSON object and filtered
// with json_extract and a parameterised, quoted JSON path.
//
// # Subscriptions
//
// [Store.Subscriptions] is the backend of package subscription: the
// subscriptions table holds one row per partition (position, owner, lease
// end, epoch), subscription_members the members of each group and
// subscription_parked the events set aside. Every change runs on the
// writer goroutine in a write transaction of its own, never grouped with
// appends, so a transactional handler's failure rolls back nothing but its
// own batch; its *sql.Tx is that transaction. Leases are measured with the
// machine's clock (SQLite has none of its own).
//
// # Group commit
//
// One writer goroutine owns the single writer connection. Appends (and
// snapshot saves) from any number of goroutines are queued to it; it takes
// every request waiting, up to [WithMaxGroupSize], and commits them in one
// transaction, each (when it shares the transaction) inside its own
// SAVEPOINT so that one request's conflict or error rolls back only that
// request. Each caller gets its own result. An append whose context ends
// while it waits in the queue is withdrawn and writes nothing; once the
// writer has taken it, it runs to its outcome, which its caller gets even
// if the context has ended meanwhile (the rule of every esv2 store).
// Under concurrency this turns many fsyncs into one; [Store.Stats] shows it
// (Commits below Appends). Events of one append are inserted with
// multi-row INSERT statements, prepared once and cached.
//
// # Reading and watching
//
// [Store] embeds [driver.Front], the front every esv2 adapter shares, over
// this package's driver: the front makes the checks, runs the Read iterator
// and every watch, and the driver answers one bounded page at a time by key
// (version or position), so neither memory nor a database lock is held
// across the caller's loop body. A page ends at its row limit (64 growing
// to 1,024 rows for a read, 512 for a watch) or once its events reach
// [eventstore.PageBytes] (4 MiB), whichever comes first: reading 1,200
// events of 1 MiB peaks at about 23 to 26 MB above the process's baseline
// (cmd/esbench read_large and watch_large). Every filter runs in SQL. A
// page after a full one (a long read, a watch catching up) is read from the
// driver's raw rows; others through cached prepared statements.
//
// Watchers of a stream wait only for that stream's appends, and watchers
// of AllStreams for every append. The front wakes them right after each of
// its own appends; appends by other processes are noticed by one poller
// goroutine per Store that reads PRAGMA data_version on a dedicated
// connection every poll interval ([WithPollInterval]), however many
// watchers there are, then reads which streams got events and tells the
// front. Store.FindEvent looks an event up by its ID in the unique index
// on event IDs.
//
// # Errors
//
// Driver errors are translated in one place: constraint violations become
// [eventstore.ConflictError] or [eventstore.IdempotencyError], a lock held
// past the busy timeout becomes [ErrBusy], and any other SQLite error is
// wrapped in [ErrDatabase]. Calls on a closed Store, and calls that
// Close cut short, return [eventstore.ErrClosed].
//
// # Deletion and erasure
//
// DeleteStream, TruncateStream and DeleteSnapshots (eventstore.Lifecycle)
// run through the writer, in a transaction of their own; a deleted
// stream's streams row is its tombstone (schema 6), and AUTOINCREMENT
// never hands a position out again. The writer's connection has
// secure_delete on, so removed rows are overwritten with zeros in the
// database; [Store.Purge] checkpoints and empties the WAL, which held them
// still. See concepts.md, "Deletion, truncation and erasure".
package sqlite
