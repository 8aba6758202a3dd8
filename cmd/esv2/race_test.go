//go:build race

package main

// copyEvents is the size of TestCopySQLiteToPostgres's store. Under the
// race detector modernc's SQLite runs several times slower, so the test
// copies 10,000 events in 100 streams there, and the full 100,000 in
// 1,000 streams without it.
const (
	copyEvents  = 10_000
	copyStreams = 100
)
