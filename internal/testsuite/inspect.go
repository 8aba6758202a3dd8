package testsuite

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
)

// RunInspector tests a store's [eventstore.Inspector] methods; newStore
// must return stores that implement it. Adapters call it from their own
// tests (it is not part of Run: Inspector is an optional ability).
func RunInspector(t *testing.T, newStore Factory) {
	open := func(t *testing.T) (eventstore.Store, eventstore.Inspector) {
		s := newStore(t)
		insp, ok := s.(eventstore.Inspector)
		if !ok {
			t.Fatalf("%T does not implement eventstore.Inspector", s)
		}
		return s, insp
	}
	base := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	// fill appends to streams whose IDs sort differently by bytes than
	// by number, with a LIKE wildcard in one, and returns the last
	// event's time per stream.
	fill := func(t *testing.T, s eventstore.Store) {
		t.Helper()
		n := 0
		for _, id := range []string{"b-1", "a-2", "a-10", "a_1", "a-1", "a-2"} {
			n++
			_, err := s.Append(t.Context(), id, eventstore.Any, eventstore.Event{Type: "T", Data: []byte("x"), Time: base.Add(time.Duration(n) * time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	at := func(n int) time.Time { return base.Add(time.Duration(n) * time.Minute) }

	t.Run("Inspector/ListStreams", func(t *testing.T) {
		t.Parallel()
		s, insp := open(t)
		ctx := t.Context()
		if got, err := insp.ListStreams(ctx, "", "", 0); err != nil || len(got) != 0 {
			t.Fatalf("empty store: %v, %v", got, err)
		}
		fill(t, s)
		all := []eventstore.StreamSummary{
			{StreamID: "a-1", Version: 1, LastTime: at(5)},
			{StreamID: "a-10", Version: 1, LastTime: at(3)},
			{StreamID: "a-2", Version: 2, LastTime: at(6)},
			{StreamID: "a_1", Version: 1, LastTime: at(4)},
			{StreamID: "b-1", Version: 1, LastTime: at(1)},
		}
		for _, c := range []struct {
			name          string
			prefix, after string
			limit         int
			want          []eventstore.StreamSummary
		}{
			{"All", "", "", 0, all},
			{"Limit", "", "", 2, all[:2]},
			{"After", "", "a-10", 2, all[2:4]},
			{"Prefix", "a-", "", 0, all[:3]},
			{"PrefixIsLiteral", "a_", "", 0, all[3:4]},
			{"PrefixAfter", "a-", "a-10", 0, all[2:3]},
			{"NoMatch", "c", "", 0, nil},
		} {
			got, err := insp.ListStreams(ctx, c.prefix, c.after, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("%s: ListStreams(%q, %q, %d) (-want +got):\n%s", c.name, c.prefix, c.after, c.limit, diff)
			}
		}
	})

	t.Run("Inspector/Summary", func(t *testing.T) {
		t.Parallel()
		s, insp := open(t)
		ctx := t.Context()
		empty, err := insp.Summary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if empty.Events != 0 || empty.Streams != 0 || !empty.Oldest.IsZero() || !empty.Newest.IsZero() || empty.SchemaVersion < 1 {
			t.Errorf("empty store: %+v", empty)
		}
		fill(t, s)
		if err := s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "a-2", Name: "x", Version: 1, Schema: "v1", Data: []byte("s")}); err != nil {
			t.Fatal(err)
		}
		got, err := insp.Summary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := eventstore.StoreSummary{Events: 6, Streams: 5, Snapshots: 1, Position: 6, Oldest: at(1), Newest: at(6),
			SizeBytes: got.SizeBytes, SchemaVersion: empty.SchemaVersion}
		if diff := cmp.Diff(want, got); diff != "" || got.SizeBytes <= 0 {
			t.Errorf("Summary (-want +got):\n%s(size %d)", diff, got.SizeBytes)
		}
	})

	t.Run("Inspector/ListSnapshots", func(t *testing.T) {
		t.Parallel()
		s, insp := open(t)
		ctx := t.Context()
		fill(t, s)
		for _, sn := range []eventstore.Snapshot{
			{StreamID: "a-2", Name: "z", Version: 2, Schema: "v2", Data: []byte("zz")},
			{StreamID: "a-2", Name: "b", Version: 1, Schema: "v1", Data: []byte("b")},
			{StreamID: "a-1", Name: "b", Version: 1, Schema: "v1", Data: []byte("other")},
		} {
			if err := s.SaveSnapshot(ctx, sn); err != nil {
				t.Fatal(err)
			}
		}
		got, err := insp.ListSnapshots(ctx, "a-2")
		if err != nil {
			t.Fatal(err)
		}
		want := []eventstore.Snapshot{
			{StreamID: "a-2", Name: "b", Version: 1, Schema: "v1", Data: []byte("b")},
			{StreamID: "a-2", Name: "z", Version: 2, Schema: "v2", Data: []byte("zz")},
		}
		// Times are the store's clock: only checked to be set.
		for i := range got {
			if got[i].Time.IsZero() {
				t.Errorf("snapshot %q has no time", got[i].Name)
			}
			got[i].Time = time.Time{}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ListSnapshots (-want +got):\n%s", diff)
		}
		if none, err := insp.ListSnapshots(ctx, "b-1"); err != nil || len(none) != 0 {
			t.Errorf("ListSnapshots of a stream without any: %v, %v", none, err)
		}
	})

	t.Run("Inspector/VerifySound", func(t *testing.T) {
		t.Parallel()
		s, insp := open(t)
		ctx := t.Context()
		if got, err := insp.Verify(ctx); err != nil || len(got) != 0 {
			t.Fatalf("empty store: %v, %v", got, err)
		}
		fill(t, s)
		if _, err := s.Append(ctx, "with-ids", eventstore.NoStream, eventstore.Event{ID: "id-1", Type: "T"}, eventstore.Event{ID: "id-2", Type: "T"}); err != nil {
			t.Fatal(err)
		}
		if got, err := insp.Verify(ctx); err != nil || len(got) != 0 {
			t.Fatalf("sound store: %v, %v", got, err)
		}
	})

	// A store after deletions and truncations (issue 12) is sound: gaps
	// in positions, streams starting past version 1, tombstones and a
	// head above the last event are what those leave.
	t.Run("Inspector/VerifyAfterLifecycle", func(t *testing.T) {
		t.Parallel()
		s, insp := open(t)
		ctx := t.Context()
		fill(t, s)
		l, ok := s.(eventstore.Lifecycle)
		if !ok {
			t.Fatalf("%T does not implement eventstore.Lifecycle", s)
		}
		for _, id := range []string{"long", "gone", "short", "newest"} {
			if _, err := s.Append(ctx, id, eventstore.NoStream, eventstore.Event{ID: id + "-1", Type: "T"}, eventstore.Event{Type: "T"}, eventstore.Event{Type: "T"}); err != nil {
				t.Fatal(err)
			}
		}
		steps := []error{
			l.TruncateStream(ctx, "long", 3),
			l.TruncateStream(ctx, "short", 3),
			l.DeleteStream(ctx, "gone", eventstore.Exact(3)),
			l.DeleteStream(ctx, "newest", eventstore.Any),
		}
		if err := errors.Join(steps...); err != nil {
			t.Fatal(err)
		}
		if got, err := insp.Verify(ctx); err != nil || len(got) != 0 {
			t.Fatalf("store after deletions and truncations: %v, %v", got, err)
		}
		if _, err := s.Append(ctx, "long", eventstore.Exact(3), eventstore.Event{Type: "T"}); err != nil {
			t.Fatal(err)
		}
		if got, err := insp.Verify(ctx); err != nil || len(got) != 0 {
			t.Fatalf("store after an append to a truncated stream: %v, %v", got, err)
		}
	})

	t.Run("Inspector/Closed", func(t *testing.T) {
		t.Parallel()
		s, insp := open(t)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := insp.Summary(t.Context()); !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("Summary after Close: %v, want ErrClosed", err)
		}
	})
}
