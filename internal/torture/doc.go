// Package torture is esv2's torture and bad-input harness: writer and
// watcher processes append to overlapping streams while they are killed
// and restarted, and a checker verifies the store against what every
// writer and watcher was told.
//
// # Checker
//
// [Check] compares the final contents of a store with the logs the
// writers (attempted and acknowledged batches) and watchers (events
// yielded) left, and reports each broken guarantee as a [Violation]. Its
// unit test injects each kind of violation into a valid history and checks
// it is reported, so a silent checker cannot pass.
//
// # Torture run
//
// The run itself is behind the build tag torture:
//
//	go test -tags torture -run Torture -count=1 ./internal/torture/ -torture.rounds=3 -torture.round=3s
//
// The test re-executes its own binary as child processes (selected by an
// environment variable): each child runs writer goroutines that append
// random batches with random expected versions and idempotent retries to a
// shared set of streams, and watchers of each stream and of all streams.
// Every child logs each attempted batch, each acknowledged append and each
// watched event as one line, written with one write(2) on an O_APPEND file;
// the parent kills the children with SIGKILL at random moments, restarts
// them (watchers resume after the last position they logged, writers retry
// their unacknowledged batches), and in the end runs [Check]. The parent
// only kills processes, never the machine, so a line whose write returned
// is in the page cache and survives the kill; an fsync per line would
// only slow the run.
//
// On PostgreSQL (when ESV2_POSTGRES_DSN is set) the parent also terminates
// the children's server connections (pg_terminate_backend) at random
// moments, mid-append and mid-watch.
package torture
