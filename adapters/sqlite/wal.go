package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"time"
)

// A reader that keeps a read transaction open (another process, or a
// forgotten transaction in a tool) stops checkpoints from recycling the
// WAL, which then grows with every append: 3 MB to 2.7 GB in 20 s in issue
// 9 item 5. SQLite never shrinks the file by itself, so it stayed that size
// until Close. Two things bring it back:
//
//   - journal_size_limit (walSizeLimit) on the writer: when the next
//     write transaction restarts the WAL from its beginning (every frame
//     checkpointed, no reader left in it), SQLite truncates the file to the
//     limit;
//   - for a store that no longer appends, the writer looks at the file's
//     size every walCheckInterval and, if it is past the limit, runs
//     wal_checkpoint(TRUNCATE) with a busy timeout of 0: it succeeds once
//     no reader needs the WAL, and fails at once, to be tried again, while
//     one does, so it never holds up appends.
const (
	// SQLite checkpoints at 1,000 pages, about 4.1 MB with 4 KiB pages, so
	// an ordinary WAL stays just under the limit and is never truncated.
	walSizeLimit     = 4 << 20
	walCheckInterval = time.Second
)

// walPath returns the WAL file of the writer's database, or "" when it is
// not in WAL mode (a read-only file) or not a file.
func walPath(ctx context.Context, c *sql.Conn) (string, error) {
	var mode string
	if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return "", err
	}
	if !strings.EqualFold(mode, "wal") {
		return "", nil
	}
	var file string
	if err := c.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file); err != nil {
		return "", err
	}
	if file == "" {
		return "", nil
	}
	return file + "-wal", nil
}

// shrinkWAL truncates the WAL when it has outgrown walSizeLimit and no
// reader needs it any more. Errors are ignored: the file stays as it is
// and the next check tries again.
func (w *writer) shrinkWAL() {
	fi, err := os.Stat(w.walPath)
	if err != nil || fi.Size() <= walSizeLimit {
		return
	}
	ctx := context.Background()
	if _, err := w.conn.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
		return
	}
	var busy, frames, done int64
	_ = w.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done)
	_, _ = w.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", w.busyTimeout))
}
