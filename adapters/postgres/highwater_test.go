package postgres

import (
	"testing"

	"github.com/esv2/esv2/eventstore"
)

// TestHighWaterMark: appends allocate positions above the high-water mark
// even when no event is stored up to it (the newest events were deleted),
// through the current append_batch and through the older signatures an
// instance not yet upgraded calls.
func TestHighWaterMark(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	if _, err := s.Append(ctx, "a", eventstore.NoStream, evt("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.d.pool.Exec(ctx, "UPDATE "+s.d.schema+".high_water SET position = 1000"); err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, "b", eventstore.NoStream, evt("2"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Position != 1001 {
		t.Errorf("append after a high-water mark of 1000: position %d, want 1001", res.Position)
	}
	// The version-3 signature (no d_hash), as an older instance calls it.
	a, err := buildGroupArgs([]*appendReq{{stream: "c", expected: eventstore.Any, events: []eventstore.Event{evt("3")}}})
	if err != nil {
		t.Fatal(err)
	}
	params := a.params(s.d, "", 0)
	params = append(params[:6:6], params[7:]...)
	var pos int64
	if err := s.d.pool.QueryRow(ctx, "SELECT o_position FROM "+s.d.schema+".append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
		params...).Scan(&pos); err != nil {
		t.Fatal(err)
	}
	if pos != 1002 {
		t.Errorf("append through the version-3 signature: position %d, want 1002", pos)
	}
	if _, err := s.d.pool.Exec(ctx, "UPDATE "+s.d.schema+".high_water SET position = 2000"); err != nil {
		t.Fatal(err)
	}
	if err := s.d.pool.QueryRow(ctx, "SELECT o_position FROM "+s.d.schema+".append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
		params[2:]...).Scan(&pos); err != nil {
		t.Fatal(err)
	}
	if pos != 2001 {
		t.Errorf("append through the version-2 signature: position %d, want 2001", pos)
	}
}

// TestHighWaterAfterDelete (issue 12): deleting the newest events raises
// the high-water mark to the last position handed out, and counts the
// removed events (a truncation's too), so that Info(AllStreams) keeps its
// position and counts what is stored.
func TestHighWaterAfterDelete(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	if _, err := s.Append(ctx, "a", eventstore.NoStream, evt("1"), evt("2")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "b", eventstore.NoStream, evt("3"), evt("4"), evt("5")); err != nil {
		t.Fatal(err)
	}
	hw := func() (pos, removed int64) {
		t.Helper()
		if err := s.d.pool.QueryRow(ctx, "SELECT position, removed FROM "+s.d.schema+".high_water").Scan(&pos, &removed); err != nil {
			t.Fatal(err)
		}
		return pos, removed
	}
	if err := s.DeleteStream(ctx, "b", eventstore.Exact(3)); err != nil {
		t.Fatal(err)
	}
	if pos, removed := hw(); pos != 5 || removed != 3 {
		t.Errorf("after deleting the newest 3 events: high water %d, removed %d; want 5, 3", pos, removed)
	}
	if err := s.TruncateStream(ctx, "a", 2); err != nil {
		t.Fatal(err)
	}
	if pos, removed := hw(); pos != 5 || removed != 4 {
		t.Errorf("after truncating a before 2: high water %d, removed %d; want 5, 4", pos, removed)
	}
	info, err := s.Info(ctx, eventstore.AllStreams)
	if err != nil || info.Position != 5 || info.Count != 1 {
		t.Errorf("Info(AllStreams): %+v, %v; want position 5, count 1", info, err)
	}
	res, err := s.Append(ctx, "a", eventstore.Exact(2), evt("6"))
	if err != nil || res.Position != 6 || res.Version != 3 {
		t.Errorf("append after: %+v, %v; want position 6, version 3", res, err)
	}
}
