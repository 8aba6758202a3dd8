package postgres

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/subscription"
)

// TestMigrateFromV9: a schema at version 9 (before replay requests)
// migrates to the current version with its parked events as they were,
// none of them requested, and a replay of one can then be requested.
func TestMigrateFromV9(t *testing.T) {
	schema := freshSchema(t)
	other := newTestStore(t, WithoutListen(), WithoutPoll()) // for its pool
	ctx := t.Context()
	sane := pgx.Identifier{schema}.Sanitize()
	setup := []string{
		"CREATE SCHEMA " + sane,
		"CREATE TABLE " + sane + ".schema_version (version int NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
	}
	for v := range 9 {
		setup = append(setup, strings.ReplaceAll(migrations[v], "{schema}", sane), fmt.Sprintf("INSERT INTO %s.schema_version (version) VALUES (%d)", sane, v+1))
	}
	setup = append(setup,
		"INSERT INTO "+sane+".subscriptions (name, partition, position, updated) VALUES ('orders', 0, 7, now())",
		"INSERT INTO "+sane+".subscription_parked VALUES ('orders', 3, 'a', 1, 'T', 'id-3', 'boom', 4, now())",
		"INSERT INTO "+sane+".subscription_parked VALUES ('orders', 5, 'b', 2, 'T', 'id-5', 'bang', 4, now())",
	)
	for _, q := range setup {
		if _, err := other.d.pool.Exec(ctx, q); err != nil {
			t.Fatalf("set up version 9: %s: %v", q, err)
		}
	}
	s := openStore(t, schema, WithoutListen(), WithoutPoll())
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
