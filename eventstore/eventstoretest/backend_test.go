package eventstoretest_test

import (
	"testing"

	"github.com/esv2/esv2/eventstore/eventstoretest"
	"github.com/esv2/esv2/internal/membackend"
	"github.com/esv2/esv2/subscription"
)

// TestRunBackend runs the public entry of the backend suite on the
// reference backend, with every feature.
func TestRunBackend(t *testing.T) {
	type tx struct{ n int }
	newTx := func() *tx { return &tx{1} }
	open := func(t *testing.T) *membackend.Backend[*tx] {
		b := membackend.New(newTx)
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return b
	}
	eventstoretest.RunBackendFeatures(t, func(t *testing.T) subscription.Backend[*tx] { return open(t) }, eventstoretest.BackendFeatures[*tx]{
		NewPair: func(t *testing.T) (subscription.Backend[*tx], subscription.Backend[*tx]) {
			a := open(t)
			b := a.Open()
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			return a, b
		},
		NewClosing: func(t *testing.T) (subscription.Backend[*tx], func() error) {
			b := open(t)
			return b, b.Close
		},
	})
}
