package codec_test

import (
	"errors"
	"testing"

	"github.com/esv2/esv2/codec"
)

// FuzzDecode feeds arbitrary type names and bytes to both built-in
// encodings: decoding must never panic, and must either succeed with an
// event that encodes again under a registered name, or fail with a
// *DecodeError naming one of the sentinels. The seed corpus runs in every
// `go test`; explore with `go test -fuzz FuzzDecode ./codec`.
func FuzzDecode(f *testing.F) {
	seeds := newRegistry(f, codec.Msgpack{})
	jsonSeeds := newRegistry(f, codec.JSON{})
	for _, e := range []Event{Created{Name: "n", Tags: []string{"t"}}, Counted{N: 7}, Renamed{From: "a", To: "b"}, &Pointed{X: 2}} {
		for _, reg := range []*codec.Registry[Event]{seeds, jsonSeeds} {
			typ, data, err := reg.Encode(e)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(typ, data)
			f.Add(typ, data[:len(data)/2])
		}
	}
	f.Add("test.created", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}) // array32 of 4G elements
	f.Add("test.created", []byte{0xdf, 0x7f, 0xff, 0xff, 0xff}) // map32 of 2G entries
	f.Add("test.created", []byte{0x81, 0xa4, 'T', 'a', 'g', 's', 0xdb, 0xff, 0xff, 0xff, 0xff})
	f.Add("test.counted", []byte(`{"N": 1e400}`))
	f.Add("test.pointed", []byte{0xc0})
	f.Add("test.unknown", []byte{})
	f.Add("", []byte(nil))

	regs := []*codec.Registry[Event]{newRegistry(f, codec.Msgpack{}), newRegistry(f, codec.JSON{})}
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		for _, reg := range regs {
			e, err := reg.Decode(typ, data)
			if err != nil {
				var de *codec.DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("%s: Decode(%q) error %T is not a *DecodeError: %v", reg.Encoding().Name(), typ, err, err)
				}
				if !errors.Is(err, codec.ErrUnknownType) && !errors.Is(err, codec.ErrMalformed) {
					t.Fatalf("%s: Decode(%q) error names no sentinel: %v", reg.Encoding().Name(), typ, err)
				}
				continue
			}
			if _, ok := reg.Name(e); !ok {
				t.Fatalf("%s: Decode(%q) returned %#v, not a registered type", reg.Encoding().Name(), typ, e)
			}
		}
	})
}
