package testsuite

import "time"

// SetWaitTimeout shortens the suite's failure deadline for the mutant
// runs, where waits are expected to fail; it returns a restore function.
func SetWaitTimeout(d time.Duration) (restore func()) {
	old := waitTimeout
	waitTimeout = d
	return func() { waitTimeout = old }
}
