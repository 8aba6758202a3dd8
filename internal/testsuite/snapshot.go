package testsuite

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
)

func snapshotTests() []test {
	return []test{
		{"SaveLoad", leaf(testSnapshotSaveLoad)},
		{"DefaultName", leaf(testSnapshotDefaultName)},
		{"NamesIndependent", leaf(testSnapshotNames)},
		{"NotFound", leaf(testSnapshotNotFound)},
		{"LatestWins", leaf(testSnapshotLatest)},
		{"OlderDoesNotOverwrite", leaf(testSnapshotOlder)},
		{"ConcurrentSavesKeepNewest", leaf(testSnapshotConcurrent)},
		{"AllStreams", leaf(testSnapshotAll)},
		{"DataRoundTrip", leaf(testSnapshotData)},
		{"CancelledContext", leaf(testSnapshotCancelled)},
		{"InvalidInput", leaf(testSnapshotInvalid)},
		{"PastHead", leaf(testSnapshotPastHead)},
	}
}

// cmpSnapshot compares snapshots except Time, which the store sets.
var cmpSnapshot = []cmp.Option{cmpBytes, cmpopts.IgnoreFields(eventstore.Snapshot{}, "Time"), cmpopts.EquateEmpty()}

// grow appends events to stream until its version is at least v, so that
// a snapshot at v is not past the stream's head (issue 9 item 7).
func grow(t *testing.T, s eventstore.Store, stream string, v uint64) {
	t.Helper()
	cur := info(t, s, stream).Version
	if cur < v {
		mustAppend(t, s, stream, eventstore.Exact(cur), numbered(int(v-cur), "t", stream)...)
	}
}

func save(t *testing.T, s eventstore.Store, snap eventstore.Snapshot) {
	t.Helper()
	if err := s.SaveSnapshot(ctxTimeout(t), snap); err != nil {
		t.Fatalf("SaveSnapshot(%q, %q, version %d): %v", snap.StreamID, snap.Name, snap.Version, err)
	}
}

func load(t *testing.T, s eventstore.Store, stream, name string) eventstore.Snapshot {
	t.Helper()
	got, err := s.LoadSnapshot(ctxTimeout(t), stream, name)
	if err != nil {
		t.Fatalf("LoadSnapshot(%q, %q): %v", stream, name, err)
	}
	return got
}

func wantSnapshot(t *testing.T, s eventstore.Store, stream, name string, want eventstore.Snapshot) {
	t.Helper()
	got := load(t, s, stream, name)
	if diff := cmp.Diff(want, got, cmpSnapshot...); diff != "" {
		t.Errorf("LoadSnapshot(%q, %q) mismatch (-want +got):\n%s", stream, name, diff)
	}
}

func testSnapshotSaveLoad(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, numbered(3, "t", "e")...)
	snap := eventstore.Snapshot{StreamID: "s", Name: "balance", Version: 3, Schema: "v1", Data: []byte("state at 3")}
	lo := time.Now()
	save(t, s, snap)
	hi := time.Now()
	got := load(t, s, "s", "balance")
	if diff := cmp.Diff(snap, got, cmpSnapshot...); diff != "" {
		t.Errorf("LoadSnapshot mismatch (-want +got):\n%s", diff)
	}
	checkTime(t, "Snapshot.Time", got.Time, lo, hi)
	// A snapshot does not change the stream.
	wantVersion(t, s, "s", 3)
}

func testSnapshotDefaultName(t *testing.T, s eventstore.Store) {
	grow(t, s, "s", 4)
	save(t, s, eventstore.Snapshot{StreamID: "s", Version: 2, Schema: "v1", Data: []byte("saved unnamed")})
	for _, name := range []string{"", eventstore.DefaultSnapshotName} {
		got := load(t, s, "s", name)
		if got.Name != "" && got.Name != eventstore.DefaultSnapshotName {
			t.Errorf("LoadSnapshot(s, %q).Name = %q, want %q (or empty)", name, got.Name, eventstore.DefaultSnapshotName)
		}
		want := eventstore.Snapshot{StreamID: "s", Name: got.Name, Version: 2, Schema: "v1", Data: []byte("saved unnamed")}
		if diff := cmp.Diff(want, got, cmpSnapshot...); diff != "" {
			t.Errorf("LoadSnapshot(s, %q) mismatch (-want +got):\n%s", name, diff)
		}
	}
	// Saving under the explicit default name replaces the unnamed one.
	save(t, s, eventstore.Snapshot{StreamID: "s", Name: eventstore.DefaultSnapshotName, Version: 4, Schema: "v1", Data: []byte("saved named")})
	if got := load(t, s, "s", ""); got.Version != 4 || string(got.Data) != "saved named" {
		t.Errorf("LoadSnapshot(s, \"\") after saving under %q: %+v, want version 4", eventstore.DefaultSnapshotName, got)
	}
}

func testSnapshotNames(t *testing.T, s eventstore.Store) {
	snaps := []eventstore.Snapshot{
		{StreamID: "s", Name: eventstore.DefaultSnapshotName, Version: 3, Schema: "agg/v1", Data: []byte("aggregate")},
		{StreamID: "s", Name: "a", Version: 5, Schema: "a/v1", Data: []byte("model a")},
		{StreamID: "s", Name: "b", Version: 1, Schema: "b/v2", Data: []byte("model b")},
		{StreamID: "t", Name: "a", Version: 9, Schema: "a/v1", Data: []byte("model a of t")},
	}
	grow(t, s, "s", 6)
	grow(t, s, "t", 9)
	for _, snap := range snaps {
		save(t, s, snap)
	}
	for _, snap := range snaps {
		wantSnapshot(t, s, snap.StreamID, snap.Name, snap)
	}
	// Advancing one name leaves the others alone.
	next := eventstore.Snapshot{StreamID: "s", Name: "a", Version: 6, Schema: "a/v1", Data: []byte("model a at 6")}
	save(t, s, next)
	wantSnapshot(t, s, "s", "a", next)
	wantSnapshot(t, s, "s", "b", snaps[2])
	wantSnapshot(t, s, "t", "a", snaps[3])
	wantSnapshot(t, s, "s", eventstore.DefaultSnapshotName, snaps[0])
}

func testSnapshotNotFound(t *testing.T, s eventstore.Store) {
	grow(t, s, "s", 1)
	save(t, s, eventstore.Snapshot{StreamID: "s", Name: "a", Version: 1})
	for _, c := range []struct{ stream, name string }{
		{"missing", ""},
		{"missing", "a"},
		{"s", ""},
		{"s", "b"},
		{"s", "A"},
		{eventstore.AllStreams, "a"},
	} {
		got, err := s.LoadSnapshot(ctxTimeout(t), c.stream, c.name)
		if !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("LoadSnapshot(%q, %q): %+v, %v; want errors.Is(err, ErrNotFound)", c.stream, c.name, got, err)
		}
	}
}

func testSnapshotLatest(t *testing.T, s eventstore.Store) {
	grow(t, s, "s", 5)
	for v := uint64(1); v <= 5; v += 2 {
		save(t, s, eventstore.Snapshot{StreamID: "s", Name: "m", Version: v, Schema: "v1", Data: []byte{byte(v)}})
		wantSnapshot(t, s, "s", "m", eventstore.Snapshot{StreamID: "s", Name: "m", Version: v, Schema: "v1", Data: []byte{byte(v)}})
	}
	// The same version again replaces it (say, with a new schema).
	same := eventstore.Snapshot{StreamID: "s", Name: "m", Version: 5, Schema: "v2", Data: []byte("v2 state")}
	save(t, s, same)
	wantSnapshot(t, s, "s", "m", same)
}

func testSnapshotOlder(t *testing.T, s eventstore.Store) {
	grow(t, s, "s", 10)
	newer := eventstore.Snapshot{StreamID: "s", Name: "m", Version: 10, Schema: "v1", Data: []byte("at 10")}
	save(t, s, newer)
	for _, v := range []uint64{9, 1, 0} {
		if err := s.SaveSnapshot(ctxTimeout(t), eventstore.Snapshot{StreamID: "s", Name: "m", Version: v, Schema: "v2", Data: []byte("older")}); err != nil {
			t.Errorf("SaveSnapshot of an older version %d: %v, want nil (it is ignored)", v, err)
		}
		wantSnapshot(t, s, "s", "m", newer)
	}
}

func testSnapshotAll(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "a", eventstore.NoStream, ev("t", "1"))
	res := mustAppend(t, s, "b", eventstore.NoStream, ev("t", "2"))
	snap := eventstore.Snapshot{StreamID: eventstore.AllStreams, Name: "projection", Version: res.Position, Schema: "p/v1", Data: []byte("totals")}
	save(t, s, snap)
	wantSnapshot(t, s, eventstore.AllStreams, "projection", snap)
	// It is not the snapshot of any stream.
	if _, err := s.LoadSnapshot(ctxTimeout(t), "a", "projection"); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("LoadSnapshot(a, projection): %v, want ErrNotFound", err)
	}
}

func testSnapshotData(t *testing.T, s eventstore.Store) {
	bin := make([]byte, 512)
	for i := range bin {
		bin[i] = byte(i)
	}
	grow(t, s, "s", 4)
	for i, data := range [][]byte{nil, {}, bin, make([]byte, 256<<10)} {
		snap := eventstore.Snapshot{StreamID: "s", Name: "m", Version: uint64(i + 1), Schema: "", Data: data}
		save(t, s, snap)
		wantSnapshot(t, s, "s", "m", snap)
	}
}

func testSnapshotCancelled(t *testing.T, s eventstore.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "s", Version: 1})
	wantErr(t, "SaveSnapshot with a cancelled context", err, context.Canceled)
	_, err = s.LoadSnapshot(ctx, "s", "")
	wantErr(t, "LoadSnapshot with a cancelled context", err, context.Canceled)
	if _, err := s.LoadSnapshot(ctxTimeout(t), "s", ""); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("LoadSnapshot after a cancelled save: %v, want ErrNotFound (nothing saved)", err)
	}
}

func testSnapshotInvalid(t *testing.T, s eventstore.Store) {
	for _, snap := range []eventstore.Snapshot{
		{StreamID: "", Version: 1},
		{StreamID: "\xff", Version: 1},
		{StreamID: "s", Name: "a\x00", Version: 1},
		{StreamID: "s", Schema: "\xff", Version: 1},
		{StreamID: "s", Version: 1 << 63},
	} {
		err := s.SaveSnapshot(ctxTimeout(t), snap)
		wantValidation(t, "SaveSnapshot", err)
	}
	for _, c := range []struct{ stream, name string }{{"", ""}, {"\xff", ""}, {"s", "\x00"}} {
		_, err := s.LoadSnapshot(ctxTimeout(t), c.stream, c.name)
		wantValidation(t, "LoadSnapshot", err)
	}
	if _, err := s.LoadSnapshot(ctxTimeout(t), "s", ""); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("LoadSnapshot after refused saves: %v, want ErrNotFound (nothing saved)", err)
	}
}

// testSnapshotConcurrent saves snapshots of many versions at once: the
// newest must win whatever the order the saves land in (a read-then-write
// upsert outside a transaction would let an older one overwrite it).
func testSnapshotConcurrent(t *testing.T, s eventstore.Store) {
	const savers, each = 8, 10
	grow(t, s, "s", savers*each)
	start := make(chan struct{})
	g, ctx := errgroup.WithContext(ctxTimeout(t))
	for w := range savers {
		g.Go(func() error {
			<-start
			for i := range each {
				v := uint64(i*savers + w + 1) // every saver climbs; all interleave
				snap := eventstore.Snapshot{StreamID: "s", Name: "m", Version: v, Schema: "v1", Data: []byte(fmt.Sprint(v))}
				if err := s.SaveSnapshot(ctx, snap); err != nil {
					return fmt.Errorf("saver %d: SaveSnapshot version %d: %w", w, v, err)
				}
			}
			return nil
		})
	}
	close(start)
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	const newest = savers * each
	wantSnapshot(t, s, "s", "m", eventstore.Snapshot{StreamID: "s", Name: "m", Version: newest, Schema: "v1", Data: []byte(fmt.Sprint(newest))})
}

// testSnapshotPastHead saves snapshots whose version the stream has not
// reached: a Load would trust such a snapshot and every later append of
// the aggregate would conflict, forever (issue 9 item 7). The store must
// refuse it with a ValidationError and write nothing, whether it is the
// first snapshot or would replace an older one.
func testSnapshotPastHead(t *testing.T, s eventstore.Store) {
	mustAppend(t, s, "s", eventstore.NoStream, numbered(3, "t", "s")...)
	for _, c := range []struct {
		stream  string
		version uint64
	}{
		{"s", 4},
		{"s", 50},
		{"s", 1<<63 - 1},
		{"no-events", 1},
		{"no-events", 1<<63 - 1},
	} {
		err := s.SaveSnapshot(ctxTimeout(t), eventstore.Snapshot{StreamID: c.stream, Name: "m", Version: c.version, Schema: "v1", Data: []byte("ahead")})
		wantValidation(t, fmt.Sprintf("SaveSnapshot(%q) at version %d, past the head", c.stream, c.version), err)
		if got, err := s.LoadSnapshot(ctxTimeout(t), c.stream, "m"); !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("LoadSnapshot(%q) after a refused save at %d: %+v, %v; want ErrNotFound (nothing saved)", c.stream, c.version, got, err)
		}
	}
	// At the head is fine; past it still refused, and the stored one stays.
	at := eventstore.Snapshot{StreamID: "s", Name: "m", Version: 3, Schema: "v1", Data: []byte("at 3")}
	save(t, s, at)
	err := s.SaveSnapshot(ctxTimeout(t), eventstore.Snapshot{StreamID: "s", Name: "m", Version: 4, Schema: "v1", Data: []byte("ahead")})
	wantValidation(t, "SaveSnapshot at version 4 over one at 3, stream at 3", err)
	wantSnapshot(t, s, "s", "m", at)
	wantVersion(t, s, "s", 3)
	// The all-streams log's head is the last global position.
	head := info(t, s, eventstore.AllStreams).Position
	err = s.SaveSnapshot(ctxTimeout(t), eventstore.Snapshot{StreamID: eventstore.AllStreams, Name: "p", Version: head + 1})
	wantValidation(t, fmt.Sprintf("SaveSnapshot(%q) at %d, past the head %d", eventstore.AllStreams, head+1, head), err)
	if got, err := s.LoadSnapshot(ctxTimeout(t), eventstore.AllStreams, "p"); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("LoadSnapshot(%q) after a refused save: %+v, %v; want ErrNotFound", eventstore.AllStreams, got, err)
	}
}
