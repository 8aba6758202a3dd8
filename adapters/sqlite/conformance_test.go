package sqlite_test

import (
	"database/sql"
	"testing"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/eventstoretest"
	"github.com/esv2/esv2/subscription"
)

// TestConformance runs the shared suite on each kind of store, and its
// Shared subtests on two stores over one file.
func TestConformance(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			eventstoretest.RunFeatures(t, func(t *testing.T) eventstore.Store { return k.open(t) }, eventstoretest.Features{NewPair: k.openPair})
		})
	}
}

var _ eventstore.Store = (*sqlite.Store)(nil)

// TestBackendConformance runs the subscription backend suite on each kind
// of store, its Shared subtests on two stores over one file, and its
// Close subtests on a store closed under the backend.
func TestBackendConformance(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			f := eventstoretest.BackendFeatures[*sql.Tx]{
				NewClosing: func(t *testing.T) (subscription.Backend[*sql.Tx], func() error) {
					s := k.open(t)
					return s.Subscriptions(), s.Close
				},
			}
			if k.openPair != nil {
				f.NewPair = func(t *testing.T) (a, b subscription.Backend[*sql.Tx]) {
					x, y := k.openPair(t)
					return x.(*sqlite.Store).Subscriptions(), y.(*sqlite.Store).Subscriptions()
				}
			}
			eventstoretest.RunBackendFeatures(t, func(t *testing.T) subscription.Backend[*sql.Tx] {
				return k.open(t).Subscriptions()
			}, f)
		})
	}
}

var _ subscription.Store[*sql.Tx] = (*sqlite.Store)(nil)
