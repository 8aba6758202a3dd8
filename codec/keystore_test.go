package codec_test

import (
	"testing"

	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/codec/keystoretest"
)

func TestMemoryKeyStore(t *testing.T) {
	keystoretest.Run(t, func(*testing.T) codec.KeyStore { return codec.NewMemoryKeyStore() })
}

func TestKeyCacheConformance(t *testing.T) {
	keystoretest.Run(t, func(*testing.T) codec.KeyStore {
		return codec.NewKeyCache(codec.NewMemoryKeyStore(), 0, 0)
	})
}
