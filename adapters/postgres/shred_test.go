package postgres

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/internal/shredtest"
)

// dumpSchema returns a binary dump (COPY ... TO STDOUT, FORMAT binary) of
// every table of the store's schema, so that bytea and text columns appear
// as their raw bytes.
func dumpSchema(t *testing.T, s *Store) []byte {
	t.Helper()
	ctx := t.Context()
	rows, err := s.d.pool.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1", s.d.cfg.schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 5 {
		t.Fatalf("tables %v: the dump would miss some", tables)
	}
	conn, err := s.d.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var out bytes.Buffer
	for _, tab := range tables {
		q := "COPY " + s.d.schema + "." + pgx.Identifier{tab}.Sanitize() + " TO STDOUT (FORMAT binary)"
		if _, err := conn.Conn().PgConn().CopyTo(ctx, &out, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return out.Bytes()
}

// TestCryptoShredding: personal data and command IDs are never in a dump
// of the schema's tables in plain text, and after Forget and the
// documented VACUUM FULL the subject's key is not either; the aggregate
// and a subscription keep working on the redacted events.
func TestCryptoShredding(t *testing.T) {
	s := newTestStore(t)
	shredtest.Run(t, shredtest.Target[pgx.Tx]{
		Store: s,
		Keys:  s.KeyStore(),
		Dump:  func(t *testing.T) []byte { return dumpSchema(t, s) },
		Housekeeping: func(t *testing.T) {
			if _, err := s.d.pool.Exec(t.Context(), "VACUUM FULL "+s.d.schema+".subject_keys"); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestForgottenKeyLeavesTableFile reads the subject_keys table's file in
// the server's data directory (after a CHECKPOINT has written it): the
// key's bytes are there before Forget, and not in the file VACUUM FULL
// rewrites after it. The data directory must be readable by the test (a
// server on this machine, run as root): otherwise the test is skipped.
func TestForgottenKeyLeavesTableFile(t *testing.T) {
	s := newTestStore(t)
	ctx := t.Context()
	ks := s.KeyStore()
	for _, other := range []string{"a", "b", "c"} { // rows that stay
		if _, err := ks.Create(ctx, other); err != nil {
			t.Fatal(err)
		}
	}
	key, err := ks.Create(ctx, "forgotten")
	if err != nil {
		t.Fatal(err)
	}
	before := tableFile(t, s)
	if !bytes.Contains(before, key) {
		t.Fatal("the key is not in the table's file after a CHECKPOINT: the test cannot prove it gone")
	}
	if err := ks.Forget(ctx, "forgotten"); err != nil {
		t.Fatal(err)
	}
	// VACUUM FULL copies the rows a running transaction might still see,
	// anywhere in the database (other tests' and other processes'): the
	// deleted row goes once none is left that began before the Forget.
	waitFor(t, "the forgotten key gone from the table's file after VACUUM FULL", func() (bool, error) {
		if _, err := s.d.pool.Exec(ctx, "VACUUM FULL "+s.d.schema+".subject_keys"); err != nil {
			return false, err
		}
		return !bytes.Contains(tableFile(t, s), key), nil
	})
	if _, err := ks.Key(ctx, "forgotten"); !errors.Is(err, codec.ErrKeyNotFound) {
		t.Fatalf("Key after Forget: %v", err)
	}
	if _, err := ks.Key(ctx, "a"); err != nil {
		t.Fatalf("another subject's key after VACUUM FULL: %v", err)
	}
}

// tableFile checkpoints and returns the bytes of subject_keys's main
// file, or skips the test when it cannot be read.
func tableFile(t *testing.T, s *Store) []byte {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	if _, err := s.d.pool.Exec(ctx, "CHECKPOINT"); err != nil {
		t.Skipf("CHECKPOINT: %v (needs a superuser or pg_checkpoint)", err)
	}
	var dir, rel string
	if err := s.d.pool.QueryRow(ctx, "SELECT current_setting('data_directory'), pg_relation_filepath($1::regclass)",
		s.d.schema+".subject_keys").Scan(&dir, &rel); err != nil {
		t.Skipf("data directory: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		t.Skipf("the server's data directory is not readable here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestForgetAcrossStores: a Forget through one store is seen by another
// store of the same schema (another process) at its next read when that
// one keeps no keys cached (WithKeyCacheTTL(-1)).
func TestForgetAcrossStores(t *testing.T) {
	schema := freshSchema(t)
	a, b := openStore(t, schema), openStore(t, schema, WithKeyCacheTTL(-1))
	ctx := t.Context()
	type ev struct{ Email codec.Personal[string] }
	enc := func(ks codec.KeyStore) codec.Encoding { return codec.PersonalEncoding(codec.JSON{}, ks) }
	data, err := codec.EncodeStateContext(ctx, enc(a.KeyStore()), ev{codec.NewPersonal("ann", "ann@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := codec.DecodeStateContext[ev](ctx, enc(b.KeyStore()), data)
	if err != nil || got.Email.Value() != "ann@example.com" {
		t.Fatalf("before Forget: %v, %v", got.Email, err)
	}
	if err := a.KeyStore().Forget(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	got, err = codec.DecodeStateContext[ev](ctx, enc(b.KeyStore()), data)
	if err != nil || !got.Email.Redacted() {
		t.Fatalf("after Forget through another store: %v, %v; want redacted", got.Email, err)
	}
}
