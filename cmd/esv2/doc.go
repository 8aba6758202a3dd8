// Command esv2 inspects, follows, moves, checks and operates an esv2 event
// store from the shell.
//
//	go install github.com/esv2/esv2/cmd/esv2@latest
//	esv2 --help
//
// # Connecting
//
// --db FILE opens an SQLite store; --dsn URL (or the ESV2_DSN environment
// variable) a PostgreSQL one, in the schema named by --schema (default
// "esv2"). Commands that only read open the store read-only (SQLite:
// mode=ro; PostgreSQL: default_transaction_read_only) and refuse a
// missing SQLite file instead of creating one; import creates the file or
// sets up the schema it is given.
//
// # Commands
//
//   - streams: the streams, paged, with their versions and last times
//   - info STREAM|$all: a stream's version, count, last position and time
//   - read STREAM|$all: events, filtered by type, metadata and stream
//     prefix; data shown as JSON whether stored as JSON or msgpack, other
//     bytes as base64, --raw for the bytes themselves
//   - tail [STREAM|$all]: new events as they are appended, resumable
//     with --after, ending cleanly on Ctrl-C
//   - stats, snapshots STREAM: the store's counts and size, a stream's
//     snapshots
//   - export, import: JSON Lines out and in; import keeps stream versions,
//     skips what the target has (so it is idempotent and resumes after an
//     interruption) and appends in concurrent batches; positions are the
//     target's own, and snapshots and subscriptions stay behind (a
//     Repository takes its snapshots again; subscriptions start afresh)
//   - verify: every invariant the adapter can check (see
//     [eventstore.Inspector]), exit status 4 when one is broken
//   - migrate: create or upgrade a PostgreSQL schema
//   - subscriptions list|reset|parked|replay|discard: operate durable
//     subscriptions. replay NAME (POSITION... | --all) cannot run the
//     handler: it requests a replay, which the running member holding the
//     event's partition makes at its next lease renewal; --wait DURATION
//     waits for the outcome (exit status 1 if the handler failed again or
//     the wait ran out)
//
// Tables are for people; --json prints one JSON object per line. Times are
// RFC 3339 in UTC. Progress bars (export, import) show only when stderr is
// a terminal.
//
// # Exit status
//
//	0  success
//	1  the command failed (database error, I/O error, bad input data)
//	2  bad flags or arguments
//	3  not found (stream, snapshot, subscription, parked event)
//	4  verify found broken invariants
//	5  the store could not be opened (missing file, not an SQLite
//	   database, unreachable or refused DSN, unusable schema version)
//
// Errors go to stderr as "esv2: " and the library's error text.
package main
