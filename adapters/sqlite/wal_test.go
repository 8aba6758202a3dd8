package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/esv2/esv2/eventstore"
)

// TestWALShrinksAfterLongReader holds a read transaction open on a foreign
// connection while the store appends, so that no checkpoint can recycle
// the WAL and it grows; once the reader leaves, the WAL must shrink back
// without any further append (issue 9 item 5). Before the fix it kept its
// size until Close.
func TestWALShrinksAfterLongReader(t *testing.T) {
	const (
		grown = 24 << 20 // what the appends make the WAL exceed
		bound = 4 << 20  // what it must shrink to (the store's journal_size_limit)
	)
	path := filepath.Join(t.TempDir(), "wal.db")
	s := openFile(t, path)
	ctx := testCtx(t)
	if _, err := s.Append(ctx, "s", eventstore.NoStream, eventstore.Event{Type: "t"}); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reader, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if _, err := reader.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}

	walSize := func() int64 {
		t.Helper()
		fi, err := os.Stat(path + "-wal")
		if os.IsNotExist(err) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	batch := make([]eventstore.Event, 32)
	for i := range batch {
		batch[i] = eventstore.Event{Type: "t", Data: make([]byte, 64<<10)}
	}
	for walSize() <= grown {
		if _, err := s.Append(ctx, "s", eventstore.Any, batch...); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("WAL grew to %d bytes behind the open read transaction", walSize())

	if _, err := reader.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for size := walSize(); size > bound; size = walSize() {
		select {
		case <-ctx.Done():
			t.Fatalf("the WAL is still %d bytes after the reader left, want at most %d", size, bound)
		case <-tick.C:
		}
	}
}
