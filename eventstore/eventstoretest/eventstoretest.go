// Package eventstoretest is the public entry to esv2's conformance suite,
// for event store adapters written outside this module. Adapters of the
// module run the same suite.
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
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// A store that can be opened twice on one database (a file, a PostgreSQL
// schema) should also pass [RunFeatures] with [Features].NewPair, which adds
// the Shared subtests: idempotency, conflicts and global order across two
// stores, and watches woken by the other store's appends.
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
package eventstoretest

import (
	"testing"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/testsuite"
)

// Run runs the conformance suite of [eventstore.Store] against the stores
// newStore returns. See the package documentation for what newStore must do.
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	t.Helper()
	testsuite.Run(t, newStore)
}

// Features describes optional abilities of the stores under test; the zero
// value runs what Run runs.
type Features = testsuite.Features

// RunFeatures is Run with optional abilities: with Features.NewPair (two
// stores open on one new database, as two processes would open it), it also
// runs the Shared subtests (idempotency and conflicts across stores,
// watches woken by the other store's appends, one global order).
func RunFeatures(t *testing.T, newStore func(t *testing.T) eventstore.Store, f Features) {
	t.Helper()
	testsuite.RunFeatures(t, newStore, f)
}
