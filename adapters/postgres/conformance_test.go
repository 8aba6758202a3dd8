package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/eventstoretest"
	"github.com/esv2/esv2/subscription"
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

// TestBackendConformance runs the subscription backend suite on a fresh
// schema per subtest, its Shared subtests on two stores over one schema,
// and its Close subtests on a store closed under the backend.
func TestBackendConformance(t *testing.T) {
	testDSN(t)
	eventstoretest.RunBackendFeatures(t, func(t *testing.T) subscription.Backend[pgx.Tx] {
		return newTestStore(t).Subscriptions()
	}, eventstoretest.BackendFeatures[pgx.Tx]{
		NewPair: func(t *testing.T) (a, b subscription.Backend[pgx.Tx]) {
			schema := freshSchema(t)
			return openStore(t, schema).Subscriptions(), openStore(t, schema).Subscriptions()
		},
		NewClosing: func(t *testing.T) (subscription.Backend[pgx.Tx], func() error) {
			s := newTestStore(t)
			return s.Subscriptions(), s.Close
		},
	})
}
