package postgres

import (
	"testing"

	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/codec/keystoretest"
)

// TestKeyStoreConformance runs the key store suite on a fresh schema per
// case, through the store's cached key store and on its bare table.
func TestKeyStoreConformance(t *testing.T) {
	testDSN(t)
	t.Run("Cached", func(t *testing.T) {
		keystoretest.Run(t, func(t *testing.T) codec.KeyStore { return newTestStore(t).KeyStore() })
	})
	t.Run("Table", func(t *testing.T) {
		keystoretest.Run(t, func(t *testing.T) codec.KeyStore { return newKeyTable(newTestStore(t).d) })
	})
}
