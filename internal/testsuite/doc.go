// Package testsuite is the conformance suite of esv2's event stores: the
// executable form of the [eventstore.Store] contract. Every adapter of the
// module runs it from its own test file, and adapters written elsewhere run
// it through the public package [github.com/esv2/esv2/eventstore/eventstoretest].
//
// # Running it
//
//	func TestConformance(t *testing.T) {
//		testsuite.Run(t, func(t *testing.T) eventstore.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "es.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
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
// round trips, idempotency, invalid input, racing writers), Read
// (directions, limits, bounds past the end, filters, the all-streams log
// and its stream prefix, abandoned iterations, cancelled contexts), Info,
// Watch (from the present, the start, a version or position, or past every
// one; catch-up then live under concurrent writers; filters; slow watchers;
// cancellation; Close), Snapshot, Close, Stream (the [eventstore.Stream]
// handle over the store) and, with a pair of stores, Shared.
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
// # Testing the suite
//
// The package's own tests run the suite on a small in-memory reference
// store, which must pass, and on broken variants of it (a store that
// ignores expected versions, matches stream prefixes case-insensitively,
// loses an event between catch-up and live ...), each of which must fail
// the subtest written to catch it.
package testsuite
