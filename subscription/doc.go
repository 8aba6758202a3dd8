// Package subscription consumes an event store's events durably: a
// subscription is a named consumer of all streams (or of a filter's
// subset) that catches up from its checkpoint, then follows live appends,
// handing events to a handler in batches, in global order, until its
// context ends. Its state lives in the store's own database (both adapters
// of this module migrate the tables), so it survives restarts and is
// shared by every process that runs it.
//
//	sub, err := subscription.NewTx(store, "balances",
//		func(ctx context.Context, tx *sql.Tx, events []eventstore.Recorded) error {
//			// update the read model through tx
//		})
//	...
//	err = sub.Run(ctx)
//
// # Delivery
//
// A subscription made by [New] calls its [Handler], then writes its
// checkpoint (every [WithCheckpointInterval]): delivery is at least once.
// After a crash, a lost lease or a failed checkpoint write, events are
// handed over again from the last checkpoint, so the handler must be
// idempotent: an upsert keyed by the event's ID or position, or a last
// position kept per stream.
//
// A subscription made by [NewTx] runs its [TxHandler] in the database
// transaction that writes the checkpoint: *sql.Tx on adapters/sqlite,
// pgx.Tx on adapters/postgres, typed by the store (Go infers it). A read
// model kept in the same database then sees each event's effect exactly
// once: its rows and the checkpoint commit together, or neither does.
//
// Checkpoints advance past the events a filter ([WithFilter], run in the
// database) skips, so a restart does not scan a long filtered-out tail
// again.
//
// # Ordering
//
// One member hands its events over in global order. Events of one stream
// always go to one partition, so a stream's events are handled in version
// order, by one member at a time. There is no order between partitions
// held by different members.
//
// # Failures
//
// A handler error (including an event the handler cannot decode) is
// retried with exponential backoff ([WithRetries]); then the [Policy]
// applies: [Stop] (the default) ends Run with a *[HandlerError], leaving
// the checkpoint before the batch; [Park] tries the batch's events one at
// a time and sets aside each that still fails, with its error, then goes
// on. [ListParked] lists them, [Subscription.ReplayParked] hands one to
// the handler again, [DiscardParked] forgets one. A process without the
// handler (the esv2 command, an admin tool) calls [RequestReplay] or
// [RequestReplayAll] instead: the running member that holds the event's
// partition replays it at its next lease renewal (within a second with
// the default lease), and clears the request if the handler fails again.
// A database error (a lost
// connection) does not end Run: it shows in [Subscription.Status] and is
// tried again after a pause.
//
// # Consumer groups
//
// Every process that runs a subscription of the same name is a member of
// its group. [WithPartitions] splits its events into n partitions by a
// hash of the stream ID ([PartitionOf]), each with its own checkpoint;
// members hold partitions through leases in the database, renewed every
// third of [WithLeaseTTL] or every second, whichever is sooner, and share
// them evenly (partition p goes to the
// member whose index among the live members, sorted by name, is p modulo
// their number). A member that joins gets its share as the others give it
// up at their next renewal (within a second), looking for it every quarter
// second meanwhile; one that stops releases its partitions at
// once; one that dies (SIGKILL, a lost machine) loses them when its lease
// ends, within the lease TTL, and the others resume them from their
// checkpoints within a renewal period more. A checkpoint written under a
// lease another member has since taken is refused ([ErrLeaseLost]), and
// with it a transactional handler's writes. With one partition (the
// default) one member is active and the others stand by.
//
// A member reads only its share of the log: it passes its partitions to
// the store as [eventstore.Filter].Partitions, which PostgreSQL selects in
// the database from a hash stored with each event (stores that cannot,
// like SQLite, select them in the front, reading every event), in windows
// of positions sized so that a read takes a fraction of the renewal
// period, however long a run of other members' events.
//
// A member does not start a batch on a lease with less than two thirds of
// its time left, so a batch's handler that ends within a third of the TTL
// never overlaps with the next holder's; a slower one may.
//
// # Operations
//
// [Subscription.Status] reports the state (standby, catching up, live),
// the position, and the lag behind the head, for metrics and health
// checks; [Subscription.WaitFor] waits until a position is handled (read
// your writes). [List], [Reset], [Delete] and the parked-event functions
// work on the stored subscriptions whether or not they run.
//
// [WithLogger] logs retries (Debug), database errors and parked events
// (Warn) and the error that stops Run (Error); nothing is logged without
// it. [WithHooks] lets instrumentation wrap each call of the handler:
// package esotel makes it a span linked to the requests that appended the
// events, and measures lag and parked events.
//
// # For adapter authors
//
// An event store takes part by implementing [Store]: its Subscriptions
// method returns a [Backend], which keeps the state in its database.
// Package eventstore/eventstoretest runs the backend conformance suite.
package subscription
