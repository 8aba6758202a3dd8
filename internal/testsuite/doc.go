// Package testsuite is the conformance suite of esv2's event stores: the
// executable form of the [eventstore.Store] contract. Adapters, of this
// module or written elsewhere, run it through the public package
// [github.com/esv2/esv2/eventstore/eventstoretest], which translates its
// own Features to this package's; internal/testsuite/thirdparty is an
// adapter written as an outside author would, in a module of its own,
// whose test eventstoretest's tests run.
//
// # Running it
//
//	func TestConformance(t *testing.T) {
//		eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "es.db"))
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
// The factory is called once per leaf subtest with that subtest's own t, so
// its cleanups run when that subtest ends. Each store it returns must be
// empty and independent of the others; subtests run in parallel.
//
// [RunFeatures] takes optional abilities: with [Features].NewPair, which
// opens two stores on one new database, it also runs the Shared subtests,
// which need two processes' view of one database.
//
// # What it checks
//
// Subtests are named after the method and the case, so that a failure reads
// as the rule broken: Append (expected versions, conflicts, empty batches,
// versions and positions, times and their precision, metadata and data
// round trips, idempotency, invalid input up to huge events and overlong
// batches, racing writers, a context that ends at each point of an append
// in turn), Read (directions, limits, bounds past the end, filters, the
// all-streams log and its stream prefix, abandoned iterations, cancelled
// contexts), Info, Watch (from the present, the start, a version or
// position, or past every one; catch-up then live under concurrent
// writers; filters; slow watchers; cancellation; Close), Snapshot,
// FindEvent (or, with [Features].NoFindEvent, errors.ErrUnsupported),
// Close (every method after it, calls in flight, reads and watches made
// before it), CheckOrder (a nil context, then an ended one, then a closed
// store, then the arguments: the order of the checks every method makes,
// on which the adapters disagreed before issue 10), Stream (the
// [eventstore.Stream] handle over the store), LargeEvents and, with a pair
// of stores, Shared (including Close of one store while appends and
// watches are in flight on it, checked through the other).
//
// # Subscription backends
//
// [RunBackend] and [RunBackendFeatures] are the conformance suite of
// [github.com/esv2/esv2/subscription.Backend], generic in the backend's Tx,
// with the same habits: a factory per leaf subtest with that subtest's t,
// parallel subtests named Backend/<Method>/<Case>, errgroup for the
// racing members of Backend/Acquire/Concurrent. [BackendFeatures].NewPair
// adds Backend/Shared (two handles on one database) and NewClosing adds
// Backend/Close; without them those groups are skipped, and the test log
// says so. Leases and members that must expire get a ttl of 50ms and the
// suite polls until the backend's own clock has let a probe member go,
// so a database whose clock is not the test's is waited for correctly.
//
// # How it waits
//
// The suite never sleeps to let something happen: it waits on channels with
// a deadline (failing the test when the deadline passes), and collects the
// results of concurrent calls with errgroup. The one wait it cannot express
// that way, for a watch from the present to have fixed "the present", it
// turns into a condition: it appends probe events until one comes through.
//
// A watch case that means some events to come through a watch's live path
// (rather than its catch-up) appends them only once the watch has yielded
// the last event stored, or a marker event the case appends for that
// purpose: a watch that has yielded it has read up to the head and waits
// for a wake, whatever the scheduling. Only CatchUpThenLive appends while
// its watchers catch up, on purpose.
//
// Nor does it time a context to end while a store is in the middle of an
// append: Append/ContextEndsDuringAppend passes contexts that end after
// their n-th consultation (Err or Done), for every n up to 40, so that one
// of them ends at each point where the store looks, and checks that every
// answer tells the truth about what was stored. Whether an adapter's
// internal window (an append taken by a writer goroutine, COMMIT sent) is
// hit depends on where it consults its context; adapters keep their own
// tests, with hooks, for the windows they know.
//
// # Testing the suite
//
// The package's own tests run the suite on a small in-memory reference
// store, which must pass, and on broken variants of it (a store that
// ignores expected versions, matches stream prefixes case-insensitively,
// loses an event between catch-up and live, checks a closed store after
// its arguments ...), each of which must fail the subtest written to catch
// it. eventstoretest's tests run the suite on the front of package
// eventstore/driver over the tiny driver of internal/testsuite/thirdparty.
//
// The backend suite is tested the same way: it runs on
// internal/membackend, which must pass, and on membackend's deliberate
// Faults (Commit ignoring the epoch or writing checkpoints up
// to a lost one, Acquire stealing live leases or racing between its check
// and its write, Reset keeping epochs, Delete leaving parked events ...),
// each of which must fail its subtest (TestBackendSuiteCatchesMutants).
package testsuite
