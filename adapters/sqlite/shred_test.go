package sqlite_test

import (
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/esv2/esv2/internal/shredtest"
)

// TestCryptoShredding: personal data and command IDs are never in the
// file or its WAL in plain text, and after Forget and the documented
// PRAGMA wal_checkpoint(TRUNCATE) the subject's key is in neither; the
// aggregate and a subscription keep working on the redacted events.
func TestCryptoShredding(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s := openFile(t, path)
	shredtest.Run(t, shredtest.Target[*sql.Tx]{
		Store: s,
		Keys:  s.KeyStore(),
		Dump: func(t *testing.T) []byte {
			t.Helper()
			var all []byte
			for _, p := range []string{path, path + "-wal", path + "-journal"} {
				b, err := os.ReadFile(p)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			return all
		},
		Housekeeping: func(t *testing.T) {
			t.Helper()
			db, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var busy, logFrames, checkpointed int
			if err := db.QueryRowContext(t.Context(), "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &checkpointed); err != nil {
				t.Fatal(err)
			}
			if busy != 0 {
				t.Fatalf("wal_checkpoint(TRUNCATE) was blocked (busy=%d)", busy)
			}
		},
	})
}
