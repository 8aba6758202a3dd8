package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/torture"
)

// TestBadInputTorture runs the torture package's bad-input checks (nil
// contexts, SQL-shaped IDs, expected version past the end, Close while
// watching) on each kind of store.
func TestBadInputTorture(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			torture.BadInput(t, func(t *testing.T) eventstore.Store { return k.open(t) })
		})
	}
}

// TestSQLShapedIDTablesIntact checks, beyond what the store reports, that
// the SQL-shaped stream ID left every table in the file.
func TestSQLShapedIDTablesIntact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inj.db")
	s := openFile(t, path)
	if _, err := s.Append(testCtx(t), torture.SQLStreamID, eventstore.NoStream, eventstore.Event{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	tables := func() []string {
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.QueryContext(testCtx(t), "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return names
	}
	got := tables()
	for _, want := range []string{"events", "snapshots", "streams"} {
		if !strings.Contains(strings.Join(got, ","), want) {
			t.Errorf("tables after appending to %q: %v, want %q among them", torture.SQLStreamID, got, want)
		}
	}
	var n int
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRowContext(testCtx(t), "SELECT count(*) FROM events WHERE stream_id = ?", torture.SQLStreamID).Scan(&n); err != nil || n != 1 {
		t.Errorf("rows of stream %q: %d, %v; want 1", torture.SQLStreamID, n, err)
	}
}

// TestFaultBusy holds the write lock from another connection: an append
// waits the busy timeout, then fails with ErrBusy and writes nothing; once
// the lock is released, appends work again.
func TestFaultBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	const busy = 150 * time.Millisecond
	s := openFile(t, path, sqlite.WithBusyTimeout(busy))
	if _, err := s.Append(testCtx(t), "s", eventstore.NoStream, eventstore.Event{Type: "t"}); err != nil {
		t.Fatal(err)
	}

	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(testCtx(t), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	_, err = s.Append(testCtx(t), "s", eventstore.Exact(1), eventstore.Event{ID: "blocked", Type: "t"})
	took := time.Since(began)
	if !errors.Is(err, sqlite.ErrBusy) {
		t.Fatalf("Append while another connection holds the write lock: %v, want ErrBusy", err)
	}
	if took < busy || took > busy+5*time.Second {
		t.Errorf("Append gave up after %v, want about the busy timeout %v", took, busy)
	}
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)

	if _, err := conn.ExecContext(testCtx(t), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(testCtx(t), "s", eventstore.Exact(1), eventstore.Event{ID: "blocked", Type: "t"})
	if err != nil || res.Version != 2 || res.Appended != 1 {
		t.Fatalf("Append after the lock was released: %+v, %v; want version 2, 1 appended", res, err)
	}
}

// TestFaultReadOnly opens a database read-only (mode=ro; the tests run as
// root, for whom file permissions do not stop writes): reads work, and an
// append fails with a clear error and writes nothing.
func TestFaultReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(testCtx(t), "s", eventstore.NoStream, eventstore.Event{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, path)

	ro, err := sqlite.Open(t.Context(), "file:"+path+"?mode=ro")
	if err != nil {
		// Refusing to open is a clear error too; the file must be intact.
		t.Logf("Open read-only: %v", err)
		if !bytes.Equal(before, readFile(t, path)) {
			t.Fatal("a refused read-only open changed the file")
		}
		return
	}
	defer ro.Close()
	_, err = ro.Append(testCtx(t), "s", eventstore.Exact(1), eventstore.Event{Type: "t"})
	if err == nil {
		t.Fatal("Append to a read-only database succeeded")
	}
	if !errors.Is(err, sqlite.ErrDatabase) || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("Append to a read-only database: %v, want ErrDatabase naming readonly", err)
	}
	t.Log(err)
	if info, err := ro.Info(testCtx(t), "s"); err != nil || info.Version != 1 {
		t.Errorf("Info after the refused append: %+v, %v; want version 1", info, err)
	}
}

// TestFaultRefusedFilesUnchanged opens a file that is not a database and a
// database written by a newer schema: each is refused with its error and
// the file's bytes are left exactly as they were.
func TestFaultRefusedFilesUnchanged(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not a database\n"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(dir, "newer.db")
	s, err := sqlite.Open(t.Context(), newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(testCtx(t), "s", eventstore.NoStream, eventstore.Event{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 1000"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		path string
		want error
		text string
	}{
		{junk, sqlite.ErrNotDatabase, "not"},
		{newer, sqlite.ErrSchemaVersion, "1000"},
	} {
		before := readFile(t, c.path)
		s, err := sqlite.Open(context.Background(), c.path)
		if err == nil {
			_ = s.Close() // the test fails just below; Open's success is the finding
			t.Fatalf("Open(%s) succeeded, want %v", filepath.Base(c.path), c.want)
		}
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("Open(%s): %v, want %v mentioning %q", filepath.Base(c.path), err, c.want, c.text)
		}
		if !bytes.Equal(before, readFile(t, c.path)) {
			t.Errorf("Open(%s) changed the file's bytes", filepath.Base(c.path))
		}
		for _, suffix := range []string{"-wal", "-journal"} {
			if data, err := os.ReadFile(c.path + suffix); err == nil && len(data) > 0 {
				t.Errorf("Open(%s) left a non-empty %s file", filepath.Base(c.path), suffix)
			}
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
