package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/esv2/esv2/eventstore"
)

// TestMigrateFrom3: a file written at schema 3 (before issue 12) opens at
// the current schema (the lifecycle's is 6) with its streams as they were, and its streams can then be
// deleted and truncated.
func TestMigrateFrom3(t *testing.T) {
	ctx := context.Background()
	path := fileAtSchema(t, 3,
		"INSERT INTO events (stream_id, version, type, time) VALUES ('a', 1, 'T', 1), ('a', 2, 'T', 2), ('b', 1, 'T', 3)",
		"INSERT INTO streams VALUES ('a', 2, 2), ('b', 1, 3)",
		"UPDATE head SET position = 3, count = 3, last_time = 3",
	)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if info, err := s.Info(ctx, "a"); err != nil || info.Version != 2 || info.Count != 2 || info.Deleted {
		t.Errorf("Info(a) after migrating: %+v, %v", info, err)
	}
	if err := s.TruncateStream(ctx, "a", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "b", eventstore.Exact(1)); err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, "c", eventstore.NoStream, eventstore.Event{Type: "T"})
	if err != nil || res.Position != 4 {
		t.Errorf("append after deleting the newest: %+v, %v; want position 4", res, err)
	}
	if info, err := s.Info(ctx, "a"); err != nil || info.Version != 2 || info.Count != 1 {
		t.Errorf("Info(a) after the truncation: %+v, %v", info, err)
	}
	if problems, err := s.Verify(ctx); err != nil || len(problems) != 0 {
		t.Errorf("Verify: %v, %v", problems, err)
	}
}

// fileAtSchema writes a database file at schema version n, as a release
// of that schema left it (its first n migrations), with the rows that
// stmts insert, and returns its path.
func fileAtSchema(t *testing.T, n int, stmts ...string) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:n] {
		if _, err := db.ExecContext(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range append([]string{fmt.Sprintf("PRAGMA user_version = %d", n)}, stmts...) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
