package eventstore_test

import (
	"context"
	"errors"
	"iter"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
)

// seqOf yields the given events, then err if not nil, honouring break.
func seqOf(err error, rs ...eventstore.Recorded) iter.Seq2[eventstore.Recorded, error] {
	return func(yield func(eventstore.Recorded, error) bool) {
		for _, r := range rs {
			if !yield(r, nil) {
				return
			}
		}
		if err != nil {
			yield(eventstore.Recorded{}, err)
		}
	}
}

func rec(v uint64) eventstore.Recorded {
	return eventstore.Recorded{Event: eventstore.Event{Type: "t"}, StreamID: "s", Version: v, Position: v}
}

func TestCollect(t *testing.T) {
	got, err := eventstore.Collect(seqOf(nil, rec(1), rec(2), rec(3)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]eventstore.Recorded{rec(1), rec(2), rec(3)}, got); diff != "" {
		t.Errorf("Collect (-want +got):\n%s", diff)
	}

	got, err = eventstore.Collect(seqOf(nil))
	if err != nil || len(got) != 0 {
		t.Errorf("Collect(empty) = %v, %v; want nothing", got, err)
	}

	boom := errors.New("boom")
	got, err = eventstore.Collect(seqOf(boom, rec(1), rec(2)))
	if !errors.Is(err, boom) {
		t.Errorf("Collect error = %v, want %v", err, boom)
	}
	if diff := cmp.Diff([]eventstore.Recorded{rec(1), rec(2)}, got); diff != "" {
		t.Errorf("Collect returns the events before the error (-want +got):\n%s", diff)
	}
}

func TestStartCursor(t *testing.T) {
	for _, c := range []struct {
		name        string
		start       eventstore.Start
		want        uint64
		wantFromEnd bool
		wantString  string
	}{
		{"ZeroValue", eventstore.Start{}, 0, false, "start"},
		{"FromStart", eventstore.FromStart(), 0, false, "start"},
		{"After0", eventstore.After(0), 0, false, "start"},
		{"After7", eventstore.After(7), 7, false, "after 7"},
		{"FromEnd", eventstore.FromEnd(), 0, true, "end"},
	} {
		got, fromEnd := c.start.Cursor()
		if got != c.want || fromEnd != c.wantFromEnd || c.start.String() != c.wantString {
			t.Errorf("%s: Cursor() = %d, %v, String() = %q; want %d, %v, %q", c.name, got, fromEnd, c.start, c.want, c.wantFromEnd, c.wantString)
		}
	}
}

func TestMetadataFilterConstructors(t *testing.T) {
	got := []eventstore.MetadataFilter{
		eventstore.MetadataEquals("k", "v"),
		eventstore.MetadataOneOf("k", "a", "b"),
		eventstore.MetadataHasPrefix("k", "p"),
	}
	want := []eventstore.MetadataFilter{
		{Key: "k", Op: eventstore.MetadataEq, Values: []string{"v"}},
		{Key: "k", Op: eventstore.MetadataIn, Values: []string{"a", "b"}},
		{Key: "k", Op: eventstore.MetadataPrefix, Values: []string{"p"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("constructors (-want +got):\n%s", diff)
	}
}

// recordingStore is a Store that records the calls a Stream makes.
type recordingStore struct {
	eventstore.Store // nil: methods not overridden panic
	calls            []string
}

func (s *recordingStore) Append(_ context.Context, id string, exp eventstore.ExpectedVersion, evs ...eventstore.Event) (eventstore.AppendResult, error) {
	s.calls = append(s.calls, "Append "+id+" "+exp.String())
	return eventstore.AppendResult{Version: uint64(len(evs))}, nil
}

func (s *recordingStore) Read(_ context.Context, id string, _ eventstore.ReadOptions) iter.Seq2[eventstore.Recorded, error] {
	s.calls = append(s.calls, "Read "+id)
	return seqOf(nil, rec(1))
}

func (s *recordingStore) Watch(_ context.Context, id string, _ eventstore.WatchOptions) iter.Seq2[eventstore.Recorded, error] {
	s.calls = append(s.calls, "Watch "+id)
	return seqOf(nil, rec(2))
}

func (s *recordingStore) Info(_ context.Context, id string) (eventstore.StreamInfo, error) {
	s.calls = append(s.calls, "Info "+id)
	return eventstore.StreamInfo{StreamID: id, Version: 9}, nil
}

func (s *recordingStore) SaveSnapshot(_ context.Context, snap eventstore.Snapshot) error {
	s.calls = append(s.calls, "SaveSnapshot "+snap.StreamID+" "+snap.Name+" "+snap.Schema+" "+string(snap.Data))
	return nil
}

func (s *recordingStore) FindEvent(_ context.Context, id string) (eventstore.Recorded, error) {
	s.calls = append(s.calls, "FindEvent "+id)
	return eventstore.Recorded{}, nil
}

func (s *recordingStore) LoadSnapshot(_ context.Context, id, name string) (eventstore.Snapshot, error) {
	s.calls = append(s.calls, "LoadSnapshot "+id+" "+name)
	return eventstore.Snapshot{}, eventstore.ErrNotFound
}

func TestStreamDelegates(t *testing.T) {
	store := &recordingStore{}
	s := eventstore.NewStream(store, "acc-1")
	if s.ID() != "acc-1" || s.Store() != store {
		t.Fatalf("NewStream: ID %q, Store %v", s.ID(), s.Store())
	}
	ctx := t.Context()
	if res, err := s.Append(ctx, eventstore.NoStream, eventstore.Event{Type: "t"}, eventstore.Event{Type: "t"}); err != nil || res.Version != 2 {
		t.Errorf("Append = %+v, %v", res, err)
	}
	if got, err := eventstore.Collect(s.Read(ctx, eventstore.ReadOptions{})); err != nil || len(got) != 1 {
		t.Errorf("Read = %v, %v", got, err)
	}
	if got, err := eventstore.Collect(s.Watch(ctx, eventstore.WatchOptions{})); err != nil || len(got) != 1 {
		t.Errorf("Watch = %v, %v", got, err)
	}
	if info, err := s.Info(ctx); err != nil || info.Version != 9 {
		t.Errorf("Info = %+v, %v", info, err)
	}
	if v, err := s.Version(ctx); err != nil || v != 9 {
		t.Errorf("Version = %d, %v", v, err)
	}
	if err := s.SaveSnapshot(ctx, "m", 3, "v1", []byte("x")); err != nil {
		t.Errorf("SaveSnapshot = %v", err)
	}
	if _, err := s.LoadSnapshot(ctx, "m"); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("LoadSnapshot = %v, want ErrNotFound", err)
	}
	want := []string{
		"Append acc-1 no stream", "Read acc-1", "Watch acc-1", "Info acc-1", "Info acc-1",
		"SaveSnapshot acc-1 m v1 x", "LoadSnapshot acc-1 m",
	}
	if diff := cmp.Diff(want, store.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}
