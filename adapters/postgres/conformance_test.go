package postgres

import (
	"testing"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/eventstoretest"
)

// TestConformance runs the shared suite on a fresh schema per subtest, and
// its Shared subtests on two stores over one schema (two instances).
func TestConformance(t *testing.T) {
	testDSN(t)
	eventstoretest.RunFeatures(t, func(t *testing.T) eventstore.Store { return newTestStore(t) }, eventstoretest.Features{
		NewPair: func(t *testing.T) (eventstore.Store, eventstore.Store) {
			schema := freshSchema(t)
			return openStore(t, schema), openStore(t, schema)
		},
	})
}
