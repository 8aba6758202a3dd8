package eventstore_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind (Follow and the
// Notifier must not start any of their own).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
