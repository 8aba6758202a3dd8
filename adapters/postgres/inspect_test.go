package postgres

import (
	"testing"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/testsuite"
)

// TestInspector runs the shared tests of eventstore.Inspector, each on a
// store in a fresh schema. cmd/esv2's scripts check that Verify finds
// broken invariants in a damaged schema.
func TestInspector(t *testing.T) {
	testsuite.RunInspector(t, func(t *testing.T) eventstore.Store { return newTestStore(t, WithoutListen(), WithoutPoll()) })
}
