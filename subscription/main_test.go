package subscription_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no Run leaves a goroutine behind once its context
// ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
