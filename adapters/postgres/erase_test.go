package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/eventstore"
)

// schemaDump returns the rows of every table of the store's schema, as
// COPY ... TO STDOUT (binary) writes them: what a logical dump holds.
func schemaDump(t *testing.T, s *Store) []byte {
	t.Helper()
	ctx := t.Context()
	rows, err := s.d.pool.Query(ctx, "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r'", s.Schema())
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 5 {
		t.Fatalf("schema %s: tables %v", s.Schema(), tables)
	}
	conn, err := s.d.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var buf bytes.Buffer
	for _, tb := range tables {
		if _, err := conn.Conn().PgConn().CopyTo(ctx, &buf, "COPY "+tb+" TO STDOUT (FORMAT binary)"); err != nil {
			t.Fatalf("COPY %s: %v", tb, err)
		}
	}
	return buf.Bytes()
}

// relationFiles returns the bytes of the files of every relation of the
// store's schema (tables, indexes, their TOAST tables and TOAST indexes),
// read by the server (pg_read_binary_file, a superuser's right) after a
// CHECKPOINT has written every page out. It skips the test when the role
// may not do either.
func relationFiles(t *testing.T, s *Store) []byte {
	t.Helper()
	ctx := t.Context()
	if _, err := s.d.pool.Exec(ctx, "CHECKPOINT"); err != nil {
		t.Skipf("CHECKPOINT refused (the relation files cannot be read as they are): %v", err)
	}
	rows, err := s.d.pool.Query(ctx, `WITH rel AS (
			SELECT c.oid, c.reltoastrelid FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'i')),
		toast AS (SELECT reltoastrelid AS oid FROM rel WHERE reltoastrelid != 0),
		toastidx AS (SELECT i.indexrelid AS oid FROM pg_index i JOIN toast ON i.indrelid = toast.oid)
		SELECT pg_read_binary_file(pg_relation_filepath(oid)) FROM (
			SELECT oid FROM rel UNION ALL SELECT oid FROM toast UNION ALL SELECT oid FROM toastidx) x
		WHERE pg_relation_filepath(oid) IS NOT NULL`, s.Schema())
	if err != nil {
		t.Skipf("reading the relation files refused: %v", err)
	}
	files, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		t.Skipf("reading the relation files refused: %v", err)
	}
	return bytes.Join(files, nil)
}

// TestDeleteErasesFromFiles (issue 12): a marker carried by a stream's
// events (ID, data, metadata, a large TOASTed payload) and its snapshot is
// in the schema's dump and in its relation files before DeleteStream, and
// in neither once PurgeFull (VACUUM FULL) has rewritten the tables and a
// checkpoint has written the pages. (Purge, a plain VACUUM, would leave
// the ID's bytes in the unique index's page that held only it: a page
// whose entries are all removed keeps their bytes until reused.) VACUUM
// keeps rows while an older transaction
// of the database (another test's, here) may still see them: the check is
// repeated, with a deadline, until it can.
func TestDeleteErasesFromFiles(t *testing.T) {
	s := newTestStore(t)
	ctx := t.Context()
	const marker = "ZQX-PLAINTEXT-MARKER-9c1e"
	big := make([]byte, 16<<10) // random: stored out of line, uncompressed
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	copy(big[8<<10:], marker)
	for i := range 60 {
		if _, err := s.Append(ctx, "noise", eventstore.Any, eventstore.Event{Type: "T", Data: bytes.Repeat([]byte{'n'}, 200+i)}); err != nil {
			t.Fatal(err)
		}
		if i == 30 {
			if _, err := s.Append(ctx, "person-1", eventstore.NoStream,
				eventstore.Event{ID: marker + "-id", Type: "PersonRegistered", Data: []byte("name=" + marker + "-data"), Metadata: map[string]string{"email": marker + "-meta"}},
				eventstore.Event{Type: "PhotoUploaded", Data: big}); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "person-1", Version: 2, Data: []byte(marker + "-snapshot")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := []byte(marker)
	if n := bytes.Count(schemaDump(t, s), m); n != 5 {
		t.Fatalf("before the deletion the dump holds the marker %d times, want 5", n)
	}
	if n := bytes.Count(relationFiles(t, s), m); n < 6 {
		t.Fatalf("before the deletion the relation files hold the marker %d times, want at least 6 (and the ID's index entry)", n)
	}
	if err := s.DeleteStream(ctx, "person-1", eventstore.Exact(2)); err != nil {
		t.Fatal(err)
	}
	if i := bytes.Index(schemaDump(t, s), m); i >= 0 {
		t.Errorf("after DeleteStream the dump still holds the marker at byte %d", i)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := s.PurgeFull(ctx); err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(relationFiles(t, s), m)
		if i < 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("60 s after DeleteStream, PurgeFull and CHECKPOINT, the relation files still hold the marker at byte %d", i)
		}
		// Another session's transaction, older than the deletion, holds
		// VACUUM back: wait for it to end.
		waitHorizon(ctx, t, s)
	}
	if info, err := s.Info(ctx, "noise"); err != nil || info.Count != 60 {
		t.Errorf("Info(noise): %+v, %v", info, err)
	}
}

// waitHorizon waits, up to a second, until no transaction of the database
// older than now is running.
func waitHorizon(ctx context.Context, t *testing.T, s *Store) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < time.Second {
		var old int
		if err := s.d.pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_xmin IS NOT NULL AND xact_start < $1 AND pid != pg_backend_pid()", start).Scan(&old); err != nil {
			t.Fatal(err)
		}
		if old == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestPurge: Purge runs on a store in use, and Purge and PurgeFull of a
// closed store answer ErrClosed.
func TestPurge(t *testing.T) {
	s := newTestStore(t)
	if _, err := s.Append(t.Context(), "a", eventstore.NoStream, eventstore.Event{Type: "T"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(t.Context(), "a", eventstore.Any); err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(t.Context()); err != nil {
		t.Errorf("Purge: %v", err)
	}
	_ = s.Close()
	if err := s.Purge(t.Context()); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Purge of a closed store: %v, want ErrClosed", err)
	}
	if err := s.PurgeFull(t.Context()); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("PurgeFull of a closed store: %v, want ErrClosed", err)
	}
}
