package sqlite

import (
	"context"
	"testing"

	"github.com/esv2/esv2/subscription"
)

// TestMigrateFrom6: a file written at schema 6 (before replay requests)
// opens at the current schema with its parked events as they were, none
// of them requested, and a replay of one can then be requested.
func TestMigrateFrom6(t *testing.T) {
	ctx := context.Background()
	path := fileAtSchema(t, 6,
		"INSERT INTO subscriptions (name, partition, position, updated) VALUES ('orders', 0, 7, 1)",
		"INSERT INTO subscription_parked VALUES ('orders', 3, 'a', 1, 'T', 'id-3', 'boom', 4, 1000)",
		"INSERT INTO subscription_parked VALUES ('orders', 5, 'b', 2, 'T', 'id-5', 'bang', 4, 2000)",
	)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := s.Subscriptions()
	ps, err := b.Parked(ctx, "orders")
	if err != nil || len(ps) != 2 || ps[0].Error != "boom" || !ps[0].ReplayRequested.IsZero() || !ps[1].ReplayRequested.IsZero() {
		t.Fatalf("Parked after migrating: %+v, %v; want both, none requested", ps, err)
	}
	if reqs, err := b.ReplayRequests(ctx, "orders"); err != nil || len(reqs) != 0 {
		t.Errorf("ReplayRequests after migrating: %+v, %v; want none", reqs, err)
	}
	if n, err := subscription.RequestReplay(ctx, s, "orders", 5); err != nil || n != 1 {
		t.Fatalf("RequestReplay(5) after migrating: %d, %v", n, err)
	}
	if reqs, err := b.ReplayRequests(ctx, "orders"); err != nil || len(reqs) != 1 || reqs[0].Position != 5 || reqs[0].Error != "bang" {
		t.Errorf("ReplayRequests after a request: %+v, %v; want position 5", reqs, err)
	}
}
