package esotel_test

import (
	"fmt"
	"testing"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/esotel"
	"github.com/esv2/esv2/eventstore"
)

// BenchmarkAppendNoProvider compares appends of 100 events to an in-memory
// store, bare and wrapped with no OpenTelemetry SDK installed (the global
// providers do nothing): the price of the wrapper when tracing is off.
//
//	go test -run '^$' -bench AppendNoProvider -count 6 ./esotel/
func BenchmarkAppendNoProvider(b *testing.B) {
	for _, wrapped := range []bool{false, true} {
		b.Run(fmt.Sprintf("wrapped=%v", wrapped), func(b *testing.B) {
			s, err := sqlite.Open(b.Context(), "")
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var store eventstore.Store = s
			if wrapped {
				store = esotel.WrapStore(s)
			}
			batch := make([]eventstore.Event, 100)
			for i := range batch {
				batch[i] = eventstore.Event{Type: "t", Data: []byte(`{"amount":10}`)}
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := store.Append(b.Context(), fmt.Sprint("s-", i%64), eventstore.Any, batch...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkReadNoProvider is BenchmarkAppendNoProvider for reads of a
// 1,000-event stream.
func BenchmarkReadNoProvider(b *testing.B) {
	for _, wrapped := range []bool{false, true} {
		b.Run(fmt.Sprintf("wrapped=%v", wrapped), func(b *testing.B) {
			s, err := sqlite.Open(b.Context(), "")
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			batch := make([]eventstore.Event, 1000)
			for i := range batch {
				batch[i] = eventstore.Event{Type: "t", Data: []byte(`{"amount":10}`)}
			}
			if _, err := s.Append(b.Context(), "s", eventstore.NoStream, batch...); err != nil {
				b.Fatal(err)
			}
			var store eventstore.Store = s
			if wrapped {
				store = esotel.WrapStore(s)
			}
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				for _, err := range store.Read(b.Context(), "s", eventstore.ReadOptions{}) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != len(batch) {
					b.Fatalf("read %d events", n)
				}
			}
		})
	}
}
