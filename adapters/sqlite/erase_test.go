package sqlite_test

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
)

// markerEvents returns events that carry marker in every place an event
// stores bytes: its ID, data, metadata, and a payload large enough for
// overflow pages (random bytes, so that no compression hides the marker).
func markerEvents(t *testing.T, marker string) []eventstore.Event {
	t.Helper()
	big := make([]byte, 12<<10)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	copy(big[6<<10:], marker)
	return []eventstore.Event{
		{ID: marker + "-id", Type: "PersonRegistered", Data: []byte("name=" + marker + "-data"), Metadata: map[string]string{"email": marker + "-meta"}},
		{Type: "PhotoUploaded", Data: big},
	}
}

// fileBytes returns the database file and its WAL, as they are on disk.
func fileBytes(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestDeleteErasesFromFiles (issue 12): after DeleteStream and Purge, the
// documented housekeeping, a marker that the stream's events and snapshot
// carried is in neither the database file nor its WAL, byte by byte; it
// was in them before.
func TestDeleteErasesFromFiles(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	const marker = "ZQX-PLAINTEXT-MARKER-7f3a"
	for i := range 50 { // others' events around the person's
		if _, err := s.Append(ctx, "noise", eventstore.Any, eventstore.Event{Type: "T", Data: bytes.Repeat([]byte{'n'}, 300+i)}); err != nil {
			t.Fatal(err)
		}
		if i == 25 {
			if _, err := s.Append(ctx, "person-1", eventstore.NoStream, markerEvents(t, marker)...); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "person-1", Version: 2, Data: []byte(marker + "-snapshot")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := []byte(marker)
	if n := bytes.Count(fileBytes(t, path), m); n < 5 {
		t.Fatalf("before the deletion the marker is found %d times in the files, want at least 5 (ID, its index, data, metadata, large data, snapshot)", n)
	}
	if err := s.DeleteStream(ctx, "person-1", eventstore.Exact(2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if i := bytes.Index(fileBytes(t, path), m); i >= 0 {
		t.Errorf("after DeleteStream and Purge the marker is still in the files at byte %d", i)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("after Purge the WAL has %d bytes, want 0", fi.Size())
	}
	// The store goes on: the others' events are there, appends work.
	if info, err := s.Info(ctx, "noise"); err != nil || info.Count != 50 {
		t.Errorf("Info(noise): %+v, %v", info, err)
	}
	if _, err := s.Append(ctx, "noise", eventstore.Exact(50), eventstore.Event{Type: "T"}); err != nil {
		t.Error(err)
	}
}

// TestPurgeMemory: Purge of an in-memory store does nothing, and a closed
// store's answers ErrClosed.
func TestPurgeMemory(t *testing.T) {
	s, err := sqlite.Open(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(t.Context()); err != nil {
		t.Errorf("Purge in memory: %v", err)
	}
	_ = s.Close()
	path := filepath.Join(t.TempDir(), "x.db")
	f, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if err := f.Purge(t.Context()); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Purge of a closed store: %v, want ErrClosed", err)
	}
}

// TestPurgeBusy: while another connection reads an older snapshot of the
// file, Purge cannot empty the WAL and says so with ErrBusy; once the
// reader is done, it can.
func TestPurgeBusy(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := sqlite.Open(ctx, path, sqlite.WithBusyTimeout(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, "a", eventstore.NoStream, eventstore.Event{Type: "T"}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil { // the read snapshot starts here
		t.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "a", eventstore.Any); err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx); !errors.Is(err, sqlite.ErrBusy) {
		t.Errorf("Purge while a reader holds an older snapshot: %v, want ErrBusy", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx); err != nil {
		t.Errorf("Purge once the reader is done: %v", err)
	}
}
