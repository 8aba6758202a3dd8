package postgres

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/esv2/esv2/eventstore"
)

// TestAppendSizeLimit: an append whose payload is over the limit is
// refused with a ValidationError before anything is sent, and the store
// goes on working; one under it is stored. (The limit is lowered here; at
// its default of 256 MiB an append of 1,100 events of 1 MiB used to fail
// in pgx with "message body too large" after five retries.)
func TestAppendSizeLimit(t *testing.T) {
	const limit = 1 << 20
	s := newTestStore(t, WithoutListen(), WithoutPoll(), WithMaxAppendSize(limit))
	data := make([]byte, 64<<10)
	big := make([]eventstore.Event, 20) // 1.25 MiB
	for i := range big {
		big[i] = eventstore.Event{Type: "t", Data: data}
	}
	_, err := s.Append(t.Context(), "big", eventstore.NoStream, big...)
	var ve *eventstore.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, eventstore.ErrInvalidInput) {
		t.Fatalf("append of %d bytes with a limit of %d: %v, want a ValidationError", len(big)*len(data), limit, err)
	}
	if st := s.Stats(); st.Commits != 0 {
		t.Errorf("the refused append reached the database: %d commits", st.Commits)
	}
	res, err := s.Append(t.Context(), "big", eventstore.NoStream, big[:8]...) // 512 KiB
	if err != nil {
		t.Fatalf("append under the limit: %v", err)
	}
	if res.Version != 8 {
		t.Errorf("version %d after an append of 8 events, want 8", res.Version)
	}
}

// TestTakeCapsGroupBytes: the writer puts at most cfg.groupBytes of
// payload in a group; one larger append goes alone.
func TestTakeCapsGroupBytes(t *testing.T) {
	w := newWriter(&pgDriver{cfg: config{groupEvents: 1000, groupBytes: 1000}})
	reqs := []*appendReq{
		{stream: "a", size: 400},
		{stream: "b", size: 400},
		{stream: "c", size: 400}, // over 1000 with a and b: next group
		{stream: "d", size: 5000},
		{stream: "e", size: 10},
	}
	got := groupsTaken(t, w, reqs)
	if diff := cmp.Diff([][]string{{"a", "b"}, {"c"}, {"d"}, {"e"}}, got); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
}
