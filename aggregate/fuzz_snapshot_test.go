package aggregate_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

// FuzzSnapshotLoad stores fuzzed bytes as the snapshot of a stream and
// loads the aggregate: Load never fails or panics because of a snapshot;
// a snapshot that decodes is used (and the event after it folded in), one
// that does not is reported and the state is rebuilt from all events.
// Explore with `go test -run '^$' -fuzz '^FuzzSnapshotLoad$' ./aggregate`.
func FuzzSnapshotLoad(f *testing.F) {
	valid, err := codec.EncodeState(codec.Msgpack{}, Counter{Name: "c", N: 3, Log: []int64{1, 2}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte{})
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte(`{"N": 1}`))
	f.Add([]byte{0x83, 0xa1, 'N', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})

	store := openSQLite(f, "")
	reg := counterCodec(f)
	var reported []error
	repo := newRepo(f, store, aggregate.Config[Counter, CounterEvent]{
		Codec: reg, SnapshotSchema: "counter/v1",
		OnSnapshotError: func(_ context.Context, _ string, err error) { reported = append(reported, err) },
	})
	n := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := t.Context()
		n++
		stream := fmt.Sprintf("c-%d", n)
		evs := make([]eventstore.Event, 3)
		for i := range evs {
			e, err := reg.Event(Added{By: int64(i + 1)})
			if err != nil {
				t.Fatal(err)
			}
			evs[i] = e
		}
		if _, err := store.Append(ctx, stream, eventstore.NoStream, evs...); err != nil {
			t.Fatal(err)
		}
		if err := store.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: stream, Version: 2, Schema: "counter/v1", Data: data}); err != nil {
			t.Fatal(err)
		}
		reported = reported[:0]
		a, err := repo.Load(ctx, stream)
		if err != nil {
			t.Fatalf("Load with a fuzzed snapshot: %v", err)
		}
		want := Counter{N: 6, Log: []int64{1, 2, 3}}
		wantSnap := uint64(0)
		if s, err := codec.DecodeState[Counter](codec.Msgpack{}, data); err == nil {
			want, wantSnap = evolve(s, Added{By: 3}), 2
		}
		if diff := cmp.Diff(want, a.State(), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("state (-want +got):\n%s", diff)
		}
		if a.Version() != 3 || a.SnapshotVersion() != wantSnap {
			t.Fatalf("version %d, snapshot version %d; want 3, %d", a.Version(), a.SnapshotVersion(), wantSnap)
		}
		if (wantSnap == 0) != (len(reported) == 1) {
			t.Fatalf("snapshot problems reported: %v (snapshot used: %v)", reported, wantSnap != 0)
		}
	})
}
