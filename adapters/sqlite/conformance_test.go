package sqlite_test

import (
	"testing"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/eventstoretest"
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
