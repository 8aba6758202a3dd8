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
