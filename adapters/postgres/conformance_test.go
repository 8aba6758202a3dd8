package postgres

import (
	"testing"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/testsuite"
)

func TestConformance(t *testing.T) {
	testDSN(t)
	testsuite.Run(t, func(t *testing.T) eventstore.Store { return newTestStore(t) })
}
