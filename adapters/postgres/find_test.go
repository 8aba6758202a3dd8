package postgres

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/eventstore"
)

// TestFindEvent: FindEvent returns the event stored with an ID, whichever
// stream holds it, as Read returns it, and ErrNotFound for an ID not
// stored; the look-up is one probe of the unique index on event_id.
func TestFindEvent(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	if _, err := s.Append(ctx, "a", eventstore.NoStream, eventstore.Event{ID: "a-1", Type: "t", Data: []byte("1")}, evt("no-id")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "b", eventstore.NoStream, eventstore.Event{ID: "b-1", Type: "t", Metadata: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	all, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []eventstore.Recorded{all[0], all[2]} {
		got, err := s.FindEvent(ctx, want.ID)
		if err != nil {
			t.Fatalf("FindEvent(%q): %v", want.ID, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("FindEvent(%q) (-read +found):\n%s", want.ID, diff)
		}
	}
	if _, err := s.FindEvent(ctx, "missing"); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("FindEvent(missing): %v, want ErrNotFound", err)
	}
	rows, err := s.d.pool.Query(ctx, "EXPLAIN "+s.d.q.findEvent, "a-1")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(plan, "\n"); !strings.Contains(p, "events_event_id_key") {
		t.Errorf("FindEvent's plan does not use the event ID index:\n%s", p)
	}
}
