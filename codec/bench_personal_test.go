package codec_test

import (
	"testing"

	"github.com/esv2/esv2/codec"
)

// BenchmarkPersonal: what a key store costs per event. "plain" events have
// no Personal field (the walk is skipped after one cached type look-up);
// "personal" events have one, sealed with a fresh nonce on encode and
// opened on decode, with keys from a MemoryKeyStore.
func BenchmarkPersonal(b *testing.B) {
	ks := codec.NewMemoryKeyStore()
	for _, bc := range []struct {
		name string
		reg  *codec.Registry[Event]
		ev   Event
	}{
		{"plain/no-keystore", newRegistry(b, codec.Msgpack{}), Counted{N: 42}},
		{"plain/keystore", personalRegistry(b, codec.Msgpack{}, ks), Counted{N: 42}},
		{"personal/keystore", personalRegistry(b, codec.Msgpack{}, ks), Mail{Email: codec.NewPersonal("s", "ann@example.com")}},
	} {
		if err := codec.Register[Mail](bc.reg, "test.mail"); err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				// A new Personal each time: a cached ciphertext would
				// skip the encryption.
				ev := bc.ev
				if m, ok := ev.(Mail); ok {
					ev = Mail{Email: codec.NewPersonal("s", m.Email.Value())}
				}
				if _, _, err := bc.reg.Encode(ev); err != nil {
					b.Fatal(err)
				}
			}
		})
		typ, data, err := bc.reg.Encode(bc.ev)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.reg.Decode(typ, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
