package torture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

// waitTimeout bounds every wait on something asynchronous; it is a
// failure deadline, not a pause.
const waitTimeout = 15 * time.Second

// SQLStreamID is a stream ID shaped like SQL injection. Stores must keep
// it as a plain ID.
const SQLStreamID = "'; DROP TABLE events; --"

// BadInput runs the bad-input checks the conformance suite does not
// already make: nil contexts on every Store and Repository method, a
// stream ID shaped like SQL, an expected version past the end of the
// stream, and Close while watchers run (no goroutine left, checked with
// goleak). newStore returns a new, empty store that the check closes.
func BadInput(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	t.Run("NilContext", func(t *testing.T) { checkNilContext(t, newStore(t)) })
	t.Run("SQLShapedStreamID", func(t *testing.T) { checkSQLShapedID(t, newStore(t)) })
	t.Run("ExpectedVersionPastEnd", func(t *testing.T) { checkPastEnd(t, newStore(t)) })
	t.Run("RepositoryCancelledAndClosed", func(t *testing.T) { checkRepositoryEnded(t, newStore(t)) })
	t.Run("CloseWhileWatching", func(t *testing.T) { checkCloseWhileWatching(t, newStore) })
}

// checkRepositoryEnded calls every Repository method with a cancelled
// context (context.Canceled) and after the store is closed (ErrClosed):
// each fails with that error, and nothing is written.
func checkRepositoryEnded(t *testing.T, s eventstore.Store) {
	repo, agg, inc := counterRepo(t, s)
	calls := func(ctx context.Context) map[string]func() error {
		return map[string]func() error{
			"Load":   func() error { _, err := repo.Load(ctx, "r"); return err },
			"Save":   func() error { return repo.Save(ctx, agg) },
			"Update": func() error { _, err := repo.Update(ctx, "r", inc); return err },
		}
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	for name, f := range calls(cancelled) {
		if err := noPanic(t, name, f); !errors.Is(err, context.Canceled) {
			t.Errorf("Repository.%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	if info, err := s.Info(ctxT(t), eventstore.AllStreams); err != nil || info.Count != 1 {
		t.Errorf("after calls with a cancelled context: %+v, %v; want 1 event", info, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for name, f := range calls(ctxT(t)) {
		if err := noPanic(t, name, f); !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("Repository.%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// noPanic runs f and turns a panic into a test error.
func noPanic(t *testing.T, name string, f func() error) error {
	t.Helper()
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("%s panicked: %v", name, p)
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		err = f()
	}()
	return err
}

func wantInvalid(t *testing.T, name string, err error) {
	t.Helper()
	if !errors.Is(err, eventstore.ErrInvalidInput) {
		t.Errorf("%s: error %v, want one matching eventstore.ErrInvalidInput", name, err)
	}
}

func firstErr(seq func(func(eventstore.Recorded, error) bool)) error {
	for _, err := range seq {
		if err != nil {
			return err
		}
	}
	return nil
}

type nilCtxEvent struct{ N int }

// counterRepo makes a repository of counters over s, with a snapshot
// after every event, and prepares its stream "r": one event stored (and
// snapshotted), then an aggregate loaded with one more event recorded,
// ready for Save. inc is a decide function adding one.
func counterRepo(t *testing.T, s eventstore.Store) (repo *aggregate.Repository[int, nilCtxEvent], agg *aggregate.Aggregate[int, nilCtxEvent], inc func(int) ([]nilCtxEvent, error)) {
	t.Helper()
	reg := codec.New[nilCtxEvent]()
	if err := codec.Register[nilCtxEvent](reg, "n"); err != nil {
		t.Fatal(err)
	}
	repo, err := aggregate.NewRepository(s, aggregate.Config[int, nilCtxEvent]{
		Evolve: func(n int, e nilCtxEvent) int { return n + e.N },
		Codec:  reg, SnapshotEvery: 1, SnapshotSchema: "v1",
	})
	if err != nil {
		t.Fatal(err)
	}
	inc = func(int) ([]nilCtxEvent, error) { return []nilCtxEvent{{N: 1}}, nil }
	if _, err := repo.Update(ctxT(t), "r", inc); err != nil {
		t.Fatal(err)
	}
	agg, err = repo.Load(ctxT(t), "r")
	if err != nil {
		t.Fatal(err)
	}
	agg.Record(nilCtxEvent{N: 1})
	return repo, agg, inc
}

// checkNilContext calls every Store and Repository method with a nil
// context: each must return an error (ErrInvalidInput), not panic, and
// write nothing.
func checkNilContext(t *testing.T, s eventstore.Store) {
	defer closeStore(t, s)
	var nilCtx context.Context // a nil interface, as a careless caller passes it
	_, err := s.Append(ctxT(t), "s", eventstore.NoStream, eventstore.Event{Type: "t"})
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		f    func() error
	}{
		{"Append", func() error {
			_, err := s.Append(nilCtx, "s", eventstore.Any, eventstore.Event{Type: "t"})
			return err
		}},
		{"Append(empty batch)", func() error { _, err := s.Append(nilCtx, "s", eventstore.Any); return err }},
		{"Read", func() error { return firstErr(s.Read(nilCtx, "s", eventstore.ReadOptions{})) }},
		{"Read(AllStreams)", func() error { return firstErr(s.Read(nilCtx, eventstore.AllStreams, eventstore.ReadOptions{})) }},
		{"Watch", func() error {
			return firstErr(s.Watch(nilCtx, "s", eventstore.WatchOptions{From: eventstore.FromStart()}))
		}},
		{"Watch(AllStreams)", func() error {
			return firstErr(s.Watch(nilCtx, eventstore.AllStreams, eventstore.WatchOptions{}))
		}},
		{"Info", func() error { _, err := s.Info(nilCtx, "s"); return err }},
		{"SaveSnapshot", func() error {
			return s.SaveSnapshot(nilCtx, eventstore.Snapshot{StreamID: "s", Version: 1, Data: []byte("x")})
		}},
		{"LoadSnapshot", func() error { _, err := s.LoadSnapshot(nilCtx, "s", ""); return err }},
	}
	repo, agg, inc := counterRepo(t, s)
	calls = append(calls, []struct {
		name string
		f    func() error
	}{
		{"Repository.Load", func() error { _, err := repo.Load(nilCtx, "r"); return err }},
		{"Repository.Save", func() error { return repo.Save(nilCtx, agg) }},
		{"Repository.Update", func() error {
			_, err := repo.Update(nilCtx, "r", inc)
			return err
		}},
	}...)
	for _, c := range calls {
		wantInvalid(t, c.name+" with a nil context", noPanic(t, c.name, c.f))
	}
	info, err := s.Info(ctxT(t), eventstore.AllStreams)
	if err != nil {
		t.Fatal(err)
	}
	if info.Count != 2 {
		t.Errorf("after calls with a nil context the store holds %d events, want 2", info.Count)
	}
	if _, err := s.LoadSnapshot(ctxT(t), "s", ""); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("LoadSnapshot after SaveSnapshot with a nil context: %v, want ErrNotFound", err)
	}
}

// checkSQLShapedID stores events under a stream ID (and type and event ID)
// shaped like SQL and reads them back as plain strings, with the events
// appended before still there.
func checkSQLShapedID(t *testing.T, s eventstore.Store) {
	defer closeStore(t, s)
	ctx := ctxT(t)
	if _, err := s.Append(ctx, "before", eventstore.NoStream, eventstore.Event{ID: "b1", Type: "t"}); err != nil {
		t.Fatal(err)
	}
	evs := []eventstore.Event{
		{ID: "x'); DELETE FROM events; --", Type: "t' OR '1'='1", Data: []byte("1")},
		{ID: `"; DROP TABLE streams; --`, Type: "t", Data: []byte("2"), Metadata: map[string]string{"k') --": "v'; --"}},
	}
	if _, err := s.Append(ctx, SQLStreamID, eventstore.NoStream, evs...); err != nil {
		t.Fatalf("Append(%q): %v", SQLStreamID, err)
	}
	got, err := eventstore.Collect(s.Read(ctx, SQLStreamID, eventstore.ReadOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Stream, ID, Type, Data string
		Metadata               map[string]string
		Version                uint64
	}
	var gotRows []row
	for _, r := range got {
		gotRows = append(gotRows, row{r.StreamID, r.ID, r.Type, string(r.Data), r.Metadata, r.Version})
	}
	want := []row{
		{SQLStreamID, evs[0].ID, evs[0].Type, "1", nil, 1},
		{SQLStreamID, evs[1].ID, evs[1].Type, "2", evs[1].Metadata, 2},
	}
	if diff := cmp.Diff(want, gotRows, cmp.Comparer(func(a, b map[string]string) bool { return len(a) == len(b) && (len(a) == 0 || cmp.Equal(a, b)) })); diff != "" {
		t.Errorf("Read(%q) (-want +got):\n%s", SQLStreamID, diff)
	}
	all, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	var streams []string
	for _, r := range all {
		streams = append(streams, r.StreamID)
	}
	if diff := cmp.Diff([]string{"before", SQLStreamID, SQLStreamID}, streams); diff != "" {
		t.Errorf("Read(AllStreams) streams (-want +got):\n%s", diff)
	}
	for _, id := range []string{"before", SQLStreamID} {
		if info, err := s.Info(ctx, id); err != nil || info.Version == 0 {
			t.Errorf("Info(%q) = %+v, %v; want a stream with events", id, info, err)
		}
	}
	if err := s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: SQLStreamID, Name: "'; --", Version: 2, Schema: "v'1", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if sn, err := s.LoadSnapshot(ctx, SQLStreamID, "'; --"); err != nil || sn.Version != 2 || sn.Schema != "v'1" {
		t.Errorf("LoadSnapshot = %+v, %v", sn, err)
	}
}

// checkPastEnd appends with an expected version beyond the stream's end:
// a *ConflictError naming both versions, and nothing written.
func checkPastEnd(t *testing.T, s eventstore.Store) {
	defer closeStore(t, s)
	ctx := ctxT(t)
	if _, err := s.Append(ctx, "s", eventstore.NoStream, eventstore.Event{Type: "t"}, eventstore.Event{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	for _, exp := range []eventstore.ExpectedVersion{eventstore.Exact(3), eventstore.Exact(1 << 40), eventstore.Exact(1<<63 - 1)} {
		_, err := s.Append(ctx, "s", exp, eventstore.Event{ID: "new", Type: "t"})
		var ce *eventstore.ConflictError
		if !errors.As(err, &ce) {
			t.Fatalf("Append expecting %v on a stream at 2: %v, want a *ConflictError", exp, err)
		}
		if diff := cmp.Diff(&eventstore.ConflictError{StreamID: "s", Expected: exp, Actual: 2}, ce); diff != "" {
			t.Errorf("ConflictError (-want +got):\n%s", diff)
		}
	}
	info, err := s.Info(ctx, eventstore.AllStreams)
	if err != nil || info.Count != 2 {
		t.Errorf("Info(AllStreams) = %+v, %v; want 2 events", info, err)
	}
}

// checkCloseWhileWatching closes a store from two goroutines while
// watchers of a stream and of all streams run: every watcher ends with
// ErrClosed, and no goroutine of the store is left.
func checkCloseWhileWatching(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	ignore := goleak.IgnoreCurrent()
	s := newStore(t)
	ctx := ctxT(t)
	if _, err := s.Append(ctx, "s", eventstore.NoStream, eventstore.Event{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	started := make(chan struct{}, n)
	ended := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		stream := "s"
		if i%2 == 1 {
			stream = eventstore.AllStreams
		}
		wg.Go(func() {
			var last error
			for _, err := range s.Watch(ctx, stream, eventstore.WatchOptions{From: eventstore.FromStart()}) {
				if err != nil {
					last = err
					break
				}
				started <- struct{}{} // the first event: the watch is live
			}
			ended <- last
		})
	}
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for range n {
		select {
		case <-started:
		case <-deadline.C:
			t.Fatal("watchers did not yield the stored event")
		}
	}
	var closers sync.WaitGroup
	closeErrs := make([]error, 2)
	for i := range closeErrs {
		closers.Go(func() { closeErrs[i] = s.Close() })
	}
	closers.Wait()
	for i, err := range closeErrs {
		if err != nil {
			t.Errorf("concurrent Close %d: %v", i, err)
		}
	}
	var errs []error
	for range n {
		select {
		case err := <-ended:
			errs = append(errs, err)
		case <-deadline.C:
			t.Fatalf("%d of %d watchers ended after Close", len(errs), n)
		}
	}
	wg.Wait()
	if slices.ContainsFunc(errs, func(err error) bool { return !errors.Is(err, eventstore.ErrClosed) }) {
		t.Errorf("watchers ended with %v, want ErrClosed each", errs)
	}
	if _, err := s.Append(ctx, "s", eventstore.Any, eventstore.Event{Type: "t"}); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if err := goleak.Find(ignore); err != nil {
		t.Errorf("goroutines left after Close: %v", err)
	}
}

// closeStore closes s at the end of a check; a failing Close fails it.
func closeStore(t *testing.T, s eventstore.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
