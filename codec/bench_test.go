package codec_test

import (
	"testing"

	"github.com/esv2/esv2/codec"
)

// BenchmarkEncode and BenchmarkDecode time the per-event codec work that
// Repository.Save and Repository.Load add to the store's own; compare
// changes with benchstat:
//
//	go test -run '^$' -bench 'Encode|Decode' -count 10 ./codec > new.txt
func BenchmarkEncode(b *testing.B) {
	for _, enc := range encodings {
		b.Run(enc.Name(), func(b *testing.B) {
			reg := newRegistry(b, enc)
			e := Created{Name: "account-42", Tags: []string{"gold", "eu"}}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := reg.Encode(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, enc := range encodings {
		b.Run(enc.Name(), func(b *testing.B) {
			reg := newRegistry(b, enc)
			name, data, err := reg.Encode(Created{Name: "account-42", Tags: []string{"gold", "eu"}})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Decode(name, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRouter compares decoding a stored event through a Router over
// three aggregates' registries with decoding it through its own registry:
// the router's share is the difference. Compare the two with
//
//	go test -run '^$' -bench Router -count 6 ./codec > router.txt
//	benchstat -col /decoder router.txt
//
// The allocations must be equal: the router adds none per event. With
// enc=none nothing is decoded, so the times are the lookups alone.
func BenchmarkRouter(b *testing.B) {
	// enc=none decodes nothing, leaving only the lookups to time.
	for _, enc := range append(encodings[:len(encodings):len(encodings)], nopEncoding{}) {
		reg := newRegistry(b, enc)
		rt := newRouter(b, accountRegistry(b), codec.New[Event](), reg)
		rec := record(b, reg, Created{Name: "account-42", Tags: []string{"gold", "eu"}}, "thing-1", 3)
		b.Run("decoder=registry/enc="+enc.Name(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.DecodeRecorded(&rec); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("decoder=router/enc="+enc.Name(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rt.Decode(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// nopEncoding leaves every value as it is, so that a benchmark times the
// codec's own work.
type nopEncoding struct{}

func (nopEncoding) Name() string                { return "none" }
func (nopEncoding) Marshal(any) ([]byte, error) { return nil, nil }
func (nopEncoding) Unmarshal([]byte, any) error { return nil }
