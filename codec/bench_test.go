package codec_test

import "testing"

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
