package thirdparty_test

import (
	"testing"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/eventstoretest"

	"example.com/thirdparty"
)

// TestConformance is all an adapter needs to run esv2's conformance suite.
func TestConformance(t *testing.T) {
	closeAll := func(t *testing.T, stores ...eventstore.Store) {
		t.Cleanup(func() {
			for _, s := range stores {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		})
	}
	eventstoretest.RunFeatures(t, func(t *testing.T) eventstore.Store {
		s := thirdparty.Open()
		closeAll(t, s)
		return s
	}, eventstoretest.Features{
		NoLifecycle: true,
		// Two stores on one database, as two processes would open it.
		NewPair: func(t *testing.T) (eventstore.Store, eventstore.Store) {
			db := thirdparty.NewDB()
			a, b := db.Open(), db.Open()
			closeAll(t, a, b)
			return a, b
		},
	})
}
