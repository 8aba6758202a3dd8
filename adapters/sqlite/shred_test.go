package sqlite_test

import (
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/codec"
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
			// As KeyStore's doc says: the checkpoint succeeds once no
			// reader still uses the old frames, and may be run again
			// until it does (the store's own connections read now and
			// then: a CI run met one, busy=1).
			deadline := time.Now().Add(10 * time.Second)
			for {
				var busy, logFrames, checkpointed int
				if err := db.QueryRowContext(t.Context(), "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &checkpointed); err != nil {
					t.Fatal(err)
				}
				if busy == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("wal_checkpoint(TRUNCATE) was blocked (busy=%d) for 10 s", busy)
				}
				time.Sleep(20 * time.Millisecond)
			}
		},
	})
}

// TestForgetAcrossProcesses: two stores on one file stand for two
// processes. A Forget through one is seen by the other at its next read
// when it keeps no keys cached (WithKeyCacheTTL(-1)), and not before its
// cached key expires when it does.
func TestForgetAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	a := openFile(t, path)
	uncached := openFile(t, path, sqlite.WithKeyCacheTTL(-1))
	cached := openFile(t, path, sqlite.WithKeyCacheTTL(time.Hour))
	ctx := testCtx(t)
	type ev struct{ Email codec.Personal[string] }
	encode := func(ks codec.KeyStore) ([]byte, error) {
		return codec.EncodeStateContext(ctx, codec.PersonalEncoding(codec.Msgpack{}, ks), ev{codec.NewPersonal("ann", "ann@example.com")})
	}
	decode := func(ks codec.KeyStore, data []byte) ev {
		t.Helper()
		v, err := codec.DecodeStateContext[ev](ctx, codec.PersonalEncoding(codec.Msgpack{}, ks), data)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	data, err := encode(a.KeyStore())
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*sqlite.Store{"uncached": uncached, "cached": cached} {
		if got := decode(s.KeyStore(), data); got.Email.Value() != "ann@example.com" {
			t.Fatalf("%s before Forget: %v", name, got.Email)
		}
	}
	if err := a.KeyStore().Forget(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	if got := decode(a.KeyStore(), data); !got.Email.Redacted() {
		t.Errorf("the store that forgot: %v, want redacted", got.Email)
	}
	if got := decode(uncached.KeyStore(), data); !got.Email.Redacted() {
		t.Errorf("another store without a key cache: %v, want redacted", got.Email)
	}
	if got := decode(cached.KeyStore(), data); got.Email.Redacted() {
		t.Errorf("another store with its key cached for an hour: redacted at once; the cache is not used")
	}
}
