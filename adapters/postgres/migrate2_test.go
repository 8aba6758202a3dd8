package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/eventstore"
)

// TestMigrationV2Text: migration 2 is version 1's append_batch with its
// time taken by clock_timestamp() after the lock (the text replacements
// in withV2 all applied).
func TestMigrationV2Text(t *testing.T) {
	m := migrations[1]
	for _, want := range []string{"CREATE OR REPLACE FUNCTION {schema}.append_batch(", "v_now    timestamptz;",
		"PERFORM pg_advisory_xact_lock(p_lock);\n\t-- After the wait: times follow the lock (and position) order.\n\tv_now := clock_timestamp();\n"} {
		if !strings.Contains(m, want) {
			t.Errorf("migration 2 lacks %q", want)
		}
	}
	if strings.Contains(m, "now();") || strings.Contains(m, "CREATE TABLE") {
		t.Errorf("migration 2 still takes now() or creates tables:\n%s", m)
	}
}

// TestMigrateFromV1: a schema at version 1 (as the previous release left
// it, with events in it) is refused without WithMigrate and upgraded with
// it; its events stay and appends go on after them.
func TestMigrateFromV1(t *testing.T) {
	schema := freshSchema(t)
	other := newTestStore(t, WithoutListen(), WithoutPoll()) // for its pool
	ctx := t.Context()
	sane := pgx.Identifier{schema}.Sanitize()
	for _, q := range []string{
		"CREATE SCHEMA " + sane,
		"CREATE TABLE " + sane + ".schema_version (version int NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
		strings.ReplaceAll(migrations[0], "{schema}", sane),
		"INSERT INTO " + sane + ".schema_version (version) VALUES (1)",
	} {
		if _, err := other.d.pool.Exec(ctx, q); err != nil {
			t.Fatalf("set up version 1: %v", err)
		}
	}
	// Version 1's append_batch takes no writer and token.
	v1 := &pgDriver{pool: other.d.pool, schema: sane, lockKey: advisoryKey("append", schema), channel: channelName(schema), q: buildQueries(sane)}
	a, err := buildGroupArgs([]*appendReq{{stream: "old", expected: eventstore.Any, events: []eventstore.Event{evt("a"), evt("b")}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.d.pool.Exec(ctx, "SELECT * FROM "+sane+".append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
		slices.Delete(a.params(v1, "", 0), 6, 7)[2:]...); err != nil { // without d_hash (version 6), writer and token (3)
		t.Fatal(err)
	}

	_, err = Open(ctx, testDSN(t), WithSchema(schema), WithoutListen())
	var sv *SchemaVersionError
	if !errors.As(err, &sv) || sv.Found != 1 || sv.Supported != SchemaVersion {
		t.Fatalf("Open of a version-1 schema without migrating: %v, want a *SchemaVersionError{Found: 1, Supported: %d}", err, SchemaVersion)
	}
	s := openStore(t, schema, WithoutListen(), WithoutPoll())
	var def string
	if err := s.d.pool.QueryRow(ctx, `SELECT pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = $1 AND p.proname = 'append_batch_unlocked' AND p.pronargs = 17`, schema).Scan(&def); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(def, "clock_timestamp()") {
		t.Errorf("append_batch_unlocked (append_batch's body since migration 12) after migrating does not use clock_timestamp():\n%s", def)
	}
	res, err := s.Append(ctx, "old", eventstore.Exact(2), evt("c"))
	if err != nil {
		t.Fatalf("append after migrating: %v", err)
	}
	if res.Version != 3 || res.Position != 3 {
		t.Errorf("append after migrating: version %d position %d, want 3 and 3", res.Version, res.Position)
	}
}

// TestTimeTakenAtDraw: an event the store stamps gets the time its
// positions were drawn, not the start of its transaction (migrations 2
// and 11), so that times follow positions: an append made in a
// transaction that began earlier is stamped after the append it follows.
func TestTimeTakenAtDraw(t *testing.T) {
	s := newTestStore(t, WithoutListen(), WithoutPoll())
	ctx := t.Context()
	tx, err := s.d.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var began time.Time
	if err := tx.QueryRow(ctx, "SELECT now()").Scan(&began); err != nil {
		t.Fatal(err)
	}
	first, err := s.Append(ctx, "first", eventstore.Any, evt("f"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := rawAppend(ctx, s, tx, "second", evt("s"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := eventstore.Collect(s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{}))
	if err != nil || len(got) != 2 {
		t.Fatalf("read back %d events, %v; want 2", len(got), err)
	}
	if got[0].Position != first.Position || got[1].Position != second.Position {
		t.Fatalf("read back positions %d, %d; want %d, %d", got[0].Position, got[1].Position, first.Position, second.Position)
	}
	if !got[1].Time.After(got[0].Time) || !got[1].Time.After(began) {
		t.Errorf("second event stamped %v, first %v, its transaction began %v: want the second after both", got[1].Time, got[0].Time, began.UTC())
	}
}

// TestMigrationFiles: the embedded migrations are numbered 1 to
// SchemaVersion, one file each, and every one names the schema through
// the {schema} placeholder only.
func TestMigrationFiles(t *testing.T) {
	if len(migrations) != SchemaVersion {
		t.Fatalf("%d migration files, want SchemaVersion = %d", len(migrations), SchemaVersion)
	}
	for i, m := range migrations {
		if !strings.Contains(m, "{schema}.") {
			t.Errorf("migration %d does not use the {schema} placeholder", i+1)
		}
		if strings.Contains(m, "esv2.") {
			t.Errorf("migration %d names a schema directly", i+1)
		}
	}
}

// TestMigrateFromV6: a schema at version 6 (before issue 12) migrates to
// the current version (the lifecycle's is 9) with its streams as they were, and its streams can then be deleted and
// truncated; an instance still calling the older append_batch signature
// is refused on a deleted stream (status 3) rather than writing to it.
func TestMigrateFromV6(t *testing.T) {
	schema := freshSchema(t)
	other := newTestStore(t, WithoutListen(), WithoutPoll()) // for its pool
	ctx := t.Context()
	sane := pgx.Identifier{schema}.Sanitize()
	setup := []string{
		"CREATE SCHEMA " + sane,
		"CREATE TABLE " + sane + ".schema_version (version int NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
	}
	for v := range 6 {
		setup = append(setup, strings.ReplaceAll(migrations[v], "{schema}", sane), fmt.Sprintf("INSERT INTO %s.schema_version (version) VALUES (%d)", sane, v+1))
	}
	for _, q := range setup {
		if _, err := other.d.pool.Exec(ctx, q); err != nil {
			t.Fatalf("set up version 6: %v", err)
		}
	}
	v6 := &pgDriver{pool: other.d.pool, schema: sane, lockKey: advisoryKey("append", schema), channel: channelName(schema), q: buildQueries(sane)}
	call := func(stream string, n int) int32 {
		t.Helper()
		evs := make([]eventstore.Event, n)
		for i := range evs {
			evs[i] = evt(fmt.Sprint(i))
		}
		a, err := buildGroupArgs([]*appendReq{{stream: stream, expected: eventstore.Any, events: evs}})
		if err != nil {
			t.Fatal(err)
		}
		var status int32
		if err := other.d.pool.QueryRow(ctx, "SELECT o_status FROM "+sane+".append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
			a.params(v6, "", 0)...).Scan(&status); err != nil {
			t.Fatal(err)
		}
		return status
	}
	call("old", 3)
	call("newest", 2)
	s := openStore(t, schema, WithoutListen(), WithoutPoll())
	if info, err := s.Info(ctx, "old"); err != nil || info.Version != 3 || info.Count != 3 {
		t.Errorf("Info(old) after migrating: %+v, %v", info, err)
	}
	if err := s.TruncateStream(ctx, "old", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "newest", eventstore.Exact(2)); err != nil {
		t.Fatal(err)
	}
	if got := call("newest", 1); got != statusDeleted {
		t.Errorf("append_batch to a deleted stream: status %d, want %d", got, statusDeleted)
	}
	res, err := s.Append(ctx, "c", eventstore.NoStream, evt("c"))
	if err != nil || res.Position != 6 {
		t.Errorf("append after deleting the newest: %+v, %v; want position 6", res, err)
	}
	if info, err := s.Info(ctx, eventstore.AllStreams); err != nil || info.Count != 2 || info.Position != 6 {
		t.Errorf("Info(AllStreams): %+v, %v; want count 2 (old's version 3 and c's event), position 6", info, err)
	}
	if problems, err := s.Verify(ctx); err != nil || len(problems) != 0 {
		t.Errorf("Verify: %v, %v", problems, err)
	}
}
