package sqlite_test

import (
	"testing"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/codec/keystoretest"
)

// TestKeyStoreConformance runs the key store suite on each kind of store,
// through the store's cached key store and on its bare table.
func TestKeyStoreConformance(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Run("Cached", func(t *testing.T) {
				keystoretest.Run(t, func(t *testing.T) codec.KeyStore { return k.open(t).KeyStore() })
			})
			t.Run("Table", func(t *testing.T) {
				keystoretest.Run(t, func(t *testing.T) codec.KeyStore { return sqlite.RawKeyStore(k.open(t)) })
			})
		})
	}
}
