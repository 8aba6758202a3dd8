//go:build !race

package main

// copyEvents is the size of TestCopySQLiteToPostgres's store (see
// race_test.go).
const (
	copyEvents  = 100_000
	copyStreams = 1000
)
