package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/testsuite"
)

// TestConformance runs the shared suite on in-memory and file stores, and
// its Shared subtests on two stores over one file.
func TestConformance(t *testing.T) {
	t.Run("Memory", func(t *testing.T) {
		testsuite.Run(t, func(t *testing.T) eventstore.Store {
			return openMemory(t)
		})
	})
	t.Run("File", func(t *testing.T) {
		testsuite.RunFeatures(t, func(t *testing.T) eventstore.Store {
			return openFile(t, filepath.Join(t.TempDir(), "events.db"))
		}, testsuite.Features{
			// Two stores on one file, as two processes would open it.
			NewPair: func(t *testing.T) (eventstore.Store, eventstore.Store) {
				path := filepath.Join(t.TempDir(), "events.db")
				return openFile(t, path), openFile(t, path)
			},
		})
	})
}

var _ eventstore.Store = (*sqlite.Store)(nil)
