//go:build race

package aggregate_test

// raceEnabled reports a -race build, where sync.Pool drops items at random
// and allocation counts mean little.
const raceEnabled = true
