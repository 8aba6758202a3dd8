package postgres

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/adaptertest"
)

// Run briefly, e.g.:
//   ESV2_POSTGRES_DSN=... go test -run '^$' -bench . -benchtime 2000x ./adapters/postgres/

func BenchmarkAppendOne(b *testing.B) {
	s := newTestStore(b, WithoutListen(), WithoutPoll())
	adaptertest.BenchAppendOne(b, s, eventstore.Event{Type: "bench", Data: make([]byte, 100)})
}

func BenchmarkAppendBatch100(b *testing.B) {
	s := newTestStore(b, WithoutListen(), WithoutPoll())
	adaptertest.BenchAppendBatch(b, s, adaptertest.Events(100, eventstore.Event{Type: "bench", Data: make([]byte, 100), Metadata: map[string]string{"user": "u"}}))
}

func BenchmarkAppendParallel64(b *testing.B) {
	s := newTestStore(b, WithoutListen(), WithoutPoll())
	ev := eventstore.Event{Type: "bench", Data: make([]byte, 100)}
	var next atomic.Int64
	b.SetParallelism(32) // 64 goroutines on 2 CPUs
	before := s.d.groups.Load()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		stream := fmt.Sprintf("s%d", next.Add(1))
		for pb.Next() {
			if _, err := s.Append(b.Context(), stream, eventstore.Any, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	b.ReportMetric(float64(b.N)/float64(s.d.groups.Load()-before), "appends/tx")
}

func BenchmarkReadAll(b *testing.B) {
	s := newTestStore(b, WithoutListen(), WithoutPoll())
	adaptertest.BenchRead(b, s, eventstore.AllStreams, adaptertest.Events(1000, eventstore.Event{Type: "bench", Data: make([]byte, 100)}))
}

// BenchmarkBareInsertBatch100 is the floor for BenchmarkAppendBatch100:
// the same rows inserted into the same table by one unnest INSERT, with
// no checks, lock, stream row or notification.
func BenchmarkBareInsertBatch100(b *testing.B) {
	s := newTestStore(b, WithoutListen(), WithoutPoll())
	const n = 100
	types := make([]string, n)
	data := make([][]byte, n)
	meta := make([][]byte, n)
	for i := range n {
		types[i], data[i], meta[i] = "bench", make([]byte, 100), []byte(`{"user":"u"}`)
	}
	sql := "INSERT INTO " + s.d.schema + ".events (position, stream_id, version, type, data, metadata, occurred_at) " +
		"SELECT $1::bigint + o, 's', $1::bigint + o, t, d, m, now() FROM unnest($2::text[], $3::bytea[], $4::jsonb[]) WITH ORDINALITY AS x(t, d, m, o)"
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.d.pool.Exec(b.Context(), sql, int64(i*n), types, data, meta); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}
