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
// # What it checks
//
// Subtests are named after the method and the case, so that a failure reads
// as the rule broken: Append (expected versions, conflicts, empty batches,
// versions and positions, times, metadata and data round trips, idempotency,
// invalid input, racing writers), Read (directions, limits, filters, the
// all-streams log and its stream prefix, abandoned iterations, cancelled
// contexts), Info, Watch (from the present, the start or a version or
// position; catch-up then live under concurrent writers; filters; slow
// watchers; cancellation; Close), Snapshot and Close.
//
// # How it waits
//
// The suite never sleeps to let something happen: it waits on channels with
// a deadline (failing the test when the deadline passes), and collects the
// results of concurrent calls with errgroup.
package testsuite
