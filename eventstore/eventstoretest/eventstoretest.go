// Package eventstoretest is the public entry to esv2's conformance suite:
// the executable form of the [eventstore.Store] contract. The adapters of
// this module run it through this package, and adapters written elsewhere
// (usually a [github.com/esv2/esv2/eventstore/driver.Driver] under the
// front that [github.com/esv2/esv2/eventstore/driver.New] returns)
// run it the same way.
//
// # Running the suite
//
// An adapter calls [Run] from a test of its own, with a factory that opens
// a new, empty store for each subtest and closes it in t.Cleanup:
//
//	package mystore_test
//
//	import (
//		"testing"
//
//		"github.com/esv2/esv2/eventstore"
//		"github.com/esv2/esv2/eventstore/eventstoretest"
//		"example.com/mystore"
//	)
//
//	func TestConformance(t *testing.T) {
//		eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
//			s, err := mystore.Open(t.Context(), mystore.Config{Schema: freshSchema(t)})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() {
//				if err := s.Close(); err != nil {
//					t.Error(err)
//				}
//			})
//			return s
//		})
//	}
//
// A store that can be opened twice on one database (a file, a PostgreSQL
// schema) should also pass [RunFeatures] with [Features].NewPair, which adds
// the Shared subtests: idempotency, conflicts and global order across two
// stores, watches woken by the other store's appends, and Close while
// appends are in flight, checked through the other store.
//
// A failing subtest names the rule broken, e.g.
// TestConformance/Append/ExpectedVersionConflict or
// TestConformance/Watch/CatchUpThenLive; run one with -run as usual.
//
// # What the factory must do
//
// The factory is called once per leaf subtest, with that subtest's own t, and
// from parallel subtests at once. Each store it returns must be empty and
// independent of every other (a fresh file, database or schema), and the
// factory registers its own cleanup with t.Cleanup; the suite also closes
// some stores itself, which [eventstore.Store.Close] allows.
//
// Subtests are parallel, so they run after the test function that called
// Run has returned: anything the factory shares between stores (a
// connection pool, a server) must be released with t.Cleanup on the outer
// test, never with defer.
//
// # What it checks
//
// Subtests are grouped by method: Append (expected versions, conflicts,
// empty batches, versions and positions, times and their precision, round
// trips, idempotency, invalid input up to huge events and overlong
// batches, racing writers, a context that ends while the append runs),
// Read, Info, Watch, Snapshot, FindEvent, Close (every method after it,
// calls in flight, reads and watches made before it), CheckOrder (the
// order of the checks every method makes: a nil context, then an ended
// one, then a closed store, then the arguments), Stream, LargeEvents and,
// with a pair of stores, Shared. The suite waits on channels with
// deadlines, never on sleeps, so a failure is a broken rule, not a slow
// machine.
//
// # Subscription backends
//
// A store that keeps subscriptions (a [github.com/esv2/esv2/subscription.Store])
// runs [RunBackend] on its [github.com/esv2/esv2/subscription.Backend] too:
// registration, heartbeats, leases and their epochs, checkpoints (never
// backwards, all or nothing, fenced by ErrLeaseLost), parked events, reset
// and delete, and members racing for partitions.
package eventstoretest

import (
	"testing"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/testsuite"
)

// Run runs the conformance suite of [eventstore.Store] against the stores
// newStore returns. See the package documentation for what newStore must
// do. It is RunFeatures with the zero [Features].
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	t.Helper()
	RunFeatures(t, newStore, Features{})
}

// Features describes what the stores under test can do beyond one
// [eventstore.Store] on a private database. The zero value runs every
// subtest that needs only the factory, and expects [eventstore.Store.FindEvent]
// to find events.
type Features struct {
	// NewPair, when set, opens two stores on one new, empty database, as
	// two processes of an application would each open it, and registers
	// their Close with t.Cleanup (the suite may close one of them first).
	// It enables the Shared subtests: idempotency and conflicts across
	// the stores, watches woken by the other store's appends, one global
	// order for writers on both, snapshots, and Close of one store while
	// appends and watches are in flight on it, checked through the other.
	// Leave it nil for a store that cannot be opened twice (a private
	// in-memory database).
	NewPair func(t *testing.T) (a, b eventstore.Store)

	// NoFindEvent declares stores that cannot look events up by ID (a
	// front over a driver without the EventFinder ability of package
	// eventstore/driver): the FindEvent subtests then expect every lookup
	// that passes the usual checks to fail with errors.ErrUnsupported,
	// instead of finding the event.
	NoFindEvent bool

	// NoLifecycle declares stores that cannot delete (a front over a
	// driver without the Deleter ability of package eventstore/driver):
	// the Lifecycle subtests then expect errors.ErrUnsupported from
	// deletion, truncation and snapshot deletion instead of their effect.
	NoLifecycle bool
}

// RunFeatures is [Run] with the abilities f declares; see [Features].
func RunFeatures(t *testing.T, newStore func(t *testing.T) eventstore.Store, f Features) {
	t.Helper()
	testsuite.RunFeatures(t, newStore, testsuite.Features{
		NewPair:     f.NewPair,
		NoFindEvent: f.NoFindEvent,
		NoLifecycle: f.NoLifecycle,
	})
}
