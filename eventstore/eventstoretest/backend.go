package eventstoretest

import (
	"testing"

	"github.com/esv2/esv2/internal/testsuite"
	"github.com/esv2/esv2/subscription"
)

// RunBackend runs the conformance suite of [subscription.Backend], the
// subscriptions' part of a store, against the backends newBackend returns.
// It is RunBackendFeatures with the zero [BackendFeatures].
//
// newBackend is called once per leaf subtest, with that subtest's own t,
// from parallel subtests: each backend it returns must be on a new, empty
// database (a fresh file or schema) whose release the factory registers
// with t.Cleanup, as for [Run]:
//
//	func TestBackendConformance(t *testing.T) {
//		eventstoretest.RunBackend(t, func(t *testing.T) subscription.Backend[*sql.Tx] {
//			s := openStore(t) // a new, empty store, closed in t.Cleanup
//			return s.Subscriptions()
//		})
//	}
//
// Subtests are named Backend/<Method>/<Case> (Backend/Commit/WrongEpoch,
// Backend/Acquire/Concurrent ...). Leases and members that must expire get
// a ttl of 50ms, and the suite polls, with a deadline, until the backend's
// own clock has let them go; every other wait is on a result.
//
// Transactions are opaque to the suite: it checks that Commit and Unpark
// run fn once with a Tx that is not the zero value, and what they do with
// fn's error, but not that fn's own writes are rolled back with the
// checkpoint; adapters test that themselves.
func RunBackend[Tx any](t *testing.T, newBackend func(t *testing.T) subscription.Backend[Tx]) {
	t.Helper()
	RunBackendFeatures(t, newBackend, BackendFeatures[Tx]{})
}

// BackendFeatures describes what the backends under test can do beyond
// one backend on a private database. The zero value runs every subtest
// that needs only the factory, and logs the groups it skips.
type BackendFeatures[Tx any] struct {
	// NewPair, when set, returns two backends on one new, empty database,
	// as two processes would each open it, and registers their release
	// with t.Cleanup. It enables Backend/Shared: leases, resets, members
	// and parked events seen through the other handle, and members racing
	// for partitions through both.
	NewPair func(t *testing.T) (a, b subscription.Backend[Tx])
	// NewClosing, when set, returns a new, empty backend and a function
	// that closes the store under it. It enables Backend/Close, which
	// checks that every method then fails with eventstore.ErrClosed (and
	// runs no fn).
	NewClosing func(t *testing.T) (b subscription.Backend[Tx], closeStore func() error)
}

// RunBackendFeatures is [RunBackend] with the abilities f declares; see
// [BackendFeatures].
func RunBackendFeatures[Tx any](t *testing.T, newBackend func(t *testing.T) subscription.Backend[Tx], f BackendFeatures[Tx]) {
	t.Helper()
	testsuite.RunBackendFeatures(t, newBackend, testsuite.BackendFeatures[Tx]{
		NewPair:    f.NewPair,
		NewClosing: f.NewClosing,
	})
}
