// Command esbench measures esv2 against the bare database driver, in one
// run, on the same schema.
//
//	go run ./cmd/esbench                                   # SQLite, 1,000,000 events, a temporary file
//	go run ./cmd/esbench -backend sqlite -events 200000 -json
//	go run ./cmd/esbench -backend postgres -dsn "$ESV2_POSTGRES_DSN" -json
//
// # What it measures
//
// Every operation is done twice, by the library and by hand-written code on
// the bare driver (database/sql over modernc.org/sqlite, or pgx), into the
// same tables, and the report gives both rates and their ratio
// (library ÷ driver; above 1 means the library is faster). The two sides are
// measured alternately (batch by batch, load by load) so that a noisy,
// shared machine drifts on both alike; use the ratios, not the absolute
// figures, to compare commits. read_stream and load_aggregate run both
// sides in lockstep, taking turns every 4,096 events, after an untimed
// warm-up read; ratio_median compares the sides' median 4,096-event chunks
// too, which a burst of load from another process cannot sway (on
// PostgreSQL it mostly compares the clients: a paused side's server keeps
// filling its socket). Lockstep favours a side that reads ahead: on
// PostgreSQL the library fetches its next page on a goroutine of its own,
// and that fetch goes on while the library's clock is stopped for the
// driver's turn. -lockstep-chunk 0 runs each side whole instead (the two
// alternating which goes first), which is fair to read-ahead but lets
// bursts of load from other processes fall on one side.
//
//   - append_batch: events appended to one stream in batches of 1,000.
//     Driver: one transaction per batch holding one multi-row INSERT
//     (SQLite) or one COPY (PostgreSQL), plus the stream-version check,
//     the streams row and, on SQLite, the head row, as the adapter keeps.
//   - read_stream: the whole stream read in version order. Driver: the same
//     SELECT, one cursor, scanned into plain values.
//   - load_aggregate: Repository.Load of a counter aggregate replaying every
//     event (msgpack decode and reducer); the driver figure is the driver's
//     read, as the issue asks.
//   - load_snapshot: Repository.Load of the same aggregate with a snapshot
//     every 1,000 events and 100 events after the last snapshot. Driver: the
//     snapshot row, msgpack decode of the state and the events after it,
//     by hand. replay_ratio is its median latency over the full replay's.
//   - append_concurrent: 64 goroutines each appending single events to its
//     own stream. Driver: one transaction per event from 64 goroutines (on
//     PostgreSQL over a pgxpool).
//   - watch_latency: 1,000 watchers on 100 streams while single-event
//     appends flow; the time from an append's return to each watcher's
//     receipt. Driver: the same watchers reading with the bare driver,
//     woken per stream by the appender itself (an ideal in-process
//     notifier).
//   - watch_fanout/1 and watch_fanout/100 (issue 13 item 1): -fanout-watchers
//     (10,000) watchers at the head of one stream, then as many over 100
//     streams; -fanout-rounds (10) rounds each append one event to every
//     stream, one at a time, and wait until every watcher got it. The
//     figure is the p99 of the time from an append's return to each
//     watcher's receipt. Driver: the ideal broadcast, as many goroutines
//     woken by one channel close, the time from the close (a round of it
//     before or after each round of watchers); the target is a p99 at
//     most 3 times the ideal's.
//   - append_multiprocess (PostgreSQL only, issue 13 item 4): 4 child
//     processes of -writers/4 goroutines each append single events to
//     streams of their own, -mp-per (300) appends per goroutine; driver:
//     this one process with -writers goroutines doing as many. Twice each,
//     alternating. Target: ratio >= 0.8 (several application instances
//     write about as fast as one).
//   - update_hot (issue 13 item 3): -hot-writers (64) goroutines run
//     -hot-per (20) Repository.Update calls each on one counter aggregate
//     (snapshots every 100 events, the default attempts); the driver side
//     is one goroutine running as many Updates uncontended on a counter of
//     its own. Target: ratio >= 0.5 and no Update giving up (give_ups in
//     -json). On PostgreSQL, update_hot/2proc runs them as 2 child
//     processes of half the goroutines each on one aggregate: conflicts
//     between processes remain, and the target is no give-ups.
//   - read_category (issue 13 item 2): -events events more, in streams of
//     100 over 1,000 categories (cat<c>-<s>, a category's streams spread
//     over the log), and one stream as long as a category (1,000 events
//     at 1,000,000). Library: a category read through Read of all streams
//     with Filter.StreamPrefix "cat<c>-"; driver: that single stream read
//     by the library. 20 reads each, every timed read after an untimed
//     one of the same events. Target: ratio >= 0.5 (a category costs at
//     most twice a stream of its size).
//   - read_large and watch_large (issue 9 item 3): 1,200 events of 1 MiB
//     (-large-events, -large-size) read whole, and caught up on by a watch
//     from the start. The figure is peak RSS, not speed: the target is a
//     peak at most 64 MB plus one event above the baseline_rss_mb of the
//     child doing it (its peak with the store open, before the operation).
//     Driver: the same read, one cursor (its rate is given for scale).
//   - sub_catchup (package subscription): a subscription made with New,
//     a handler that does nothing and batches of -sub-batch (100),
//     catching up over -sub-events events (100,000) it did not see,
//     checkpointing after each batch. Driver: the plain read of the same
//     events, one cursor in position order (the bare read esbench uses
//     for read_stream), in lockstep as read_stream's.
//   - sub_tx: the same events through a subscription made with NewTx,
//     whose handler inserts one row per event through the checkpoint's
//     transaction. Driver: a hand-written consumer doing the same in
//     batches of the same size: read a batch, begin, insert the rows
//     (the handler's own code), update a checkpoint row, commit. Whole
//     runs alternate.
//   - sub_live: a live subscription's lag, from an append's return to the
//     handler's receipt of the event, with -sub-live (4,000) single-event
//     appends at -sub-rate (1,000) a second, open loop. Driver: the same
//     appends and a bare reader woken in process, without checkpoints.
//   - sub_group (PostgreSQL only): a backlog of -group-events (1,000,000)
//     events over 1,000 streams, consumed by one member and then by a
//     group of -group-members (3) child processes, with -group-partitions
//     (12) partitions and a handler costing -group-cost (1ms) per batch
//     of -group-batch (20) events, 50µs an event: on a machine of few
//     cores the handler bounds the group then, as the issue asks, not
//     the CPU (each member reads the whole log in the database and keeps
//     its share; with batches of 100 the reading costs as much as the
//     handler on 2 cores, and three members get about 1.3× one's rate);
//     library/s is the group's rate, driver/s the one member's, the
//     ratio the speed-up (the time runs from the members' start until
//     every stored checkpoint reaches the backlog's end, so it includes
//     the group sharing out its partitions: -group-lease).
//
// The subscription operations alone ("-only subscription"), sized for a
// couple of minutes:
//
//	go run ./cmd/esbench -backend postgres -only subscription -sub-events 50000 -group-events 100000
//
// # Memory
//
// peak_rss_mb is the peak resident set size. For read_stream,
// load_aggregate, read_large and watch_large it is that of a child process
// (this program re-run) that opens the store and does only that operation
// over the whole stream, so the figure is the operation's own peak, not
// the run's; driver_peak_rss_mb is the same for the driver's read. The
// child reports its own VmHWM (/proc/self/status): its ru_maxrss would
// include the parent's size at the fork, which Linux carries over exec.
// For the other operations it is this process's peak so far, ru_maxrss
// (rss_scope says which).
//
// # Output
//
// Without -json, a table. With -json, one object per line:
//
//	{"backend":"sqlite","op":"append_batch","events":1000000,"library_per_s":...,"driver_per_s":...,"ratio":...,...}
//
// with p50_ms/p99_ms (and driver_p50_ms/driver_p99_ms) for latency
// operations, the target the issue sets and whether it was met.
package main
