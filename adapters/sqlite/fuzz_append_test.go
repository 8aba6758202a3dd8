package sqlite_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
)

// FuzzAppend appends fuzzed events to a new in-memory store: the append is
// either refused with ErrInvalidInput (or a conflict) and nothing is
// written, or it succeeds and the stream reads back exactly what was
// appended. Explore with
// `go test -run '^$' -fuzz '^FuzzAppend$' ./adapters/sqlite`.
func FuzzAppend(f *testing.F) {
	f.Add("s", int64(-1), "t", "id", []byte("data"), "k", "v", uint8(2))
	f.Add("'; DROP TABLE events; --", int64(0), "t' OR 1=1", "x'); --", []byte{0, 0xff}, "k') --", "v", uint8(3))
	f.Add("s\x00", int64(-2), "t", "", []byte(nil), "", "", uint8(1))
	f.Add("ünï", int64(3), "t\xff", "a", []byte{}, "", "v", uint8(1))
	f.Add("$all", int64(-1), "t", "", []byte("x"), "$.a", "\"", uint8(1))
	f.Fuzz(func(t *testing.T, stream string, expected int64, typ, id string, data []byte, key, value string, n uint8) {
		ctx := context.Background()
		s, err := sqlite.Open(ctx, ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		events := make([]eventstore.Event, int(n%4))
		for i := range events {
			events[i] = eventstore.Event{Type: typ, Data: data}
			if id != "" {
				events[i].ID = id + string(rune('a'+i)) // distinct IDs within the batch
			}
			if key != "" || value != "" {
				events[i].Metadata = map[string]string{key: value}
			}
		}
		res, err := s.Append(ctx, stream, eventstore.ExpectedVersion(expected), events...)
		all, rerr := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}))
		if rerr != nil {
			t.Fatalf("Read(AllStreams): %v", rerr)
		}
		if err != nil {
			if !errors.Is(err, eventstore.ErrInvalidInput) && !errors.Is(err, eventstore.ErrConcurrency) {
				t.Fatalf("Append(%q, %d, %d events) failed with %v, want ErrInvalidInput or ErrConcurrency", stream, expected, len(events), err)
			}
			if len(all) != 0 {
				t.Fatalf("refused Append(%q) wrote %d events", stream, len(all))
			}
			return
		}
		if res.Appended != len(events) || res.Version != uint64(len(events)) {
			t.Fatalf("Append result %+v for %d events on a new store", res, len(events))
		}
		got, err := eventstore.Collect(s.Read(ctx, stream, eventstore.ReadOptions{}))
		if err != nil {
			t.Fatalf("Read(%q): %v", stream, err)
		}
		type ev struct {
			Stream, ID, Type string
			Data             []byte
			Metadata         map[string]string
			Version          uint64
		}
		var want, gotEvs []ev
		for i, e := range events {
			want = append(want, ev{stream, e.ID, e.Type, e.Data, e.Metadata, uint64(i + 1)})
		}
		for _, r := range got {
			gotEvs = append(gotEvs, ev{r.StreamID, r.ID, r.Type, r.Data, r.Metadata, r.Version})
		}
		if diff := cmp.Diff(want, gotEvs, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("Read(%q) after Append (-want +got):\n%s", stream, diff)
		}
		if len(all) != len(events) {
			t.Fatalf("Read(AllStreams): %d events, want %d", len(all), len(events))
		}
	})
}
