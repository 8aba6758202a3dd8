package sqlite_test

import (
	"testing"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/testsuite"
)

// TestInspector runs the shared tests of eventstore.Inspector on each kind
// of store. cmd/esv2's scripts check that Verify finds broken invariants
// in damaged files.
func TestInspector(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			testsuite.RunInspector(t, func(t *testing.T) eventstore.Store { return k.open(t) })
		})
	}
}
