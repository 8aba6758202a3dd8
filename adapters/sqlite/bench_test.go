package sqlite_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/adaptertest"
)

func benchStore(b *testing.B) *sqlite.Store {
	b.Helper()
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkAppend appends one event per call from one goroutine.
func BenchmarkAppend(b *testing.B) {
	adaptertest.BenchAppendOne(b, benchStore(b), eventstore.Event{Type: "t", Data: make([]byte, 100)})
}

// BenchmarkAppendParallel appends one event per call from many goroutines,
// each to its own stream: group commit at work.
func BenchmarkAppendParallel(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	ev := eventstore.Event{Type: "t", Data: make([]byte, 100)}
	var n atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		stream := fmt.Sprintf("s-%d", n.Add(1))
		for pb.Next() {
			if _, err := s.Append(ctx, stream, eventstore.Any, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	st := s.Stats()
	b.ReportMetric(float64(st.Appends)/float64(max(st.Commits, 1)), "appends/commit")
}

// BenchmarkAppendBatch appends 100 events per call.
func BenchmarkAppendBatch(b *testing.B) {
	adaptertest.BenchAppendBatch(b, benchStore(b), adaptertest.Events(100, eventstore.Event{Type: "t", Data: make([]byte, 100)}))
}

// BenchmarkRead reads a stream of 10,000 events.
func BenchmarkRead(b *testing.B) {
	adaptertest.BenchRead(b, benchStore(b), "s", adaptertest.Events(10_000, eventstore.Event{Type: "t", Data: make([]byte, 100), Metadata: map[string]string{"k": "v"}}))
}
