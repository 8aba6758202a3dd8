package postgres

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
)

func TestSmoke(t *testing.T) {
	s := newTestStore(t)
	ctx := t.Context()
	res, err := s.Append(ctx, "a", eventstore.NoStream,
		eventstore.Event{ID: "1", Type: "t", Data: []byte("x"), Metadata: map[string]string{"k": "v"}},
		eventstore.Event{Type: "t"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	res, err = s.Append(ctx, "a", eventstore.NoStream, eventstore.Event{ID: "1", Type: "t"})
	t.Logf("%+v %v", res, err)
	_, err = s.Append(ctx, "b", eventstore.NoStream, eventstore.Event{ID: "1", Type: "t"})
	t.Logf("%v", err)
	_, err = s.Append(ctx, "a", eventstore.NoStream, eventstore.Event{ID: "2", Type: "t"})
	t.Logf("%v", err)
	got, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{Filter: eventstore.Filter{Metadata: []eventstore.MetadataFilter{eventstore.MetadataHasPrefix("k", "v")}}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", got)
	if diff := cmp.Diff(1, len(got)); diff != "" {
		t.Error(diff)
	}
}
